//! The built-in detectors: each one's id, category, patterns and the check its candidates must pass.
//!
//! The patterns are written for the one-pass lazy DFA: ASCII only (compiled with Unicode off, so `\b`
//! is an ASCII word boundary and non-ASCII text never forces a slower engine), no look-around, and
//! unbounded `+`/`{n,}` rather than large counted repetitions where the length does not matter.
//! Anything a DFA cannot express cheaply (checksums, entropy, group layout, boundaries on the left of
//! a `(`) is left to the [`Check`] run on the rare candidates.
//!
//! Order is priority: when two patterns match at the same start, the earlier one is tried first, so
//! specific key formats come before the generic assignment rule and secrets before personal data.

use super::Category;

/// Which validation a candidate goes through (implemented in `validate.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// A PEM block: enough base64 in the body to be a real key rather than a header in prose.
    Pem,
    /// A prefixed API key: random-looking body, not a placeholder.
    Key,
    /// A key format whose body is base62/base64: as [`Check::Key`], with both letter cases.
    MixedCaseKey,
    /// An OpenAI key: as [`Check::MixedCaseKey`], and not an Anthropic or OpenRouter key that failed its own check.
    OpenAiKey,
    /// AWS access key id: 16 base32 characters with some entropy, not AWS's documented `…EXAMPLE`.
    AwsKeyId,
    /// JWT: the header decodes to a JSON object with `alg` or `typ`.
    Jwt,
    /// Value of an `aws…secret… = ` assignment: exactly 40 characters, random-looking.
    AwsSecret,
    /// Value of a `password = ` style assignment: high entropy, not a placeholder or a code expression.
    Assignment,
    /// Password inside a URL's user-info (`scheme://user:PASS@host`).
    UrlPassword,
    /// Token after `Bearer`.
    Bearer,
    /// Credentials after `Basic`: base64 of `user:password`.
    Basic,
    Email,
    Phone,
    /// Payment card: Luhn, a known issuer prefix and length, a card-like grouping.
    Card,
    /// IBAN: known country with its exact length, mod-97 check.
    Iban,
    /// US SSN: not in the never-issued ranges.
    Ssn,
    /// A custom term: whole-word boundaries (Unicode-aware) on its word-character edges.
    Term,
    /// A custom regex: the user's pattern is the whole check.
    None,
}

/// One pattern of a built-in detector. A detector may have several (e.g. phone number formats).
pub(crate) struct Builtin {
    pub id: &'static str,
    pub category: Category,
    /// Regex in `regex-automata` syntax, compiled with Unicode off. Capture group 1, if any, is the
    /// sensitive value (the part a finding covers); the rest is context such as `password = `.
    pub pattern: &'static str,
    pub check: Check,
}

const fn secret(id: &'static str, pattern: &'static str, check: Check) -> Builtin {
    Builtin {
        id,
        category: Category::Secret,
        pattern,
        check,
    }
}

const fn personal(id: &'static str, pattern: &'static str, check: Check) -> Builtin {
    Builtin {
        id,
        category: Category::Personal,
        pattern,
        check,
    }
}

/// The assignment keywords: a name containing one of these, then `=`, `:`, `:=` or `=>`.
const ASSIGN: &str = r#"(?i:password|passwd|passphrase|pwd|secret|token|api[_\-]?key|access[_\-]?key|auth[_\-]?key|private[_\-]?key|credentials?)[A-Za-z0-9_\-]{0,30}["']?[ \t]{0,4}(?::=|=>|=|:)[ \t]{0,4}["'`]?([A-Za-z0-9!#$%&()*+\-./:<=>?@\[\]^_{|}~\\]{8,})"#;

/// Patterns that come before custom rules (secrets), in priority order.
pub(crate) const SECRETS: &[Builtin] = &[
    secret(
        "private_key",
        r"-----BEGIN[ A-Z0-9]{0,40} PRIVATE KEY(?: BLOCK)?-----(?:[A-Za-z0-9+/=\s:,.\\\-]*?-----END[ A-Z0-9]{0,40} PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s:,.\\]*)",
        Check::Pem,
    ),
    secret(
        "anthropic_key",
        r"\bsk-ant-[A-Za-z0-9_\-]{20,}",
        Check::MixedCaseKey,
    ),
    secret("openrouter_key", r"\bsk-or-[A-Za-z0-9_\-]{20,}", Check::Key),
    secret("openai_key", r"\bsk-[A-Za-z0-9_\-]{20,}", Check::OpenAiKey),
    secret(
        "stripe_key",
        r"\b[rs]k_live_[A-Za-z0-9]{20,}",
        Check::MixedCaseKey,
    ),
    secret(
        "github_token",
        r"\bgh[pousr]_[A-Za-z0-9]{36,}",
        Check::MixedCaseKey,
    ),
    secret(
        "github_token",
        r"\bgithub_pat_[A-Za-z0-9_]{40,}",
        Check::MixedCaseKey,
    ),
    secret("slack_token", r"\bxox[abposr]-[A-Za-z0-9\-]{10,}", Check::Key),
    secret("google_api_key", r"\bAIza[A-Za-z0-9_\-]{35}", Check::MixedCaseKey),
    secret(
        "aws_access_key_id",
        r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA)[A-Z2-7]{16}\b",
        Check::AwsKeyId,
    ),
    secret(
        "jwt",
        r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*",
        Check::Jwt,
    ),
    secret(
        "aws_secret_key",
        r#"(?i:aws[A-Za-z0-9_.\-]{0,20}secret|secret_?access)[A-Za-z0-9_.\-]{0,20}["']?[ \t]{0,4}(?::=|=>|=|:)[ \t]{0,4}["']?([A-Za-z0-9/+]{40})"#,
        Check::AwsSecret,
    ),
    secret("password_assignment", ASSIGN, Check::Assignment),
    secret(
        "password_assignment",
        r"\b[A-Za-z][A-Za-z0-9+.\-]{1,20}://[A-Za-z0-9._~%\-]{1,64}:([A-Za-z0-9._~%!$&*+=\-]{3,128})@",
        Check::UrlPassword,
    ),
    secret(
        "password_assignment",
        r"\b(?i:bearer)[ \t]+([A-Za-z0-9\-._~+/]{16,}=*)",
        Check::Bearer,
    ),
    secret(
        "password_assignment",
        r"\b(?i:basic)[ \t]+([A-Za-z0-9+/]{8,}={0,2})",
        Check::Basic,
    ),
];

/// Patterns that come after custom rules (personal data), in priority order.
pub(crate) const PERSONAL: &[Builtin] = &[
    personal("iban", r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,32}\b", Check::Iban),
    personal(
        "email",
        r"[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,24}\b",
        Check::Email,
    ),
    personal("payment_card", r"\b[0-9](?:[ \-]?[0-9]){12,18}\b", Check::Card),
    personal(
        "us_ssn",
        r"\b[0-9]{3}(?:-[0-9]{2}-| [0-9]{2} )[0-9]{4}\b",
        Check::Ssn,
    ),
    // International: + country code and 7 to 14 more digits with optional separators.
    personal("phone", r"\+[1-9][0-9 .\-()]{6,24}[0-9]\b", Check::Phone),
    // North American: (415) 555-2671, 415-555-2671, 415.555.2671, 1-415-555-2671.
    personal(
        "phone",
        r"(?:\b1[ .\-])?(?:\b[2-9][0-9]{2}[ .\-]|\([2-9][0-9]{2}\) ?)[2-9][0-9]{2}[ .\-][0-9]{4}\b",
        Check::Phone,
    ),
    // National with a trunk 0: 020 7946 0958, 030 12345678, 0171-1234567.
    personal(
        "phone",
        r"\b0[1-9][0-9]{0,3}[ \-][0-9]{3,4}[ \-]?[0-9]{3,4}\b",
        Check::Phone,
    ),
    // French style pairs: 06 12 34 56 78, 06.12.34.56.78.
    personal(
        "phone",
        r"\b0[1-9](?: [0-9]{2}){4}\b|\b0[1-9](?:\.[0-9]{2}){4}\b|\b0[1-9](?:-[0-9]{2}){4}\b",
        Check::Phone,
    ),
];

/// Every built-in detector id with its category, each once, in priority order.
pub(crate) fn ids() -> impl Iterator<Item = (&'static str, Category)> {
    let all = SECRETS.iter().chain(PERSONAL);
    all.enumerate().filter_map(|(i, b)| {
        let seen = SECRETS.iter().chain(PERSONAL).take(i).any(|p| p.id == b.id);
        (!seen).then_some((b.id, b.category))
    })
}
