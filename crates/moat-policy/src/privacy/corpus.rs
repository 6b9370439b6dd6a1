//! Test corpora for the privacy detectors (feature `corpus`): deterministic generators of prompts
//! with planted secrets and personal data, and of clean prompts full of near-misses.
//!
//! Planted values are valid in their format (cards pass Luhn, IBANs mod-97, keys are random) and sit
//! in realistic contexts: `.env` files, JSON and YAML configs, code, shell commands, logs, chat. Each
//! [`Doc`] records where its plants are, so tests can check that a detector covers them, and the
//! gateway's tests that none of them reaches a cloud upstream. The same seed always gives the same
//! corpus, on every platform (the generator is a local SplitMix64, not a library RNG whose stream may
//! change between versions).
//!
//! Some planted personal data uses formats the detectors deliberately skip (a bare 10-digit phone
//! number looks like any other ID); those plants have `expected = false`, so recall is measured
//! honestly against everything a prompt may contain.

mod clean;
mod code;
mod gitleaks;
mod values;

use super::Category;

pub use clean::{clean_doc, clean_docs, dense_near_misses, typical_text};
pub use gitleaks::gitleaks_docs;

/// A deterministic random source (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`; 0 when `n == 0`).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// `len` characters drawn from `alphabet` (ASCII).
    pub fn string(&mut self, alphabet: &[u8], len: usize) -> String {
        (0..len).map(|_| char::from(*self.pick(alphabet))).collect()
    }
}

/// Where a planted item sits in a [`Doc`], and which detector should report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planted {
    pub detector: &'static str,
    pub category: Category,
    /// Byte range of the sensitive value in [`Doc::text`].
    pub start: usize,
    pub end: usize,
    /// False for formats the detectors deliberately do not match (counted as misses in recall).
    pub expected: bool,
}

/// A generated prompt and what was planted in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doc {
    pub text: String,
    pub planted: Vec<Planted>,
}

/// Builds a document piece by piece, recording plant offsets.
struct DocBuilder {
    doc: Doc,
}

impl DocBuilder {
    fn new() -> DocBuilder {
        DocBuilder {
            doc: Doc {
                text: String::new(),
                planted: Vec::new(),
            },
        }
    }

    fn text(&mut self, s: &str) -> &mut Self {
        self.doc.text.push_str(s);
        self
    }

    fn plant(&mut self, v: &values::Value) -> &mut Self {
        let start = self.doc.text.len();
        self.doc.text.push_str(&v.text);
        self.doc.planted.push(Planted {
            detector: v.detector,
            category: v.category,
            start,
            end: self.doc.text.len(),
            expected: v.expected,
        });
        self
    }
}

/// A valid value for the built-in `detector`, in a format it claims to cover; `None` for an unknown
/// id. `password_assignment` and `aws_secret_key` values are recognised only after a name such as
/// `DB_PASSWORD=` or `aws_secret_access_key = `.
pub fn sample(rng: &mut Rng, detector: &str) -> Option<String> {
    loop {
        let v = match detector {
            "email" => values::email(rng),
            "phone" => values::phone(rng),
            "payment_card" => values::card(rng),
            "iban" => values::iban(rng),
            "us_ssn" => values::ssn(rng),
            k if values::SECRET_KINDS.contains(&k) => values::secret(rng, k),
            _ => return None,
        };
        if v.expected {
            return Some(v.text);
        }
    }
}

/// `n` documents, each with one to three planted items among clean filler.
pub fn planted_docs(seed: u64, n: usize) -> Vec<Doc> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| planted_doc(&mut rng)).collect()
}

/// Documents with only planted secrets (one per document, every secret detector in turn, in every
/// context), for the 100%-recall test.
pub fn secret_docs(seed: u64, per_detector: usize) -> Vec<Doc> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    for i in 0..per_detector {
        for kind in values::SECRET_KINDS {
            let v = values::secret(&mut rng, kind);
            let mut b = DocBuilder::new();
            if rng.chance(50) {
                b.text(&clean_doc(&mut rng, 1)).text("\n\n");
            }
            secret_context(&mut rng, &mut b, &v, i);
            if rng.chance(50) {
                b.text("\n\n").text(&clean_doc(&mut rng, 1));
            }
            out.push(b.doc);
        }
    }
    out
}

fn planted_doc(rng: &mut Rng) -> Doc {
    let mut b = DocBuilder::new();
    if rng.chance(60) {
        let parts = rng.range(1, 2);
        b.text(&clean_doc(rng, parts)).text("\n\n");
    }
    for i in 0..rng.range(1, 3) {
        if rng.chance(50) {
            let kind = *rng.pick(values::SECRET_KINDS);
            let v = values::secret(rng, kind);
            let variant = rng.below(1000);
            secret_context(rng, &mut b, &v, variant);
        } else {
            personal_context(rng, &mut b);
        }
        if i > 0 || rng.chance(50) {
            b.text("\n\n").text(&clean_doc(rng, 1));
        }
        b.text("\n");
    }
    b.doc
}

/// Puts a secret in one of the contexts people paste: env files, configs, code, shell, logs, chat.
fn secret_context(rng: &mut Rng, b: &mut DocBuilder, v: &values::Value, variant: usize) {
    let var = v.env_name;
    // A value that is only recognisable by its name (a password) never appears without one.
    let contexts = if v.needs_name { 8 } else { 9 };
    let context = (variant + rng.below(contexts)) % contexts;
    // Inside JSON, a multi-line value (a PEM key) is written with `\n` escapes.
    let escaped;
    let v = if context == 1 && v.text.contains('\n') {
        escaped = values::Value {
            text: v.text.replace('\n', "\\n"),
            ..v.clone()
        };
        &escaped
    } else {
        v
    };
    match context {
        0 => b
            .text("Here is my .env, why does the app not start?\n\nNODE_ENV=production\nPORT=3000\n")
            .text(var)
            .text("=")
            .plant(v)
            .text("\nLOG_LEVEL=debug\n"),
        1 => b
            .text("{\n  \"service\": \"billing\",\n  \"")
            .text(&var.to_ascii_lowercase())
            .text("\": \"")
            .plant(v)
            .text("\",\n  \"timeout_ms\": 30000\n}\n"),
        // YAML: a value starting with an indicator character (`&`, `*`, `!`, …) must be quoted.
        2 => {
            let q = if v
                .text
                .starts_with(['&', '*', '!', '|', '>', '%', '@', ':', '`', '-', '?'])
            {
                "'"
            } else {
                ""
            };
            b.text("settings:\n  region: eu-west-1\n  ")
                .text(&var.to_ascii_lowercase())
                .text(": ")
                .text(q)
                .plant(v)
                .text(q)
                .text("\n  retries: 3\n")
        }
        3 => b
            .text("import os\n\nclient = Client(\n    ")
            .text(&var.to_ascii_lowercase())
            .text("=\"")
            .plant(v)
            .text("\",\n    timeout=30,\n)\n"),
        4 => b
            .text("$ export ")
            .text(var)
            .text("='")
            .plant(v)
            .text("'\n$ ./deploy.sh --env staging\n"),
        5 => b
            .text("2024-05-01T12:00:03.120Z INFO config loaded ")
            .text(&var.to_ascii_lowercase())
            .text("=")
            .plant(v)
            .text(" pid=4123\n"),
        6 => b
            .text("I keep getting 401 errors. I'm using ")
            .text(var)
            .text(" = ")
            .plant(v)
            .text(" — is something wrong with it?"),
        7 => b
            .text("const cfg = { ")
            .text(&to_camel(var))
            .text(": '")
            .plant(v)
            .text("', retries: 2 };\n"),
        _ => b
            .text("Can you check this key for me: ")
            .plant(v)
            .text(" thanks!"),
    };
}

fn to_camel(s: &str) -> String {
    let mut out = String::new();
    for (i, part) in s.split('_').enumerate() {
        let lower = part.to_ascii_lowercase();
        if i == 0 {
            out.push_str(&lower);
        } else {
            let mut cs = lower.chars();
            if let Some(c) = cs.next() {
                out.push(c.to_ascii_uppercase());
                out.extend(cs);
            }
        }
    }
    out
}

/// Personal data in customer-support chat, CSV exports, CRM JSON, signatures and logs.
fn personal_context(rng: &mut Rng, b: &mut DocBuilder) {
    let email = values::email(rng);
    let phone = values::phone(rng);
    match rng.below(6) {
        0 => {
            b.text("Customer wrote in: \"Hi, my card ")
                .plant(&values::card(rng))
                .text(" was charged twice. Reach me at ")
                .plant(&email)
                .text(" or ")
                .plant(&phone)
                .text(".\"\nPlease draft a polite reply.");
        }
        1 => {
            b.text("id,name,email,phone,iban\n1042,Jane Miller,")
                .plant(&email)
                .text(",")
                .plant(&phone)
                .text(",")
                .plant(&values::iban(rng))
                .text("\n");
        }
        2 => {
            b.text("{\"customer\": {\"name\": \"Rahul Singh\", \"email\": \"")
                .plant(&email)
                .text("\", \"ssn\": \"")
                .plant(&values::ssn(rng))
                .text("\"}}\n");
        }
        3 => {
            b.text("Best regards,\nMaria Rossi\nSenior Accountant\nTel: ")
                .plant(&phone)
                .text("\n")
                .plant(&email)
                .text("\n");
        }
        4 => {
            b.text("Please wire the refund to IBAN ")
                .plant(&values::iban(rng))
                .text(" and confirm by mail to ")
                .plant(&email)
                .text(".");
        }
        _ => {
            b.text("2024-05-01 10:22:31 WARN payment declined card=")
                .plant(&values::card(rng))
                .text(" user=")
                .plant(&email)
                .text("\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_spans_hold_the_value() {
        assert_eq!(planted_docs(7, 50), planted_docs(7, 50));
        for d in planted_docs(7, 200) {
            for p in &d.planted {
                assert!(d.text.is_char_boundary(p.start) && d.text.is_char_boundary(p.end));
                assert!(p.end > p.start);
            }
        }
    }
}
