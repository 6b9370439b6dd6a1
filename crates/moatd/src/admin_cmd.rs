//! `moatd keys|teams|providers|usage`: administration from the command line, on the same store the
//! gateway uses, SQLite or PostgreSQL (running gateways see changes on their next request, or within
//! a second on every node of a cluster).

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use moat_gateway::admin::{self, LimitSpec, NewKey, NewTeam};
use moat_gateway::config::{Config, FileConfig};
use moat_gateway::gateway_secret;
use moat_gateway::ledger::now;
use moat_store::Store;

#[derive(Debug, Args, Clone, Default)]
pub struct LimitArgs {
    /// Spend limit in USD: 5/day, 50/month, or 100 (lifetime).
    #[arg(long)]
    budget: Option<String>,
    /// Requests per minute.
    #[arg(long)]
    rpm: Option<u32>,
    /// Tokens per minute.
    #[arg(long)]
    tpm: Option<u64>,
}

impl LimitArgs {
    fn spec(&self) -> LimitSpec {
        LimitSpec {
            budget: self.budget.clone(),
            rpm: self.rpm,
            tpm: self.tpm,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// Create a virtual key; prints it once on stdout.
    Create {
        #[arg(long)]
        name: String,
        /// Team (by name) whose limits also apply.
        #[arg(long)]
        team: Option<String>,
        #[command(flatten)]
        limits: LimitArgs,
        /// Allowed models, comma-separated globs (e.g. "local/*,openrouter/openai/*").
        #[arg(long, value_delimiter = ',')]
        models: Vec<String>,
        /// Only route this key's requests to `local = true` providers.
        #[arg(long)]
        local_only: bool,
        /// Expiry: 30d, 12h, 2w…
        #[arg(long)]
        expires: Option<String>,
        /// Print JSON (id, name, prefix, key).
        #[arg(long)]
        json: bool,
    },
    /// List keys: prefix, name, team, spend, limits, expiry, status.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key (by id, prefix, name or the whole key); the next request with it is refused.
    Revoke { key: String },
    /// Give a key a new secret, keeping its limits and spend; prints the new key once. The key is
    /// named by id, prefix, name or the whole key.
    Rotate { key: String },
    /// Change a key's limits (unset flags remove that limit).
    Limits {
        key: String,
        #[command(flatten)]
        limits: LimitArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum TeamsCmd {
    /// Create a team with its own limits.
    Create {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// List teams with their spend and limits.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Change a team's limits (unset flags remove that limit).
    Limits {
        team: String,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Store the team's own API key for a provider (bring your own key), encrypted; read from stdin
    /// or a hidden prompt, never the command line. The team's requests to that provider use it.
    SetKey { team: String, provider: String },
    /// Remove the team's own key for a provider; its requests use the shared key again.
    RemoveKey { team: String, provider: String },
}

#[derive(Debug, Subcommand)]
pub enum ProvidersCmd {
    /// Store a provider's API key, encrypted under the server secret; reads it from stdin (or a
    /// hidden prompt on a terminal), never from the command line.
    SetKey { name: String },
}

#[derive(Debug, Args)]
pub struct UsageArgs {
    /// Group by key, team or model.
    #[arg(long, default_value = "key")]
    by: String,
    /// Only usage since this date (YYYY-MM-DD, UTC).
    #[arg(long)]
    since: Option<String>,
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    #[arg(long)]
    csv: bool,
}

/// Records an admin action made from the command line in the audit log (when enabled).
fn record(config: &Config, action: &str, target: &str, details: serde_json::Value) -> anyhow::Result<()> {
    if let Some(log) = moat_gateway::audit::open(config)? {
        moat_gateway::audit::admin(Some(&log), "cli", action, target, details);
        log.flush().context("writing the audit record")?;
    }
    Ok(())
}

/// The store and secret named by the config (or the defaults).
pub(crate) fn open(
    config: &Option<PathBuf>,
) -> anyhow::Result<(
    std::sync::Arc<dyn Store>,
    moat_gateway::secret::ServerSecret,
    Config,
)> {
    let config = load_config(config)?;
    let store = config
        .store
        .open()
        .with_context(|| format!("opening {}", moat_store::redacted_url(&config.store.url)))?;
    let secret = gateway_secret(&config)?;
    Ok((store, secret, config))
}

/// The config file named (or the defaults).
pub(crate) fn load_config(config: &Option<PathBuf>) -> anyhow::Result<Config> {
    let file = match config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    Ok(Config::resolve(file, &|name| std::env::var(name).ok())?)
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn or_dash<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

pub fn keys(config: &Option<PathBuf>, cmd: KeysCmd) -> anyhow::Result<()> {
    let (store, secret, cfg) = open(config)?;
    match cmd {
        KeysCmd::Create {
            name,
            team,
            limits,
            models,
            local_only,
            expires,
            json,
        } => {
            let new = NewKey {
                name,
                team,
                limits: limits.spec(),
                models,
                local_only,
                expires,
            };
            let issued = admin::create_key(store.as_ref(), &secret, &new, now())?;
            record(&cfg, "key.create", &issued.id, admin::describe_new_key(&new))?;
            if json {
                return print_json(&issued);
            }
            eprintln!(
                "created key {} ({}); it is shown only now, store it safely:",
                issued.id, issued.name
            );
            println!("{}", issued.key);
        }
        KeysCmd::List { json } => {
            let keys = admin::list_keys(store.as_ref(), now())?;
            if json {
                return print_json(&keys);
            }
            println!(
                "{:<17} {:<14} {:<16} {:<12} {:<12} {:<10} {:>6} {:>8} {:<8}",
                "ID", "PREFIX", "NAME", "TEAM", "BUDGET", "SPEND", "RPM", "TPM", "STATUS"
            );
            for k in keys {
                println!(
                    "{:<17} {:<14} {:<16} {:<12} {:<12} {:<10} {:>6} {:>8} {:<8}{}{}",
                    k.id,
                    k.prefix,
                    k.name,
                    or_dash(k.team),
                    or_dash(k.budget),
                    k.spend,
                    or_dash(k.rpm),
                    or_dash(k.tpm),
                    k.status,
                    if k.local_only { " local-only" } else { "" },
                    if k.models.is_empty() {
                        String::new()
                    } else {
                        format!(" models={}", k.models.join(","))
                    },
                );
            }
        }
        KeysCmd::Revoke { key } => {
            let id = admin::revoke_key(store.as_ref(), &secret, &key, now())?;
            record(&cfg, "key.revoke", &id, serde_json::json!({}))?;
            eprintln!("revoked {id}");
        }
        KeysCmd::Rotate { key } => {
            let issued = admin::rotate_key(store.as_ref(), &secret, &key)?;
            record(
                &cfg,
                "key.rotate",
                &issued.id,
                serde_json::json!({"prefix": issued.prefix}),
            )?;
            eprintln!(
                "rotated {}; the old key no longer works. New key, shown only now:",
                issued.id
            );
            println!("{}", issued.key);
        }
        KeysCmd::Limits { key, limits } => {
            let id = admin::set_key_limits(store.as_ref(), &secret, &key, &limits.spec())?;
            record(&cfg, "key.limits", &id, serde_json::to_value(limits.spec())?)?;
            eprintln!("limits of {id} updated");
        }
    }
    Ok(())
}

pub fn teams(config: &Option<PathBuf>, cmd: TeamsCmd) -> anyhow::Result<()> {
    let (store, secret, cfg) = open(config)?;
    match cmd {
        TeamsCmd::Create { name, limits } => {
            let team = admin::create_team(
                store.as_ref(),
                &NewTeam {
                    name,
                    limits: limits.spec(),
                },
                now(),
            )?;
            record(
                &cfg,
                "team.create",
                &team.id,
                serde_json::json!({"name": team.name, "limits": limits.spec()}),
            )?;
            eprintln!("created team {} ({})", team.name, team.id);
        }
        TeamsCmd::List { json } => {
            let teams = admin::list_teams(store.as_ref(), now())?;
            if json {
                return print_json(&teams);
            }
            println!(
                "{:<18} {:<16} {:<12} {:<10} {:>6} {:>8}",
                "ID", "NAME", "BUDGET", "SPEND", "RPM", "TPM"
            );
            for t in teams {
                println!(
                    "{:<18} {:<16} {:<12} {:<10} {:>6} {:>8}",
                    t.id,
                    t.name,
                    or_dash(t.budget),
                    t.spend,
                    or_dash(t.rpm),
                    or_dash(t.tpm)
                );
            }
        }
        TeamsCmd::Limits { team, limits } => {
            admin::set_team_limits(store.as_ref(), &team, &limits.spec())?;
            record(&cfg, "team.limits", &team, serde_json::to_value(limits.spec())?)?;
            eprintln!("limits of team {team} updated");
        }
        TeamsCmd::SetKey { team, provider } => {
            if !cfg.providers.iter().any(|p| p.upstream.name == provider) {
                eprintln!("note: no provider named `{provider}` in the config yet; the key is stored for when there is");
            }
            let key = read_secret(&format!(
                "API key of team `{team}` for `{provider}` (input hidden): "
            ))?;
            let team_id =
                admin::set_team_provider_key(store.as_ref(), &secret, &team, &provider, &key, now())?;
            record(
                &cfg,
                "team.set_provider_key",
                &team_id,
                serde_json::json!({"provider": provider}),
            )?;
            eprintln!(
                "stored team {team}'s own key for `{provider}` (encrypted); a running moatd uses it from the team's next request"
            );
        }
        TeamsCmd::RemoveKey { team, provider } => {
            let team_id = admin::remove_team_provider_key(store.as_ref(), &team, &provider)?;
            record(
                &cfg,
                "team.remove_provider_key",
                &team_id,
                serde_json::json!({"provider": provider}),
            )?;
            eprintln!("removed team {team}'s own key for `{provider}`");
        }
    }
    Ok(())
}

/// A secret from stdin, or a hidden prompt on a terminal: never from the command line.
fn read_secret(prompt: &str) -> anyhow::Result<String> {
    let key = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(prompt).context("reading the key")?
    } else {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the key from stdin")?;
        text
    };
    if key.trim().is_empty() {
        bail!("no key given on stdin");
    }
    Ok(key)
}

pub fn providers(config: &Option<PathBuf>, cmd: ProvidersCmd) -> anyhow::Result<()> {
    let (store, secret, cfg) = open(config)?;
    let ProvidersCmd::SetKey { name } = cmd;
    if !cfg.providers.iter().any(|p| p.upstream.name == name) && name != "openrouter" {
        eprintln!("note: no provider named `{name}` in the config yet; the key is stored for when there is");
    }
    let key = read_secret(&format!("API key for `{name}` (input hidden): "))?;
    admin::set_provider_key(store.as_ref(), &secret, &name, &key, now())?;
    record(&cfg, "provider.set_key", &name, serde_json::json!({}))?;
    eprintln!("stored the key for `{name}` (encrypted); restart moatd to use it");
    Ok(())
}

pub fn usage(config: &Option<PathBuf>, args: UsageArgs) -> anyhow::Result<()> {
    let (store, _, _) = open(config)?;
    let by = admin::group_by(&args.by)?;
    let since = match &args.since {
        Some(d) => admin::parse_date(d)?,
        None => 0,
    };
    let lines = admin::usage(store.as_ref(), by, since)?;
    if args.json {
        return print_json(&lines);
    }
    if args.csv {
        println!("{},requests,prompt_tokens,completion_tokens,cost_usd", args.by);
        for l in lines {
            println!(
                "{},{},{},{},{}",
                csv_field(&l.group),
                l.requests,
                l.prompt_tokens,
                l.completion_tokens,
                l.cost_usd
            );
        }
        return Ok(());
    }
    println!(
        "{:<40} {:>9} {:>12} {:>12} {:>12}",
        args.by.to_uppercase(),
        "REQUESTS",
        "PROMPT",
        "COMPLETION",
        "COST USD"
    );
    for l in lines {
        println!(
            "{:<40} {:>9} {:>12} {:>12} {:>12}",
            l.group, l.requests, l.prompt_tokens, l.completion_tokens, l.cost_usd
        );
    }
    Ok(())
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
