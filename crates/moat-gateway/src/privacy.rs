//! Privacy routing: every prompt is scanned before anything leaves, and each finding's rule decides
//! what happens — forward it, keep it on local models, replace it with a placeholder (restored in the
//! answer), or refuse the request. Detection itself is `moat_policy::privacy` (pure); this module maps
//! findings to actions and applies them to a request.

mod redact;
mod restore;

use std::collections::{BTreeMap, HashMap};

use moat_policy::privacy::{Category, CustomRule, Scanner};

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

/// What the scan of one request decided.
#[derive(Debug, Default)]
pub struct Inspection {
    pub decisions: Vec<Decision>,
    /// The first rule whose action is `block`, if any.
    pub blocked_by: Option<String>,
    /// Rules whose action is `local_only`.
    pub local_only: Vec<String>,
    /// Placeholders put into the request, to restore in the answer.
    pub redactions: Redactions,
}

/// The compiled privacy policy.
pub struct Privacy {
    scanner: Scanner,
    secrets: PrivacyAction,
    personal: PrivacyAction,
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
        let known: Vec<String> = scanner.detectors().map(|(id, _)| id.to_string()).collect();
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

    fn action(&self, detector: &str, category: Category) -> PrivacyAction {
        if let Some(a) = self.overrides.get(detector) {
            return *a;
        }
        match category {
            Category::Secret => self.secrets,
            Category::Personal => self.personal,
            Category::Custom => self.custom.get(detector).copied().unwrap_or(PrivacyAction::Block),
        }
    }

    /// Scans the request's texts, redacting in place where a rule says so.
    pub fn inspect(&self, texts: Vec<&mut String>) -> Inspection {
        let mut out = Inspection::default();
        let mut counts: BTreeMap<(String, PrivacyAction), u32> = BTreeMap::new();
        for text in texts {
            if !self.scanner.has_findings(text) {
                continue;
            }
            let findings = self.scanner.scan(text);
            let mut to_redact = Vec::new();
            for f in findings {
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
                    PrivacyAction::Redact => to_redact.push((f.start, f.end, detector.to_string())),
                    _ => {}
                }
            }
            if !to_redact.is_empty() && out.blocked_by.is_none() {
                out.redactions.apply(text, &to_redact);
            }
        }
        out.decisions = counts
            .into_iter()
            .map(|((rule, action), count)| Decision { rule, action, count })
            .collect();
        out
    }
}
