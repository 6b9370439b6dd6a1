//! Usage as the console draws it: totals and time series by team or model, optionally held to one
//! team (what a team admin sees), with team ids replaced by names.

use moat_policy::budget::format_usd;
use moat_store::{GroupBy, Store};
use serde::Serialize;

use super::{AdminError, UsageView};

/// One bucket of a series.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesPoint {
    /// Bucket start, Unix seconds.
    pub start: i64,
    pub group: String,
    pub requests: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_usd: String,
    /// The same cost as a number, for charts.
    pub cost: f64,
}

/// Team ids in `group` replaced by team names (`-`, no team, stays).
fn team_names(store: &dyn Store) -> Result<Vec<(String, String)>, AdminError> {
    Ok(store.teams()?.into_iter().map(|t| (t.id, t.name)).collect())
}

fn named(group: String, by: GroupBy, names: &[(String, String)]) -> String {
    if by != GroupBy::Team {
        return group;
    }
    names
        .iter()
        .find(|(id, _)| *id == group)
        .map_or(group, |(_, n)| n.clone())
}

/// Usage since `since` in `bucket`-second buckets, by `by`; only `team`'s (a name) when given.
pub fn series(
    store: &dyn Store,
    by: GroupBy,
    since: i64,
    bucket: i64,
    team: Option<&str>,
) -> Result<Vec<SeriesPoint>, AdminError> {
    store.flush()?;
    let team_id = team.map(|t| super::team_id(store, t)).transpose()?;
    let names = team_names(store)?;
    Ok(store
        .usage_series(by, since, bucket, team_id.as_deref())?
        .into_iter()
        .map(|p| SeriesPoint {
            start: p.start,
            group: named(p.line.group, by, &names),
            requests: p.line.requests,
            prompt_tokens: p.line.prompt_tokens,
            completion_tokens: p.line.completion_tokens,
            cost_usd: format_usd(p.line.cost_nanos),
            cost: p.line.cost_nanos as f64 / moat_policy::budget::NANOS_PER_USD as f64,
        })
        .collect())
}

/// The usage report held to one team (by name): its keys, itself, or its models.
pub fn team_usage(
    store: &dyn Store,
    by: GroupBy,
    since: i64,
    team: &str,
) -> Result<Vec<UsageView>, AdminError> {
    store.flush()?;
    let team_id = super::team_id(store, team)?;
    // One bucket wide enough to hold everything since `since`, so the store's order (cost, highest
    // first) is the report's.
    Ok(store
        .usage_series(by, since, i64::MAX / 4, Some(&team_id))?
        .into_iter()
        .map(|p| UsageView {
            group: if by == GroupBy::Team {
                team.to_string()
            } else {
                p.line.group
            },
            requests: p.line.requests,
            prompt_tokens: p.line.prompt_tokens,
            completion_tokens: p.line.completion_tokens,
            cost_usd: format_usd(p.line.cost_nanos),
        })
        .collect())
}
