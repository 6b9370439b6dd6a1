//! Privacy routing: every request body is scanned whole before anything leaves, and each finding's
//! rule decides what happens — forward it, keep it on local models, replace it with a placeholder
//! before it goes to a non-local provider (restored in the answer), or refuse the request. Detection
//! and the walk over the body are `moat_policy::privacy` (pure); this module maps findings to
//! actions and applies them.

mod redact;
mod restore;

use std::collections::{BTreeMap, HashMap};

use moat_policy::privacy::body::{self, BodyFinding, Opaque};
use moat_policy::privacy::{Category, CustomRule, Scanner};
use serde_json::Value;

use crate::config::{PrivacyAction, PrivacySection};

pub use redact::Redactions;
pub use restore::StreamRestorer;

/// One rule's effect on one request: what fired, what it did, how often. Never the matched text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub rule: String,
    pub action: PrivacyAction,
    pub count: u32,
}

impl PrivacyAction {
    /// The name used in config, logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            PrivacyAction::Allow => "allow",
            PrivacyAction::LocalOnly => "local_only",
            PrivacyAction::Redact => "redact",
            PrivacyAction::Block => "block",
        }
    }
}

/// The pseudo-detector for content the scan cannot read (images, PDFs, audio): its action is the
/// `secrets` one unless overridden, and anything but `allow` keeps such a request on local providers.
pub const UNINSPECTABLE: &str = "uninspectable";

/// Personal-data detectors that are `redact` by default (their data identifies a person's money or
/// identity outright); the others (`email`, `phone`) are `allow`. `personal = "…"` sets them all.
const REDACTED_BY_DEFAULT: &[&str] = &["payment_card", "iban", "us_ssn"];

/// What the scan of one request decided.
#[derive(Debug, Default)]
pub struct Inspection {
    pub decisions: Vec<Decision>,
    /// The first rule whose action is `block`, if any.
    pub blocked_by: Option<String>,
    /// Rules whose action is `local_only`.
    pub local_only: Vec<String>,
    /// The first piece of content the scan could not read, when policy keeps such content on local
    /// providers (its path in the body and its media type, never the content).
    pub uninspectable: Option<Opaque>,
    /// What `redact` rules found: replaced before the request goes to a non-local provider.
    redact: Vec<BodyFinding>,
}

impl Inspection {
    /// The body as it may go to a non-local provider, with the placeholders to restore in the
    /// answer; `None` when no `redact` rule fired.
    pub fn redacted(&self, body: &Value) -> Option<(Value, Redactions)> {
        if self.redact.is_empty() {
            return None;
        }
        let mut out = body.clone();
        let mut redactions = Redactions::default();
        let findings: Vec<&BodyFinding> = self.redact.iter().collect();
        body::redact(&mut out, &findings, |detector, original| {
            redactions.placeholder_for(original, detector)
        });
        Some((out, redactions))
    }
}

/// The compiled privacy policy.
pub struct Privacy {
    scanner: Scanner,
    secrets: PrivacyAction,
    /// `None`: each personal detector's own default (see [`REDACTED_BY_DEFAULT`]).
    personal: Option<PrivacyAction>,
    overrides: BTreeMap<String, PrivacyAction>,
    custom: HashMap<String, PrivacyAction>,
    /// Add `provider.data_collection = "deny"` to OpenRouter requests that do not set it.
    pub deny_data_collection: bool,
    /// Add `provider.zdr = true` to OpenRouter requests.
    pub require_zdr: bool,
}

impl std::fmt::Debug for Privacy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Privacy")
            .field("secrets", &self.secrets)
            .field("personal", &self.personal)
            .finish()
    }
}

impl Privacy {
    /// Compiles the `[privacy]` section; unknown detector ids in overrides and bad regexes are errors.
    pub fn new(section: &PrivacySection) -> Result<Privacy, String> {
        let rules: Vec<CustomRule> = section
            .rules
            .iter()
            .map(|r| CustomRule {
                id: r.id.clone(),
                regex: r.regex.clone(),
                terms: r.terms.clone(),
            })
            .collect();
        for r in &section.rules {
            if r.regex.is_none() && r.terms.is_empty() {
                return Err(format!("privacy rule `{}` needs a regex or terms", r.id));
            }
        }
        let scanner = Scanner::new(&rules).map_err(|e| format!("privacy: {e}"))?;
        let mut known: Vec<String> = scanner.detectors().map(|(id, _)| id.to_string()).collect();
        known.push(UNINSPECTABLE.to_owned());
        for id in section.detectors.keys() {
            if !known.contains(id) {
                return Err(format!(
                    "privacy.detectors: unknown detector `{id}` (known: {})",
                    known.join(", ")
                ));
            }
        }
        Ok(Privacy {
            scanner,
            secrets: section.secrets,
            personal: section.personal,
            overrides: section.detectors.clone(),
            custom: section.rules.iter().map(|r| (r.id.clone(), r.action)).collect(),
            deny_data_collection: section.data_collection == "deny",
            require_zdr: section.zdr,
        })
    }

    /// The action for a detector's findings.
    pub fn action(&self, detector: &str, category: Category) -> PrivacyAction {
        if let Some(a) = self.overrides.get(detector) {
            return *a;
        }
        match category {
            Category::Secret => self.secrets,
            Category::Personal => self
                .personal
                .unwrap_or(if REDACTED_BY_DEFAULT.contains(&detector) {
                    PrivacyAction::Redact
                } else {
                    PrivacyAction::Allow
                }),
            Category::Custom => self.custom.get(detector).copied().unwrap_or(PrivacyAction::Block),
        }
    }

    /// Scans the whole request body (every string, wherever it sits; see
    /// `moat_policy::privacy::body`) and decides what each finding does.
    pub fn inspect(&self, request: &Value) -> Inspection {
        let scan = body::inspect(&self.scanner, request);
        let mut out = Inspection::default();
        let mut counts: BTreeMap<(String, PrivacyAction), u32> = BTreeMap::new();
        for f in scan.findings {
            let detector: &str = &f.detector;
            let action = self.action(detector, f.category);
            *counts.entry((detector.to_string(), action)).or_default() += 1;
            match action {
                PrivacyAction::Block if out.blocked_by.is_none() => {
                    out.blocked_by = Some(detector.to_string())
                }
                PrivacyAction::LocalOnly if !out.local_only.iter().any(|r| r == detector) => {
                    out.local_only.push(detector.to_string())
                }
                PrivacyAction::Redact => out.redact.push(f),
                _ => {}
            }
        }
        if !scan.opaque.is_empty() {
            let action = self.action(UNINSPECTABLE, Category::Secret);
            // Content that cannot be read cannot be redacted or told apart: anything but `allow`
            // keeps it on local providers.
            let action = match action {
                PrivacyAction::Allow => PrivacyAction::Allow,
                _ => PrivacyAction::LocalOnly,
            };
            let n = u32::try_from(scan.opaque.len()).unwrap_or(u32::MAX);
            *counts.entry((UNINSPECTABLE.to_string(), action)).or_default() += n;
            if action != PrivacyAction::Allow {
                out.uninspectable = scan.opaque.into_iter().next();
            }
        }
        out.decisions = counts
            .into_iter()
            .map(|((rule, action), count)| Decision { rule, action, count })
            .collect();
        out
    }
}
