//! Admission: what must hold before a request may leave — the key's own rules, the privacy scan's
//! routing effects, OpenRouter preferences, and the budget hold.

use std::sync::Arc;

use moat_policy::budget::Hold;
use moat_policy::demand::Demand;
use moat_policy::route::{ProviderId, Target};
use moat_upstream::adapter::{ProviderAdapter, Retention};
use moat_wire::openai::ProviderPreferences;

use crate::error::Refused;
use crate::gateway::Gateway;
use crate::identity::KeyEntry;
use crate::ledger::Payer;
use crate::pricebook::ModelFacts;
use crate::privacy::{Inspection, UNINSPECTABLE};
use crate::GatewayError;

/// A virtual key's own rules: its model allow-list (checked against the names the client used), and
/// `local_only`, which keeps only targets on `local = true` providers.
pub(crate) fn apply_key_rules(
    gw: &Gateway,
    key: &KeyEntry,
    model: Option<&str>,
    fallbacks: &[String],
    targets: &mut Vec<Target>,
) -> Result<(), GatewayError> {
    for name in model.into_iter().chain(fallbacks.iter().map(String::as_str)) {
        if !key.models.allows(name) {
            return Err(GatewayError::Forbidden {
                message: format!(
                    "this key may not use model `{name}` (allowed: {})",
                    key.models.patterns().join(", ")
                ),
                code: Refused::ModelNotAllowed,
            });
        }
    }
    if key.local_only {
        targets.retain(|t| is_local(gw, t.provider));
        if targets.is_empty() {
            return Err(GatewayError::Forbidden {
                message: "this key is local-only and no local provider serves the requested model".into(),
                code: Refused::LocalOnly,
            });
        }
    }
    Ok(())
}

/// The privacy scan's routing effects: a `block` finding refuses the request (naming the rule, never
/// the text); a `local_only` finding, or content the scan cannot read, keeps only `local = true`
/// targets.
pub(crate) fn apply_privacy(
    gw: &Gateway,
    inspection: &Inspection,
    targets: &mut Vec<Target>,
) -> Result<(), GatewayError> {
    for d in &inspection.decisions {
        metrics::counter!(crate::observe::metrics::POLICY_DECISIONS, "rule" => d.rule.clone(), "action" => d.action.as_str())
            .increment(u64::from(d.count));
    }
    if let Some(rule) = &inspection.blocked_by {
        return Err(GatewayError::Forbidden {
            message: format!("request blocked by privacy rule `{rule}`"),
            code: Refused::PolicyBlocked,
        });
    }
    if let Some(opaque) = &inspection.uninspectable {
        targets.retain(|t| is_local(gw, t.provider));
        if targets.is_empty() {
            return Err(GatewayError::Forbidden {
                message: format!(
                    "`{}` holds content moatd cannot inspect ({}); such content goes only to local providers (privacy rule `{UNINSPECTABLE}`), and no local provider serves the requested model",
                    opaque.path, opaque.media_type
                ),
                code: Refused::PolicyUninspectable,
            });
        }
    }
    if !inspection.local_only.is_empty() {
        targets.retain(|t| is_local(gw, t.provider));
        if targets.is_empty() {
            return Err(GatewayError::Forbidden {
                message: format!(
                    "privacy rule(s) `{}` keep this request on local models, and no local provider serves the requested model",
                    inspection.local_only.join("`, `")
                ),
                code: Refused::PolicyLocalOnly,
            });
        }
    }
    Ok(())
}

/// The provider preferences to send: the client's, plus the gateway's data-retention settings for
/// kinds that act on them (OpenRouter's `provider.data_collection` and `zdr`).
pub(crate) fn provider_prefs_for(
    gw: &Gateway,
    adapter: &dyn ProviderAdapter,
    client: &Option<ProviderPreferences>,
) -> Option<ProviderPreferences> {
    let retention = Retention {
        deny_data_collection: gw.privacy.deny_data_collection,
        require_zdr: gw.privacy.require_zdr,
    };
    adapter.provider_preferences(client, retention)
}

/// Whether a provider runs on our own hardware (`local = true`).
pub(crate) fn is_local(gw: &Gateway, provider: ProviderId) -> bool {
    gw.providers.get(provider).is_some_and(|p| p.local)
}

/// The hold for a request: the most any of its targets could cost (the prompt as estimated from the
/// body, every output it asks for at the client's cap or the model's), and each target's facts for
/// settling later. A metered payer with a budget needs every price; an unknown one is refreshed from
/// the providers' model lists once, then refused.
pub(crate) async fn reservation(
    gw: &Arc<Gateway>,
    payer: &Payer,
    targets: &[Target],
    demand: &Demand,
    generates: bool,
) -> Result<(Hold, Vec<ModelFacts>), GatewayError> {
    let budgeted = payer.metered
        && payer
            .key_id
            .as_deref()
            .is_some_and(|k| gw.limits.has_budget(k, payer.team_id.as_deref()));
    let mut facts: Vec<ModelFacts> = targets
        .iter()
        .map(|t| gw.prices.lookup(t.provider, &t.model))
        .collect();
    if budgeted && facts.iter().any(|f| f.price.is_none()) {
        super::models::refresh(gw).await;
        facts = targets
            .iter()
            .map(|t| gw.prices.lookup(t.provider, &t.model))
            .collect();
    }
    let prompt = demand.prompt_tokens;
    let mut hold = Hold::default();
    for (target, f) in targets.iter().zip(&facts) {
        let output = if generates {
            demand.output_tokens(f.max_output, gw.server.default_max_output_tokens)
        } else {
            0
        };
        let cost = match f.price {
            Some(p) => p.cost(prompt, output),
            None if budgeted => {
                return Err(GatewayError::PriceUnknown(format!(
                    "{}/{}",
                    gw.catalog.provider_name(target.provider),
                    target.model
                )))
            }
            None => 0,
        };
        hold.cost = hold.cost.max(cost);
        hold.tokens = hold.tokens.max(prompt.saturating_add(output));
    }
    Ok((hold, facts))
}
