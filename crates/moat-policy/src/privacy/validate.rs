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

mod numbers;

/// Minimum Shannon entropy (bits per byte) of a prefixed key, prefix included.
pub(crate) const KEY_MIN_ENTROPY: f64 = 3.0;
/// Minimum Shannon entropy of an assignment's value (`password = VALUE`).
pub(crate) const VALUE_MIN_ENTROPY: f64 = 3.0;
/// Minimum Shannon entropy of an AWS access key id's 20 characters. Random ids measure 3.7 on average
/// and one in ~5,000 below 3.0 (the lowest in 200,000 samples: 2.7); `AKIAABABABABABABABAB` measures 1.5.
const AWS_ID_MIN_ENTROPY: f64 = 2.5;

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
        Check::Assignment => {
            // An XML element's text ends where its closing tag starts (`<dbToken>…</dbToken>`).
            let v = c.value_str();
            let end = v.find("</").map_or(c.value.end, |i| c.value.start + i);
            let value = c.value.start..end;
            return assignment_value(&Candidate {
                text: c.text,
                value: value.clone(),
            })
            .then_some(value);
        }
        Check::UrlPassword => {
            v.len() >= 6 && !is_placeholder(v) && !v.starts_with('$') && !v.starts_with('%')
        }
        Check::Bearer => key_body(v),
        Check::Basic => basic(v),
        Check::Email => email(c),
        Check::Phone => return numbers::phone(c),
        Check::Card => return numbers::card(c),
        Check::Iban => return numbers::iban(c),
        Check::Ssn => numbers::ssn(c),
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
    // Masks (`xxxx-xxxx`, `sk-****`): a run of four mask characters that make up a quarter of the
    // value. (A random key contains `xxxx` once in ~200,000; it is then a sliver of the key.)
    let masked = v.bytes().filter(|b| b"xX*.".contains(b)).count() * 4 >= v.len();
    if (masked && ["xxxx", "XXXX", "****", "...."].iter().any(|p| v.contains(p)))
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
        // `$DB_PASSWORD`, `$dbPassword`, `${…}`, `$(cmd)`: a name; `$I4N6xzuU7bCx4o2` is a password
        // that starts with `$`.
        Some(b'$') => {
            v.starts_with("$(") || v.starts_with("${") || (ident(&v[1..]) && wordy_identifier(&v[1..]))
        }
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
    // RFC 7617's example, quoted in every HTTP library's documentation.
    if s.starts_with("Aladdin:open") {
        return false;
    }
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
    if is_reference(v) {
        return false;
    }
    // What precedes the value: the operator, and whether it is written tight (`KEY=value`, as in
    // .env files, shell and log lines) or spaced (`key = value`, `key: value`, as in code and YAML).
    let before = c.text.get(..c.value.start).unwrap_or("");
    let before = before.strip_suffix(['"', '\'', '`']).unwrap_or(before);
    let op_at = before.trim_end_matches([' ', '\t']);
    let spaced = op_at.len() < before.len();
    let op = op_at.bytes().last();
    let tight = op == Some(b'=')
        && !spaced
        && op_at
            .as_bytes()
            .iter()
            .rev()
            .nth(1)
            .is_some_and(|b| b.is_ascii_alphanumeric() || b"_\"'".contains(b));
    // `token::Kind`, `secret == other`: the separator was half of an operator.
    if !quoted && matches!((op, v.as_bytes()[0]), (Some(b':'), b':') | (Some(b'='), b'=')) {
        return false;
    }
    // `prompt("password: ").unwrap()`: the quote before the value closed a string.
    if v.starts_with([')', ']', '}', ',', ';']) {
        return false;
    }
    // `xToken = fts5Tokenize;`: an unquoted bare identifier ending a statement names a variable.
    let after = c.text.as_bytes().get(c.value.end).copied();
    if !quoted && after == Some(b';') && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return false;
    }
    // `secret: &Secrets`, `key: <T>`, `token = |x|`: an unquoted value opening with an operator is
    // code, unless written tight, where it is the first character of a literal.
    if !quoted && !tight && v.starts_with(['&', '>', '<', ')', ']', '}', '|', ':', '=']) {
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

/// An unquoted value that reads as an expression: a call, an index, a generic type, a path `a.b.c`
/// or `a::b`, a macro, a closure.
fn looks_like_code(v: &str) -> bool {
    // Calls, indexes, generics, paths, macros (`name!`), closures (`|x: T|`), `!!x` coercions.
    let ops = v.contains("::") || v.ends_with(['!', '|']) || v.starts_with("!!");
    if ops || v.contains(['(', ')', '[', ']', '{', '<', '>']) {
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

/// Whole-word edges for custom terms: where the term starts (ends) with a word character, the text
/// before (after) it must not be one. Unicode-aware, so `café` does not match inside `cafés`.
fn term_boundaries(c: &Candidate<'_>) -> bool {
    let word = |ch: char| ch.is_alphanumeric() || ch == '_';
    let v = c.value_str();
    let before = c.text.get(..c.value.start).and_then(|s| s.chars().next_back());
    let after = c.text.get(c.value.end..).and_then(|s| s.chars().next());
    let starts_word = v.chars().next().is_some_and(word);
    let ends_word = v.chars().next_back().is_some_and(word);
    let glued_before = starts_word && before.is_some_and(word);
    let glued_after = ends_word && after.is_some_and(word);
    !(glued_before || glued_after)
}

#[cfg(test)]
mod tests {
    use super::*;

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
