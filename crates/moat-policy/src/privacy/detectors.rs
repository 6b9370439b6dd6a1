//! The built-in detectors: each one's id, category, patterns, the check its candidates must pass,
//! and the *trigger* that finds those candidates.
//!
//! Scanning is two-level. One automaton holds only the triggers: short, DFA-cheap patterns (a key's
//! literal prefix and first characters, an assignment keyword and its `=`, `x@y`, two letters and two
//! digits, a run of eight digits), so a clean prompt costs one pass of a small lazy DFA. Where a
//! trigger fires, the full patterns of its detectors run anchored there, then their checks. Every
//! full pattern must imply its trigger at the same anchor, or it would never be tried.
//!
//! Full patterns are compiled with Unicode off, so `\b` is an ASCII word boundary. Order is priority:
//! at one position the earlier pattern is tried first, so specific key formats come before the
//! generic assignment rule and secrets before personal data.

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

/// The name part of an assignment: a telling word (gitleaks' generic-rule keywords among them),
/// the rest of the identifier (`DB_PASSWORD`, `clientSecret`), a string type after it (Go's
/// `var dbToken string =`), a closing quote (escaped inside a JSON string: `\"db_token\":`).
macro_rules! assign_name {
    () => {
        concat!(
            r"(?i:password|passwd|passphrase|pwd|secret|token|api[_\-]?key|access[_\-]?key|auth[_\-]?key",
            r"|private[_\-]?key|credentials?|creds)[A-Za-z0-9_\-]*(?:[ \t]+(?:string|String|str|\[\]byte))?",
            r#"\\?["']?"#
        )
    };
}

/// The operator after an assignment's name: `=`, `:`, `:=`, `::=`, `:::=`, `=>`, `?=`, `+=`, `.=`
/// (Make, PHP), `>` (an XML element's text), and `,` written tight (a CSV row: `dbToken,Zf3D…,`) or
/// before a quoted value (a call's next argument: `getenv("api_token", "dafa…")`). A spaced comma
/// before a bare word is code (`(token, err)`) and does not even fire the trigger.
macro_rules! assign_operator {
    () => {
        r#"(?:[ \t]*(?:[?+.]?=|:{1,3}=|=>|:|>)|,(?:[ \t]*["'`]|[A-Za-z0-9$]))"#
    };
}

/// How a detector's candidates are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// Its own trigger pattern; full patterns are tried where it starts.
    Own(&'static str),
    /// A trigger shared with other detectors.
    Shared(Family),
}

/// Shared triggers, each with its pattern and where the full patterns are anchored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    /// `password = `: a keyword, the rest of the name, an assignment operator.
    Assign,
    /// `scheme://user:pass@`: the trigger starts at `://`, the full pattern at the scheme.
    Url,
    /// `Bearer x`, `Basic x`.
    AuthHeader,
    /// `x@y`: the full pattern starts at the local part, up to 64 bytes before the `@`.
    Email,
    /// Two capitals and two digits.
    Iban,
    /// Eight digits joined by single separators: tried at the run's start, and one byte before it
    /// when that is `+` or `(`.
    Digits,
}

impl Family {
    pub(crate) fn pattern(self) -> &'static str {
        match self {
            Family::Assign => concat!(assign_name!(), assign_operator!()),
            Family::Url => r"://[A-Za-z0-9._~%\-]+:[A-Za-z0-9._~%!$&*+=\-]+@",
            Family::AuthHeader => r"(?i:bearer|basic)[ \t]+[A-Za-z0-9\-._~+/]",
            Family::Email => r"[A-Za-z0-9._%+\-]@[A-Za-z0-9]",
            Family::Iban => r"[A-Z]{2}[0-9]{2}",
            Family::Digits => r"[0-9](?:(?:[ .\-/]|\) ?| ?\()?[0-9]){7}",
        }
    }
}

/// One full pattern of a built-in detector. A detector may have several (e.g. phone number formats).
pub(crate) struct Builtin {
    pub id: &'static str,
    pub category: Category,
    /// Regex in `regex-automata` syntax, compiled with Unicode off. Capture group 1, if any, is the
    /// sensitive value (the part a finding covers); the rest is context such as `password = `.
    pub pattern: &'static str,
    pub check: Check,
    pub trigger: Trigger,
}

const fn secret(id: &'static str, trigger: Trigger, pattern: &'static str, check: Check) -> Builtin {
    Builtin {
        id,
        category: Category::Secret,
        pattern,
        check,
        trigger,
    }
}

const fn personal(id: &'static str, trigger: Trigger, pattern: &'static str, check: Check) -> Builtin {
    Builtin {
        id,
        category: Category::Personal,
        pattern,
        check,
        trigger,
    }
}

use Family::*;
use Trigger::{Own, Shared};

/// Full patterns that come before custom rules (secrets), in priority order.
pub(crate) const SECRETS: &[Builtin] = &[
    // The body stops at the next `-----`, so a header without a key never runs on into the text.
    secret(
        "private_key",
        Own(r"-----BEGIN[ A-Z0-9]{0,40} PRIVATE KEY"),
        concat!(
            r"-----BEGIN[ A-Z0-9]{0,40} PRIVATE KEY(?: BLOCK)?-----",
            r"(?:(?:[A-Za-z0-9+/=\s:,.\\]|-[A-Za-z0-9])*-----END[ A-Z0-9]{0,40} PRIVATE KEY(?: BLOCK)?-----",
            r"|(?:(?:\r?\n|\\n)[A-Za-z0-9+/=]+)*)"
        ),
        Check::Pem,
    ),
    secret(
        "anthropic_key",
        Own(r"\bsk-ant-[A-Za-z0-9_\-]{20}"),
        r"\bsk-ant-[A-Za-z0-9_\-]{20,}",
        Check::MixedCaseKey,
    ),
    secret(
        "openrouter_key",
        Own(r"\bsk-or-[A-Za-z0-9_\-]{20}"),
        r"\bsk-or-[A-Za-z0-9_\-]{20,}",
        Check::Key,
    ),
    secret(
        "openai_key",
        Own(r"\bsk-[A-Za-z0-9_\-]{20}"),
        r"\bsk-[A-Za-z0-9_\-]{20,}",
        Check::OpenAiKey,
    ),
    secret(
        "stripe_key",
        Own(r"\b[rs]k_(?:live|test|prod)_[A-Za-z0-9]{10}"),
        r"\b[rs]k_(?:live|test|prod)_[A-Za-z0-9]{10,}",
        Check::Key,
    ),
    secret(
        "github_token",
        Own(r"\bgh[pousr]_[A-Za-z0-9]{36}"),
        r"\bgh[pousr]_[A-Za-z0-9]{36,}",
        Check::MixedCaseKey,
    ),
    secret(
        "github_token",
        Own(r"\bgithub_pat_[A-Za-z0-9_]{40}"),
        r"\bgithub_pat_[A-Za-z0-9_]{40,}",
        Check::MixedCaseKey,
    ),
    secret(
        "slack_token",
        Own(r"\b(?:xoxe\.)?xox[abposre]-[A-Za-z0-9\-]{10}"),
        r"\b(?:xoxe\.)?xox[abposre]-[A-Za-z0-9\-]{10,}",
        Check::Key,
    ),
    secret(
        "slack_token",
        Own(r"\bxapp-[0-9]-[A-Za-z0-9]"),
        r"\bxapp-[0-9]-[A-Za-z0-9]+-[0-9]+-[A-Za-z0-9]+",
        Check::Key,
    ),
    // An incoming-webhook URL is itself the credential (with its scheme, or without).
    secret(
        "slack_token",
        Own(r"https?://hooks\.slack\.com/(?:services|workflows|triggers)/"),
        r"https?://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/]{20,}",
        Check::Key,
    ),
    secret(
        "slack_token",
        Own(r"\bhooks\.slack\.com/(?:services|workflows|triggers)/"),
        r"\bhooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/]{20,}",
        Check::Key,
    ),
    secret(
        "google_api_key",
        Own(r"\bAIza[A-Za-z0-9_\-]{35}"),
        r"\bAIza[A-Za-z0-9_\-]{35}",
        Check::MixedCaseKey,
    ),
    secret(
        "aws_access_key_id",
        Own(r"\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA)[A-Z0-9]{16}"),
        r"\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA)[A-Z0-9]{16}\b",
        Check::AwsKeyId,
    ),
    secret(
        "jwt",
        Own(r"\beyJ[A-Za-z0-9_\-]{8}"),
        r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*",
        Check::Jwt,
    ),
    secret(
        "aws_secret_key",
        Own(r"(?i:aws[A-Za-z0-9_.\-]{0,20}secret|secret_?access)"),
        concat!(
            r"(?i:aws[A-Za-z0-9_.\-]{0,20}secret|secret_?access)[A-Za-z0-9_.\-]{0,20}",
            r#"["']?[ \t]{0,4}(?::=|=>|=|:)[ \t]{0,4}["']?([A-Za-z0-9/+]{40})"#
        ),
        Check::AwsSecret,
    ),
    secret(
        "password_assignment",
        Shared(Assign),
        concat!(
            assign_name!(),
            // As `assign_operator!`, without the comma's look at the value (the value pattern
            // starts there).
            r"(?:[ \t]*(?:[?+.]?=|:{1,3}=|=>|:|>)|,)",
            // A YAML block scalar (`token: |`) or an XML element's text may start on the next line.
            r"(?:[ \t]*[|>][+\-]?)?(?:[ \t]*\r?\n[ \t]{1,12}|[ \t]{0,4})",
            r#"\\?["'`]?"#,
            // The value (cut at a closing tag, `</dbToken>`, by its check).
            r"([A-Za-z0-9!#$%&()*+\-./:<=>?@\[\]^_{|}~]{8,})"
        ),
        Check::Assignment,
    ),
    secret(
        "password_assignment",
        Shared(Url),
        r"\b[A-Za-z][A-Za-z0-9+.\-]{1,20}://[A-Za-z0-9._~%\-]{1,64}:([A-Za-z0-9._~%!$&*+=\-]{3,128})@",
        Check::UrlPassword,
    ),
    secret(
        "password_assignment",
        Shared(AuthHeader),
        r"\b(?i:bearer)[ \t]+([A-Za-z0-9\-._~+/]{16,}=*)",
        Check::Bearer,
    ),
    secret(
        "password_assignment",
        Shared(AuthHeader),
        r"\b(?i:basic)[ \t]+([A-Za-z0-9+/]{8,}={0,2})",
        Check::Basic,
    ),
];

/// Full patterns that come after custom rules (personal data), in priority order.
pub(crate) const PERSONAL: &[Builtin] = &[
    personal(
        "iban",
        Shared(Iban),
        r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,32}\b",
        Check::Iban,
    ),
    personal(
        "email",
        Shared(Email),
        r"[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,24}\b",
        Check::Email,
    ),
    personal(
        "payment_card",
        Shared(Digits),
        r"\b[0-9](?:[ \-]?[0-9]){12,18}\b",
        Check::Card,
    ),
    personal(
        "us_ssn",
        Shared(Digits),
        r"\b[0-9]{3}(?:-[0-9]{2}-| [0-9]{2} )[0-9]{4}\b",
        Check::Ssn,
    ),
    // International: + country code and 7 to 14 more digits with optional separators.
    personal(
        "phone",
        Shared(Digits),
        r"\+[1-9][0-9 .\-()]{6,24}[0-9]\b",
        Check::Phone,
    ),
    // North American: (415) 555-2671, 415-555-2671, 415.555.2671, 1-415-555-2671.
    personal(
        "phone",
        Shared(Digits),
        r"(?:\b1[ .\-])?(?:\b[2-9][0-9]{2}[ .\-]|\([2-9][0-9]{2}\) ?)[2-9][0-9]{2}[ .\-][0-9]{4}\b",
        Check::Phone,
    ),
    // National with a trunk 0: 020 7946 0958, 030 12345678, 0171-1234567.
    personal(
        "phone",
        Shared(Digits),
        r"\b0[1-9][0-9]{0,3}[ \-][0-9]{3,4}[ \-]?[0-9]{3,4}\b",
        Check::Phone,
    ),
    // French style pairs: 06 12 34 56 78, 06.12.34.56.78.
    personal(
        "phone",
        Shared(Digits),
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
