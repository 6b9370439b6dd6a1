//! Privacy detectors: finds secrets (API keys, private keys, credentials) and personal data (emails,
//! phone numbers, payment cards, IBANs, US SSNs) in prompt text, plus the owner's custom rules.
//!
//! A [`Scanner`] is compiled once from the configuration and shared by every request. It makes one
//! pass over the text with a single multi-pattern automaton (`regex-automata`'s meta regex: a lazy DFA
//! over every detector's pattern at once), and only the rare candidates it reports are checked further:
//! Luhn for cards, mod-97 for IBANs, the JSON header of a JWT, the invalid SSN ranges, the randomness
//! (Shannon entropy and character mix) of key bodies and passwords, placeholders such as `changeme` or
//! `${VAR}`. What to *do* with a finding (allow, keep local, redact, block) is decided by the gateway.
//!
//! Pattern matching is not a guarantee: a secret in an unknown format, split across messages or
//! encoded will pass unseen. docs/PRIVACY.md lists each detector and its measured recall and
//! false-positive rate.
//!
//! ```
//! use moat_policy::privacy::{Category, CustomRule, Scanner};
//!
//! let rules = [CustomRule { id: "codename".into(), regex: None, terms: vec!["Bluebird".into()] }];
//! let scanner = Scanner::new(&rules).unwrap();
//! let text = "mail jane.doe@acme-corp.com about bluebird; key AKIAQ3EGRTPRZ5J4KF6D";
//! let findings = scanner.scan(text);
//! let found: Vec<_> = findings.iter().map(|f| (&*f.detector, f.category, &text[f.range()])).collect();
//! assert_eq!(
//!     found,
//!     [
//!         ("email", Category::Personal, "jane.doe@acme-corp.com"),
//!         ("codename", Category::Custom, "bluebird"),
//!         ("aws_access_key_id", Category::Secret, "AKIAQ3EGRTPRZ5J4KF6D"),
//!     ]
//! );
//! assert!(!scanner.has_findings("the build takes 12.5 seconds on commit 3f2a9c1"));
//! ```

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

pub mod body;
#[cfg(any(test, feature = "corpus"))]
pub mod corpus;
mod detectors;
mod scanner;
mod validate;

pub use scanner::Scanner;

/// What kind of data a detector looks for; the config's default action is chosen per category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// Credentials: API keys, tokens, private keys, passwords.
    Secret,
    /// Personal data: emails, phone numbers, payment cards, IBANs, SSNs.
    Personal,
    /// A `[[privacy.rules]]` entry from the config.
    Custom,
}

impl Category {
    /// Lowercase name, as used in metrics labels and audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Secret => "secret",
            Category::Personal => "personal",
            Category::Custom => "custom",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A detector's id: a built-in name such as `email`, or a custom rule's configured id.
///
/// Cheap to clone (a static string or a shared `Arc<str>`) and derefs to `&str`, so findings can be
/// counted and logged by id without allocating.
#[derive(Clone)]
pub struct DetectorId(IdRepr);

#[derive(Clone)]
enum IdRepr {
    Builtin(&'static str),
    Custom(Arc<str>),
}

impl DetectorId {
    pub(crate) fn builtin(id: &'static str) -> DetectorId {
        DetectorId(IdRepr::Builtin(id))
    }

    pub(crate) fn custom(id: &str) -> DetectorId {
        DetectorId(IdRepr::Custom(Arc::from(id)))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            IdRepr::Builtin(s) => s,
            IdRepr::Custom(s) => s,
        }
    }
}

impl Deref for DetectorId {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for DetectorId {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for DetectorId {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for DetectorId {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for DetectorId {}

impl PartialEq<str> for DetectorId {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for DetectorId {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

// Hash and order by the string, consistent with `Borrow<str>` (maps keyed by id can be queried by &str).
impl Hash for DetectorId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl PartialOrd for DetectorId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for DetectorId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl fmt::Debug for DetectorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for DetectorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One detected item. Offsets are bytes into the scanned text and always on char boundaries, so
/// `&text[f.start..f.end]` is the sensitive part (for an assignment such as `password = "…"`, only
/// the value, which is what a redaction should replace).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Finding {
    pub detector: DetectorId,
    pub category: Category,
    pub start: usize,
    pub end: usize,
}

impl Finding {
    /// The byte range of the finding.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.start..self.end
    }
}

/// A `[[privacy.rules]]` entry: a regular expression, a list of terms, or both, under one id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CustomRule {
    /// Names the rule in findings, errors, metrics and audit records; letters, digits, `_`, `-`, `.`.
    pub id: String,
    /// A regular expression in Rust `regex` syntax. It must not match the empty string.
    pub regex: Option<String>,
    /// Literal terms, matched case-insensitively as whole words (`acme` matches `ACME.` but not
    /// `acmes`).
    pub terms: Vec<String>,
}

/// Why a [`Scanner`] could not be built. These are configuration mistakes; each names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrivacyError {
    #[error("privacy rule `{id}`: invalid regex: {message}")]
    BadRegex { id: String, message: String },
    #[error("privacy rule `{id}`: the regex matches the empty string")]
    EmptyMatch { id: String },
    #[error("privacy rule `{id}`: give a `regex` or a non-empty `terms` list")]
    EmptyRule { id: String },
    #[error("privacy rule `{id}`: term {index} is blank")]
    BlankTerm { id: String, index: usize },
    #[error("privacy rule id {id:?}: use 1 to 64 letters, digits, `_`, `-` or `.`")]
    BadId { id: String },
    #[error("privacy rule id `{id}` is used twice (or is a built-in detector's id)")]
    DuplicateId { id: String },
    #[error("privacy rules: the combined patterns are too large to compile: {message}")]
    TooLarge { message: String },
}

#[cfg(test)]
mod tests;
