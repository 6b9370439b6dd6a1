//! Route policies from `[[models]]` (`strategy`, `weights`, `content_policy_fallback`) and the
//! per-target limits from `[[providers]]` (`rpm`, `tpm`, `context_window`), validated once.

use std::collections::{BTreeMap, HashMap};

use moat_policy::balance::Strategy;
use moat_policy::caps::Cap;

use super::file::{ModelSection, ProviderSection};
use super::resolve::ConfigError;

/// How one alias chooses among its targets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoutePolicy {
    pub strategy: Strategy,
    /// `weighted`: one per route entry.
    pub weights: Vec<u32>,
    pub content_policy_fallback: bool,
}

/// A provider's per-model limits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetLimits {
    /// rpm/tpm caps by model; `"*"` is one shared bucket for every other model.
    pub caps: BTreeMap<String, Cap>,
    /// Context windows by model; `"*"` for the rest.
    pub context_windows: BTreeMap<String, u64>,
}

impl TargetLimits {
    /// The cap key a model counts under (its own entry, else `"*"`), if it is capped.
    pub fn cap_for(&self, model: &str) -> Option<(&str, Cap)> {
        self.caps
            .get_key_value(model)
            .or_else(|| self.caps.get_key_value("*"))
            .map(|(k, c)| (k.as_str(), *c))
    }

    /// The model's context window, if configured.
    pub fn context_window(&self, model: &str) -> Option<u64> {
        self.context_windows
            .get(model)
            .or_else(|| self.context_windows.get("*"))
            .copied()
    }
}

pub(super) fn route_policies(models: &[ModelSection]) -> Result<HashMap<String, RoutePolicy>, ConfigError> {
    let mut out = HashMap::new();
    for m in models {
        let bad = |message: String| ConfigError::Parse {
            path: format!("models.{}", m.name),
            message,
        };
        let strategy = match m.strategy.as_deref() {
            None => Strategy::Order,
            Some(s) => Strategy::parse(s).ok_or_else(|| {
                let known: Vec<&str> = Strategy::ALL.iter().map(|s| s.as_str()).collect();
                bad(format!("strategy {s:?}: expected one of {}", known.join(", ")))
            })?,
        };
        let weights = match (&m.weights, strategy) {
            (None, Strategy::Weighted) => return Err(bad("strategy \"weighted\" needs `weights`".into())),
            (Some(_), s) if s != Strategy::Weighted => {
                return Err(bad("`weights` apply to strategy = \"weighted\" only".into()))
            }
            (Some(w), _) if w.len() != m.route.len() => {
                return Err(bad(format!(
                    "{} weights for {} route entries: give one per entry",
                    w.len(),
                    m.route.len()
                )))
            }
            (Some(w), _) if w.iter().all(|&x| x == 0) => {
                return Err(bad("every weight is 0: at least one must be positive".into()))
            }
            (w, _) => w.clone().unwrap_or_default(),
        };
        out.insert(
            m.name.clone(),
            RoutePolicy {
                strategy,
                weights,
                content_policy_fallback: m.content_policy_fallback,
            },
        );
    }
    Ok(out)
}

pub(super) fn target_limits(p: &ProviderSection) -> Result<TargetLimits, ConfigError> {
    let zero = |field: &str, model: &str| ConfigError::Zero {
        field: format!("providers.{}.{field}.{model:?}", p.name),
    };
    let mut caps: BTreeMap<String, Cap> = BTreeMap::new();
    for (model, &rpm) in &p.rpm {
        if rpm == 0 {
            return Err(zero("rpm", model));
        }
        caps.entry(model.clone()).or_default().rpm = Some(rpm);
    }
    for (model, &tpm) in &p.tpm {
        if tpm == 0 {
            return Err(zero("tpm", model));
        }
        caps.entry(model.clone()).or_default().tpm = Some(tpm);
    }
    for (model, &w) in &p.context_window {
        if w == 0 {
            return Err(zero("context_window", model));
        }
    }
    Ok(TargetLimits {
        caps,
        context_windows: p.context_window.clone(),
    })
}

#[cfg(test)]
mod tests;
