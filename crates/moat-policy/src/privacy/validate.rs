//! Checks run on the candidates the automaton reports: checksums (Luhn, IBAN mod-97), randomness
//! (Shannon entropy, character mix), placeholders, code expressions, and boundaries the DFA patterns
//! leave open. Each check takes the candidate and returns the span the finding should cover, or
//! `None` to drop it.
//!
//! Thresholds, and why:
//! - key bodies: entropy ≥ [`KEY_MIN_ENTROPY`] and at least two of lower/upper/digit. A real key has a
//!   strong prefix already; this only drops `sk-your-key-goes-here` and `sk-xxxxxxxx…`.
//! - assignment values: 8+ characters, two character classes, entropy ≥ 0.75·log2(length) capped at
//!   [`VALUE_MIN_ENTROPY`] (n characters hold at most log2(n) bits each; a random 12-character password
//!   measures 2.9–3.6), and not a name, path, timestamp, reference or code expression.

use std::ops::Range;

use super::detectors::Check;

/// Minimum Shannon entropy (bits per byte) of a prefixed key, prefix included.
pub(crate) const KEY_MIN_ENTROPY: f64 = 3.0;
/// Minimum Shannon entropy of an assignment's value (`password = VALUE`).
pub(crate) const VALUE_MIN_ENTROPY: f64 = 3.0;
/// Minimum Shannon entropy of an AWS access key id's 20 characters.
const AWS_ID_MIN_ENTROPY: f64 = 3.0;

/// A candidate: the text, and the span of the value group (the whole match if there is none).
pub(crate) struct Candidate<'t> {
    pub text: &'t str,
    pub value: Range<usize>,
}

impl Candidate<'_> {
    fn value_str(&self) -> &str {
        self.text.get(self.value.clone()).unwrap_or("")
    }

    fn byte_before(&self, at: usize) -> Option<u8> {
        at.checked_sub(1)
            .and_then(|i| self.text.as_bytes().get(i).copied())
    }

    fn byte_at(&self, at: usize) -> Option<u8> {
        self.text.as_bytes().get(at).copied()
    }
}

/// Runs `check` on a candidate; the span to report, or `None`.
pub(crate) fn run(check: Check, c: &Candidate<'_>) -> Option<Range<usize>> {
    let v = c.value_str();
    let ok = match check {
        Check::None => true,
        Check::Pem => pem(v),
        Check::Key => key_body(v),
        Check::MixedCaseKey => mixed_case(v) && key_body(v),
        Check::OpenAiKey => {
            !v.starts_with("sk-ant-") && !v.starts_with("sk-or-") && mixed_case(v) && key_body(v)
        }
        Check::AwsKeyId => !v.contains("EXAMPLE") && entropy(v.as_bytes()) >= AWS_ID_MIN_ENTROPY,
        Check::Jwt => jwt(v),
        Check::AwsSecret => {
            !matches!(c.byte_at(c.value.end), Some(b) if b.is_ascii_alphanumeric() || b"+/=".contains(&b))
                && !v.contains("EXAMPLE")
                && key_body(v)
        }
        Check::Assignment => assignment_value(c),
        Check::UrlPassword => {
            v.len() >= 6 && !is_placeholder(v) && !v.starts_with('$') && !v.starts_with('%')
        }
        Check::Bearer => key_body(v),
        Check::Basic => basic(v),
        Check::Email => email(c),
        Check::Phone => return phone(c),
        Check::Card => return card(c),
        Check::Iban => return iban(c),
        Check::Ssn => ssn(c),
        Check::Term => term_boundaries(c),
    };
    ok.then(|| c.value.clone())
}

/// Shannon entropy in bits per byte.
pub(crate) fn entropy(s: &[u8]) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in s {
        counts[usize::from(b)] += 1;
    }
    let n = s.len() as f64;
    counts.iter().filter(|&&c| c > 0).fold(0.0, |h, &c| {
        let p = f64::from(c) / n;
        h - p * p.log2()
    })
}

/// How many of lower, upper, digit, other-printable a string uses.
fn classes(s: &str) -> usize {
    let b = s.as_bytes();
    [
        b.iter().any(u8::is_ascii_lowercase),
        b.iter().any(u8::is_ascii_uppercase),
        b.iter().any(u8::is_ascii_digit),
        b.iter().any(|c| c.is_ascii_punctuation()),
    ]
    .iter()
    .filter(|&&x| x)
    .count()
}

fn alnum_classes(s: &str) -> usize {
    let b = s.as_bytes();
    [
        b.iter().any(u8::is_ascii_lowercase),
        b.iter().any(u8::is_ascii_uppercase),
        b.iter().any(u8::is_ascii_digit),
    ]
    .iter()
    .filter(|&&x| x)
    .count()
}

/// Words that mark a value as an example rather than a secret, when they stand as a whole segment.
const PLACEHOLDER_WORDS: &[&str] = &[
    "your",
    "yours",
    "example",
    "placeholder",
    "dummy",
    "redacted",
    "fake",
    "sample",
    "changeme",
    "change_me",
    "changeit",
    "password",
    "secret",
    "token",
    "here",
    "insert",
    "replace",
    "todo",
    "none",
    "null",
    "undefined",
    "xxx",
    "test",
    "demo",
];

/// `changeme`, `xxxx`, `<your-key>`, `${VAR}`, `{{ var }}`, `****`, `your_api_key_here`, …
pub(crate) fn is_placeholder(v: &str) -> bool {
    let lower = v.to_ascii_lowercase();
    if ["xxxx", "XXXX", "****", "...."].iter().any(|p| v.contains(p))
        || ["changeme", "change_me", "example", "${", "{{"]
            .iter()
            .any(|p| lower.contains(p))
        || (lower.starts_with('<') && lower.ends_with('>'))
        || longest_run(v.as_bytes()) >= 8
    {
        return true;
    }
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let hits = words.iter().filter(|w| PLACEHOLDER_WORDS.contains(w)).count();
    // One placeholder word in a long random value is chance; two, or a value made only of them, is not.
    hits >= 2 || (hits >= 1 && words.len() <= 2)
}

/// A value that names a secret kept elsewhere: `$VAR`, `$(cmd)`, `%VAR%`, YAML `*alias`/`&anchor`,
/// `!vault`-style tags, `{var}` templates.
fn is_reference(v: &str) -> bool {
    let ident = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let b = v.as_bytes();
    match b.first() {
        Some(b'$') => v.starts_with("$(") || ident(&v[1..]),
        Some(b'%') => v.ends_with('%'),
        Some(b'&' | b'*') => ident(&v[1..]),
        Some(b'!') => v[1..].bytes().all(|c| c.is_ascii_alphabetic()),
        Some(b'{') => v.ends_with('}'),
        _ => false,
    }
}

fn longest_run(b: &[u8]) -> usize {
    let (mut best, mut run) = (0, 0);
    for (i, c) in b.iter().enumerate() {
        run = if i > 0 && b[i - 1] == *c { run + 1 } else { 1 };
        best = best.max(run);
    }
    best
}

/// Both upper- and lower-case letters: every base62/base64 key format has them (a 36-character random
/// body lacks one with probability below 1e-8), hyphenated names like `sk-learn-config` do not.
fn mixed_case(v: &str) -> bool {
    v.bytes().any(|b| b.is_ascii_uppercase()) && v.bytes().any(|b| b.is_ascii_lowercase())
}

/// A prefixed key's body: random enough and not a placeholder.
fn key_body(v: &str) -> bool {
    alnum_classes(v) >= 2 && entropy(v.as_bytes()) >= KEY_MIN_ENTROPY && !is_placeholder(v)
}

fn pem(v: &str) -> bool {
    // Skip the header line; count base64 characters that follow.
    let body = v
        .find("-----")
        .and_then(|i| v[i + 5..].find("-----").map(|j| &v[i + 10 + j..]));
    let body = body.unwrap_or(v);
    let b64 = body
        .bytes()
        .filter(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
        .count();
    // The END line contributes ~20 letters; a real key has hundreds, and random base64 measures ~6 bits.
    let chars: Vec<u8> = body
        .bytes()
        .filter(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
        .collect();
    b64 >= 64 && entropy(&chars) >= 4.5
}

fn jwt(v: &str) -> bool {
    let mut parts = v.split('.');
    let (Some(header), Some(payload)) = (parts.next(), parts.next()) else {
        return false;
    };
    let Some(h) = base64_decode(header, true) else {
        return false;
    };
    let Some(p) = base64_decode(payload, true) else {
        return false;
    };
    let h = String::from_utf8_lossy(&h);
    h.starts_with('{') && (h.contains("\"alg\"") || h.contains("\"typ\"")) && p.first() == Some(&b'{')
}

fn basic(v: &str) -> bool {
    let Some(raw) = base64_decode(v.trim_end_matches('='), false) else {
        return false;
    };
    let Ok(s) = std::str::from_utf8(&raw) else {
        return false;
    };
    match s.split_once(':') {
        Some((user, pass)) => {
            !user.is_empty() && pass.len() >= 3 && s.chars().all(|c| !c.is_control()) && !is_placeholder(pass)
        }
        None => false,
    }
}

/// Decodes unpadded base64 (standard alphabet, or URL-safe if `url`). Partial final quanta allowed.
pub(crate) fn base64_decode(s: &str, url: bool) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' if url => 62,
            b'_' if url => 63,
            b'+' if !url => 62,
            b'/' if !url => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        acc = (acc << 6) | val(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// `password = VALUE`: a literal that looks like a real secret, not code that fetches one.
fn assignment_value(c: &Candidate<'_>) -> bool {
    let v = c.value_str();
    if v.len() < 8 || is_placeholder(v) {
        return false;
    }
    let quoted = matches!(c.byte_before(c.value.start), Some(b'"' | b'\'' | b'`'));
    // `token::Kind`, `secret: &Secrets`, `key => value`: the separator was part of an operator.
    if is_reference(v) || v.starts_with([':', '=', '&', '>', '<', ')', ']', '}', '|']) {
        return false;
    }
    if !quoted && looks_like_code(v) {
        return false;
    }
    if v.starts_with("http://") || v.starts_with("https://") || v.starts_with("file:") || looks_like_name(v) {
        return false;
    }
    classes(v) >= 2 && alnum_classes(v) >= 1 && entropy(v.as_bytes()) >= value_min_entropy(v.len())
}

/// [`VALUE_MIN_ENTROPY`], relaxed for short values: n characters carry at most log2(n) bits each, and
/// a random 12-character password measures 2.9–3.6.
fn value_min_entropy(len: usize) -> f64 {
    (0.75 * (len as f64).log2()).min(VALUE_MIN_ENTROPY)
}

/// An unquoted value that reads as an expression: a call, an index, a generic type, a path `a.b.c`,
/// `a::b`, `a->b`.
fn looks_like_code(v: &str) -> bool {
    if v.contains(['(', ')', '[', ']', '{', '<', '>']) || v.contains("::") {
        return true;
    }
    // Dotted identifiers made of words: settings.SECRET_KEY, config.authToken, os.environ (but not
    // a password such as `ipQNP0v.uR4jPFUbK5`).
    let parts: Vec<&str> = v.trim_end_matches([';', ',']).split('.').collect();
    parts.len() >= 2 && parts.iter().all(|p| wordy_identifier(p))
}

/// A name, path, timestamp or identifier rather than a secret: only `/-_.:` between the words, each
/// word single-case with at most two letter/digit switches (`argon2id`, `18T07`) or camelCase
/// (`GetSecretValue`). Hex and random strings switch between letters and digits far more often, and
/// passwords mix cases or use other symbols.
fn looks_like_name(v: &str) -> bool {
    if !v
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/-_.:".contains(&b))
    {
        return false;
    }
    v.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .all(|w| {
            let b = w.as_bytes();
            let single_case = !(b.iter().any(u8::is_ascii_lowercase) && b.iter().any(u8::is_ascii_uppercase));
            let switches = b
                .windows(2)
                .filter(|p| p[0].is_ascii_digit() != p[1].is_ascii_digit())
                .count();
            (single_case && switches <= 2) || (wordy_identifier(w) && switches <= 1)
        })
}

/// snake_case, UPPER_CASE or camelCase/PascalCase with real humps (a capital, then lowercase).
fn wordy_identifier(s: &str) -> bool {
    let b = s.as_bytes();
    if !matches!(b.first(), Some(c) if c.is_ascii_alphabetic() || *c == b'_') {
        return false;
    }
    let snake = b
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_');
    let upper = b
        .iter()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_');
    if snake || upper {
        return true;
    }
    // camelCase: every capital is followed by a lowercase letter; digits only at the end of a hump.
    let mut prev = b'_';
    for (i, &c) in b.iter().enumerate() {
        let ok = match c {
            b'A'..=b'Z' => matches!(b.get(i + 1), Some(n) if n.is_ascii_lowercase()),
            b'a'..=b'z' => !prev.is_ascii_digit(),
            b'0'..=b'9' => true,
            _ => false,
        };
        if !ok {
            return false;
        }
        prev = c;
    }
    true
}

/// File extensions that follow `@2x`-style asset names and npm-style `pkg@1.0` specs, not TLDs anyone
/// has an address under.
const FILE_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "bmp", "tif", "tiff", "avif", "css", "scss", "js",
    "mjs", "cjs", "ts", "tsx", "jsx", "json", "yaml", "yml", "toml", "lock", "txt", "html", "htm", "xml",
    "csv", "pdf", "zip", "gz", "tgz", "whl", "wasm", "map", "exe", "dll", "dylib", "woff", "woff2", "ttf",
];

/// RFC 2606 / 6761 names reserved for documentation and tests: no one has an address there.
fn reserved_domain(domain: &str) -> bool {
    let d = domain.to_ascii_lowercase();
    let tld = d.rsplit('.').next().unwrap_or("");
    matches!(tld, "test" | "example" | "invalid" | "localhost")
        || ["example.com", "example.net", "example.org"]
            .iter()
            .any(|e| d == *e || d.ends_with(&format!(".{e}")))
}

fn email(c: &Candidate<'_>) -> bool {
    let v = c.value_str();
    // The match is leftmost, so a local part starting right after a local-part character is the tail
    // of one that already failed (`it@github.com` inside `git@github.com`).
    if matches!(c.byte_before(c.value.start), Some(b) if b.is_ascii_alphanumeric() || b"._%+-".contains(&b)) {
        return false;
    }
    let Some((local, domain)) = v.rsplit_once('@') else {
        return false;
    };
    let tld = domain.rsplit('.').next().unwrap_or("");
    !local.is_empty()
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local != "git"
        && !reserved_domain(domain)
        && domain.len() <= 253
        && domain
            .split('.')
            .all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'))
        && !FILE_EXTENSIONS.contains(&tld.to_ascii_lowercase().as_str())
}

/// Digits-and-separators candidates must not be a piece of a longer number, version or date.
fn digits_isolated(c: &Candidate<'_>, span: &Range<usize>) -> bool {
    let before = c.byte_before(span.start);
    let after = c.byte_at(span.end);
    let after2 = c.byte_at(span.end + 1);
    let before2 = span.start.checked_sub(1).and_then(|i| c.byte_before(i));
    let digit = |b: Option<u8>| matches!(b, Some(x) if x.is_ascii_digit());
    !matches!(before, Some(b) if b.is_ascii_alphanumeric() || b == b'_' || b == b'+')
        && !(matches!(before, Some(b'.' | b'-' | b'/' | b':' | b',')) && digit(before2))
        && !matches!(after, Some(b) if b.is_ascii_alphanumeric() || b == b'_')
        && !(matches!(after, Some(b'.' | b'-' | b'/' | b':' | b',')) && digit(after2))
}

/// Whether the span is one of several space-separated groups of four hex digits (an `xxd` dump row).
fn in_hex_dump(c: &Candidate<'_>, span: &Range<usize>) -> bool {
    let b = c.text.as_bytes();
    let group = |at: usize| at + 4 <= b.len() && b[at..at + 4].iter().all(u8::is_ascii_hexdigit);
    let ends = |at: usize| at >= b.len() || matches!(b[at], b' ' | b'\n' | b'\r');
    let after = b.get(span.end) == Some(&b' ') && group(span.end + 1) && ends(span.end + 5);
    let before = span.start >= 5
        && b[span.start - 1] == b' '
        && group(span.start - 5)
        && (span.start == 5 || matches!(b[span.start - 6], b' ' | b':'));
    after || before
}

fn phone(c: &Candidate<'_>) -> Option<Range<usize>> {
    let v = c.value_str();
    let digits = v.bytes().filter(u8::is_ascii_digit).count();
    let international = v.starts_with('+');
    let (min, max) = if international { (8, 15) } else { (10, 11) };
    if !(min..=max).contains(&digits) || !digits_isolated(c, &c.value) || in_hex_dump(c, &c.value) {
        return None;
    }
    // One more digit group a space away means a longer run (code points, byte dumps, tables).
    let digit = |b: Option<u8>| matches!(b, Some(x) if x.is_ascii_digit());
    let before_group =
        c.byte_before(c.value.start) == Some(b' ') && digit(c.byte_before(c.value.start.saturating_sub(1)));
    let after_group = c.byte_at(c.value.end) == Some(b' ') && digit(c.byte_at(c.value.end + 1));
    if before_group || after_group {
        return None;
    }
    // Separators: never two in a row (other than ") "), parentheses balanced and holding digits only.
    let b = v.as_bytes();
    let sep = |x: u8| matches!(x, b' ' | b'.' | b'-');
    if b.windows(2).any(|w| sep(w[0]) && sep(w[1])) {
        return None;
    }
    let (open, close) = (v.matches('(').count(), v.matches(')').count());
    if open != close || open > 1 || (open == 1 && v.find('(') > v.find(')')) {
        return None;
    }
    // A dot next to a long digit group is a decimal point (coordinates: `+48.856613 2.352222`).
    if v.contains('.') && v.split(|ch: char| !ch.is_ascii_digit()).any(|g| g.len() >= 5) {
        return None;
    }
    // Dotted numbers with 3+ dots are versions or addresses unless grouped like a phone.
    if v.matches('.').count() >= 3 && !international && !v.starts_with('0') {
        return None;
    }
    Some(c.value.clone())
}

fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

/// Known issuer prefixes and the lengths each issues.
fn issuer_ok(d: &[u8]) -> bool {
    let n = d.len();
    let prefix = |k: usize| d.iter().take(k).fold(0u32, |acc, &x| acc * 10 + u32::from(x));
    let (p1, p2, p3, p4) = (prefix(1), prefix(2), prefix(3), prefix(4));
    match p1 {
        4 => matches!(n, 13 | 16 | 19),                             // Visa
        5 if (51..=55).contains(&p2) => n == 16,                    // Mastercard
        2 if (2221..=2720).contains(&p4) => n == 16,                // Mastercard 2-series
        2 if (2200..=2204).contains(&p4) => (16..=19).contains(&n), // Mir
        3 if p2 == 34 || p2 == 37 => n == 15,                       // Amex
        3 if (3528..=3589).contains(&p4) => (16..=19).contains(&n), // JCB
        3 if (300..=305).contains(&p3) || p4 == 3095 || matches!(p2, 36 | 38 | 39) => (14..=19).contains(&n), // Diners
        6 if p4 == 6011 || (644..=649).contains(&p3) || p2 == 65 => (16..=19).contains(&n), // Discover
        6 if p2 == 62 => (16..=19).contains(&n),                                            // UnionPay
        5 | 6 if matches!(p4, 5018 | 5020 | 5038 | 5893 | 6304 | 6759 | 6761 | 6762 | 6763) => {
            (13..=19).contains(&n) // Maestro
        }
        _ => false,
    }
}

/// Whether another card-length number (13+ digits) sits within 40 bytes: a table of constants, hashes
/// or IDs, where one in ~30 numbers passes Luhn and an issuer prefix by chance.
fn in_number_table(c: &Candidate<'_>, span: &Range<usize>) -> bool {
    let b = c.text.as_bytes();
    let longest = |r: &[u8]| {
        let (mut best, mut run) = (0, 0);
        for x in r {
            run = if x.is_ascii_digit() { run + 1 } else { 0 };
            best = best.max(run);
        }
        best
    };
    let before = &b[span.start.saturating_sub(40)..span.start];
    let after = &b[span.end..(span.end + 40).min(b.len())];
    longest(before) >= 13 || longest(after) >= 13
}

/// A card number, written plain or in groups (4-4-4-4, 4-6-5, …) with one kind of separator. A
/// trailing group that makes the checksum fail is dropped and the rest tried again.
fn card(c: &Candidate<'_>) -> Option<Range<usize>> {
    let v = c.value_str();
    let seps: Vec<u8> = v.bytes().filter(|b| !b.is_ascii_digit()).collect();
    if seps.windows(2).any(|w| w[0] != w[1]) {
        return None;
    }
    let groups: Vec<&str> = match seps.first() {
        Some(&s) => v.split(char::from(s)).collect(),
        None => vec![v],
    };
    for keep in (1..=groups.len()).rev() {
        let g = &groups[..keep];
        let len: usize = g.iter().map(|x| x.len()).sum();
        if !(13..=19).contains(&len) {
            continue;
        }
        let grouped_ok = g.len() == 1
            || (g[..g.len() - 1].iter().all(|x| x.len() == 4) && g[g.len() - 1].len() <= 4)
            || (g.len() == 3 && g[0].len() == 4 && g[1].len() == 6 && (4..=5).contains(&g[2].len()));
        let digits: Vec<u8> = g.iter().flat_map(|x| x.bytes()).map(|b| b - b'0').collect();
        let span_end = c.value.start + g.iter().map(|x| x.len()).sum::<usize>() + (keep - 1);
        let span = c.value.start..span_end;
        if grouped_ok
            && luhn(&digits)
            && issuer_ok(&digits)
            && digits_isolated(c, &span)
            && !in_hex_dump(c, &span)
        {
            return Some(span);
        }
    }
    None
}

/// IBAN length by country (ISO 13616 registry).
fn iban_len(cc: &str) -> Option<usize> {
    const T: &[(&str, usize)] = &[
        ("AD", 24),
        ("AE", 23),
        ("AL", 28),
        ("AT", 20),
        ("AZ", 28),
        ("BA", 20),
        ("BE", 16),
        ("BG", 22),
        ("BH", 22),
        ("BR", 29),
        ("BY", 28),
        ("CH", 21),
        ("CR", 22),
        ("CY", 28),
        ("CZ", 24),
        ("DE", 22),
        ("DK", 18),
        ("DO", 28),
        ("EE", 20),
        ("EG", 29),
        ("ES", 24),
        ("FI", 18),
        ("FO", 18),
        ("FR", 27),
        ("GB", 22),
        ("GE", 22),
        ("GI", 23),
        ("GL", 18),
        ("GR", 27),
        ("GT", 28),
        ("HR", 21),
        ("HU", 28),
        ("IE", 22),
        ("IL", 23),
        ("IQ", 23),
        ("IS", 26),
        ("IT", 27),
        ("JO", 30),
        ("KW", 30),
        ("KZ", 20),
        ("LB", 28),
        ("LC", 32),
        ("LI", 21),
        ("LT", 20),
        ("LU", 20),
        ("LV", 21),
        ("MC", 27),
        ("MD", 24),
        ("ME", 22),
        ("MK", 19),
        ("MR", 27),
        ("MT", 31),
        ("MU", 30),
        ("NL", 18),
        ("NO", 15),
        ("PK", 24),
        ("PL", 28),
        ("PS", 29),
        ("PT", 25),
        ("QA", 29),
        ("RO", 24),
        ("RS", 22),
        ("SA", 24),
        ("SC", 31),
        ("SE", 24),
        ("SI", 19),
        ("SK", 24),
        ("SM", 27),
        ("ST", 25),
        ("SV", 28),
        ("TL", 23),
        ("TN", 24),
        ("TR", 26),
        ("UA", 29),
        ("VA", 22),
        ("VG", 24),
        ("XK", 20),
    ];
    T.iter().find(|(c, _)| *c == cc).map(|&(_, n)| n)
}

fn iban_mod97(chars: &[u8]) -> bool {
    // Move the first four characters to the end, letters to 10..35, and reduce mod 97 as we go.
    let mut rem: u32 = 0;
    for &ch in chars[4..].iter().chain(&chars[..4]) {
        let v = match ch {
            b'0'..=b'9' => u32::from(ch - b'0'),
            b'A'..=b'Z' => u32::from(ch - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

/// The country fixes the length, so the span is cut to exactly that many characters (a greedy match
/// may have run into a following word); spaced IBANs must be grouped by four.
fn iban(c: &Candidate<'_>) -> Option<Range<usize>> {
    let v = c.value_str();
    let want = iban_len(v.get(..2)?)?;
    let spaced = v.as_bytes().get(4) == Some(&b' ');
    let mut chars = Vec::with_capacity(want);
    let mut end = 0;
    for (i, b) in v.bytes().enumerate() {
        if b == b' ' {
            // Groups of four: a space may only follow the 4th, 8th, … character.
            if !spaced || chars.len() % 4 != 0 {
                return None;
            }
            continue;
        }
        chars.push(b);
        end = i + 1;
        if chars.len() == want {
            break;
        }
    }
    if chars.len() != want || !iban_mod97(&chars) {
        return None;
    }
    let span = c.value.start..c.value.start + end;
    matches!(
        c.byte_at(span.end),
        None | Some(b' ' | b'\n' | b'\r' | b'\t' | b',' | b';' | b'.' | b')' | b'"' | b'\'' | b'<')
    )
    .then_some(span)
}

fn ssn(c: &Candidate<'_>) -> bool {
    let v = c.value_str();
    let d: Vec<u32> = v
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| u32::from(b - b'0'))
        .collect();
    if d.len() != 9 {
        return false;
    }
    let area = d[0] * 100 + d[1] * 10 + d[2];
    let group = d[3] * 10 + d[4];
    let serial = d[5] * 1000 + d[6] * 100 + d[7] * 10 + d[8];
    let known_fake = matches!(v, "078-05-1120" | "123-45-6789" | "219-09-9999");
    area != 0
        && area != 666
        && area < 900
        && group != 0
        && serial != 0
        && !known_fake
        && digits_isolated(c, &c.value)
}

/// Whole-word edges for custom terms: where the term starts (ends) with a word character, the text
/// before (after) it must not be one. Unicode-aware, so `café` does not match inside `cafés`.
fn term_boundaries(c: &Candidate<'_>) -> bool {
    let word = |ch: char| ch.is_alphanumeric() || ch == '_';
    let v = c.value_str();
    let before = c.text.get(..c.value.start).and_then(|s| s.chars().next_back());
    let after = c.text.get(c.value.end..).and_then(|s| s.chars().next());
    let starts_word = v.chars().next().is_some_and(word);
    let ends_word = v.chars().next_back().is_some_and(word);
    !(starts_word && before.is_some_and(word)) && !(ends_word && after.is_some_and(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums() {
        assert!(luhn(&[4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]));
        assert!(!luhn(&[4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2]));
        assert!(iban_mod97(b"DE89370400440532013000"));
        assert!(iban_mod97(b"GB82WEST12345698765432"));
        assert!(!iban_mod97(b"GB82WEST12345698765433"));
    }

    #[test]
    fn entropy_and_placeholders() {
        assert_eq!(entropy(b"aaaa"), 0.0);
        assert!((entropy(b"abcd") - 2.0).abs() < 1e-9);
        for p in [
            "changeme",
            "xxxxxxxxxxxx",
            "${DB_PASSWORD}",
            "<your-password>",
            "your_api_key_here",
            "{{ .Values.pw }}",
        ] {
            assert!(is_placeholder(p), "{p}");
        }
        for s in ["Xk29fLmQ8vTz", "hunter2hunter2", "sk-proj-4fT9aQ"] {
            assert!(!is_placeholder(s), "{s}");
        }
    }

    #[test]
    fn base64() {
        assert_eq!(
            base64_decode("eyJhbGciOiJIUzI1NiJ9", true).unwrap(),
            br#"{"alg":"HS256"}"#
        );
        assert_eq!(base64_decode("dXNlcjpwYXNz", false).unwrap(), b"user:pass");
        assert!(base64_decode("a*b", false).is_none());
    }
}
