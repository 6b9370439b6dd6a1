//! `moatd store migrate`: copies keys, teams, usage and sealed provider keys from one store to
//! another (SQLite to PostgreSQL, typically), so a single node can become a cluster. Safe to run
//! again: what is already there is kept (keys and teams by id, usage rows by request id).

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use moat_store::{PgOptions, Store, StoreError};

#[derive(Debug, Subcommand)]
pub enum StoreCmd {
    /// Copy keys, teams, usage and sealed provider keys into another store (run it with the gateway
    /// stopped, or run it again afterwards: copying is idempotent).
    Migrate {
        /// Where to copy to: postgres://USER@HOST:PORT/DB (or sqlite:///path.db).
        #[arg(long, value_name = "URL")]
        to: String,
        /// Where to copy from (default: the store the config names).
        #[arg(long, value_name = "URL")]
        from: Option<String>,
    },
}

/// Counts of what was copied and what was already there.
#[derive(Debug, Default)]
struct Copied {
    teams: (u64, u64),
    keys: (u64, u64),
    provider_secrets: u64,
    team_secrets: u64,
    usage: u64,
}

fn added(result: Result<(), StoreError>, counts: &mut (u64, u64)) -> anyhow::Result<()> {
    match result {
        Ok(()) => counts.0 += 1,
        Err(StoreError::Duplicate(_)) => counts.1 += 1,
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

pub fn store(config: &Option<PathBuf>, cmd: StoreCmd) -> anyhow::Result<()> {
    let StoreCmd::Migrate { to, from } = cmd;
    let cfg = crate::admin_cmd::load_config(config)?;
    let from = from.unwrap_or_else(|| cfg.store.url.clone());
    if from == to {
        anyhow::bail!("--to names the store being copied from");
    }
    let source = moat_store::open(&from, PgOptions::default())
        .with_context(|| format!("opening {}", moat_store::redacted_url(&from)))?;
    let target = moat_store::open(&to, PgOptions::default())
        .with_context(|| format!("opening {}", moat_store::redacted_url(&to)))?;
    let copied = copy(source.as_ref(), target.as_ref())?;
    println!(
        "copied {} → {}:\n  teams: {} new, {} already there\n  keys: {} new, {} already there\n  \
         provider keys: {}\n  teams' provider keys: {}\n  usage rows: {} (duplicates are ignored)",
        moat_store::redacted_url(&from),
        moat_store::redacted_url(&to),
        copied.teams.0,
        copied.teams.1,
        copied.keys.0,
        copied.keys.1,
        copied.provider_secrets,
        copied.team_secrets,
        copied.usage
    );
    println!(
        "provider keys stay sealed under the server secret: give every node the same secret \
         ([store] secret_file or MOAT_SECRET) as this one."
    );
    Ok(())
}

fn copy(source: &dyn Store, target: &dyn Store) -> anyhow::Result<Copied> {
    let mut c = Copied::default();
    // Teams before keys: keys refer to them.
    for team in source.teams()? {
        added(target.insert_team(&team), &mut c.teams)?;
    }
    for key in source.keys()? {
        added(target.insert_key(&key), &mut c.keys)?;
    }
    for s in source.provider_secrets()? {
        target.put_provider_secret(&s.provider, &s.nonce, &s.ciphertext, moat_gateway::ledger::now())?;
        c.provider_secrets += 1;
    }
    for s in source.team_provider_secrets()? {
        target.put_team_provider_secret(&s, moat_gateway::ledger::now())?;
        c.team_secrets += 1;
    }
    let mut after = String::new();
    loop {
        let rows = source.usage_rows(&after, 5000)?;
        let Some(last) = rows.last() else { break };
        after = last.request_id.clone();
        c.usage += rows.len() as u64;
        for row in rows {
            target.record_usage(row)?;
        }
        target.flush()?;
    }
    target.flush()?;
    Ok(c)
}
