//! `moatd audit verify|export|checkpoints|prune`: the audit log from the command line, found through
//! the same config (`--config`/`MOATD_CONFIG`, else the defaults) the gateway uses. Safe to run while
//! the gateway writes: reads see a consistent snapshot, and `prune` appends through the same chain.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Subcommand;
use moat_audit::{AuditLog, AuditSettings};
use moat_gateway::config::{self, Config, FileConfig};

#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Walk the hash chain and check every signed checkpoint; print OK with the count, or exit 1
    /// naming the first broken record.
    Verify {
        /// Checkpoints exported earlier (`audit checkpoints --export`) and kept elsewhere: their key
        /// is trusted, and every one of them must match the log (catches a cut-off tail).
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
    },
    /// Write records as JSON Lines, oldest first.
    Export {
        /// Only records at or after this date (YYYY-MM-DD, UTC) or RFC 3339 time; default: all.
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
        /// Output format; only `jsonl` for now.
        #[arg(long, default_value = "jsonl")]
        format: String,
        /// Write to this file (created 0600) instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// List the signed checkpoints, or export them to keep elsewhere.
    Checkpoints {
        /// Write every checkpoint as JSON Lines to FILE (`-` for stdout).
        #[arg(long, value_name = "FILE")]
        export: Option<PathBuf>,
    },
    /// Apply `[audit] retention_days`: delete records older than that, up to the last checkpoint
    /// before them, keeping the rest verifiable.
    Prune,
}

/// Where the log is and how it is set up, from the config's `[audit]` section.
struct Location {
    url: String,
    key_file: PathBuf,
    settings: AuditSettings,
}

fn locate(config: &Option<PathBuf>) -> anyhow::Result<Location> {
    let file = match config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    let config = Config::resolve(file, &|name| std::env::var(name).ok())?;
    let a = &config.audit;
    let url = match &a.url {
        Some(u) => u.clone(),
        None => format!("sqlite://{}", config::data_dir().join("audit.db").display()),
    };
    let key_file = a
        .key_file
        .clone()
        .unwrap_or_else(|| config::data_dir().join("audit_signing_key"));
    let mut settings =
        AuditSettings::from_config(a.bodies, a.checkpoint_every, a.checkpoint_secs, a.retention_days);
    settings.node_id = moat_gateway::audit::node_id(&config);
    Ok(Location {
        url,
        key_file,
        settings,
    })
}

pub fn audit(config: &Option<PathBuf>, cmd: AuditCmd) -> anyhow::Result<()> {
    let loc = locate(config)?;
    match cmd {
        AuditCmd::Verify { checkpoint } => verify(&loc, checkpoint.as_deref()),
        AuditCmd::Export { since, format, out } => export(&loc, since.as_deref(), &format, out.as_deref()),
        AuditCmd::Checkpoints { export } => checkpoints(&loc, export.as_deref()),
        AuditCmd::Prune => prune(&loc),
    }
}

fn is_postgres(url: &str) -> bool {
    moat_store::is_postgres_url(url)
}

fn verify(loc: &Location, checkpoint: Option<&Path>) -> anyhow::Result<()> {
    if is_postgres(&loc.url) {
        // One chain per node: each is checked, and any broken one fails the command.
        let reports =
            moat_audit::verify_all(&loc.url, &loc.settings.node_id, checkpoint, Some(&loc.key_file))?;
        if reports.is_empty() {
            println!("OK: no chains yet");
        }
        let mut broken = Vec::new();
        for (node, report) in &reports {
            let line = format!("node {node}: {}", report.summary());
            if report.is_ok() {
                println!("{line}");
            } else {
                broken.push(line);
            }
        }
        if !broken.is_empty() {
            bail!("{}", broken.join("\n"));
        }
        return Ok(());
    }
    let report = moat_audit::verify(&loc.url, checkpoint, Some(&loc.key_file))?;
    if !report.is_ok() {
        bail!("{}", report.summary());
    }
    println!("{}", report.summary());
    Ok(())
}

fn export(loc: &Location, since: Option<&str>, format: &str, out: Option<&Path>) -> anyhow::Result<()> {
    if format != "jsonl" {
        bail!("unknown export format `{format}` (supported: jsonl)");
    }
    let since_ms = match since {
        Some(d) => moat_audit::parse_date(d)?,
        None => i64::MIN,
    };
    let mut w: Box<dyn Write> = match out {
        Some(path) => Box::new(std::io::BufWriter::new(
            moat_fs::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let n = if is_postgres(&loc.url) {
        // Every node's chain, each line naming its node.
        let readable = moat_audit::readable_chains(&loc.url)?;
        let mut n = 0;
        for (node, url) in &readable.chains {
            let mut lines = Vec::new();
            n += moat_audit::export_records(url, since_ms, &mut lines)?;
            for line in lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let mut v: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(line)?;
                v.insert("node".into(), node.clone().into());
                writeln!(w, "{}", serde_json::Value::Object(v))?;
            }
        }
        w.flush()?;
        n
    } else {
        moat_audit::export_records(&loc.url, since_ms, &mut w)?
    };
    eprintln!("exported {n} records");
    Ok(())
}

fn checkpoints(loc: &Location, export: Option<&Path>) -> anyhow::Result<()> {
    if is_postgres(&loc.url) {
        // Each node's checkpoints are signed by its own key: exporting takes this node's chain (to
        // keep beside its key for `verify --checkpoint`); listing shows them all.
        let readable = moat_audit::readable_chains(&loc.url)?;
        if export.is_some() {
            let Some((_, url)) = readable.chains.iter().find(|(n, _)| *n == loc.settings.node_id) else {
                bail!("no chain for node {} in the log", loc.settings.node_id);
            };
            let local = Location {
                url: url.clone(),
                key_file: loc.key_file.clone(),
                settings: loc.settings.clone(),
            };
            return checkpoints(&local, export);
        }
        for (node, url) in &readable.chains {
            println!("node {node}");
            checkpoints(
                &Location {
                    url: url.clone(),
                    key_file: loc.key_file.clone(),
                    settings: loc.settings.clone(),
                },
                None,
            )?;
        }
        return Ok(());
    }
    match export {
        Some(path) if path == Path::new("-") => {
            let mut w = std::io::stdout().lock();
            moat_audit::export_checkpoints(&loc.url, &mut w)?;
        }
        Some(path) => {
            // Written whole and renamed into place, so a copy job never picks up half a file.
            let tmp = path.with_extension("tmp");
            let mut w = std::io::BufWriter::new(
                moat_fs::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?,
            );
            let n = moat_audit::export_checkpoints(&loc.url, &mut w)?;
            w.into_inner()
                .map_err(|e| e.into_error())
                .and_then(|f| f.sync_all())
                .with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("exported {n} checkpoints to {}", path.display());
        }
        None => {
            let cps = moat_audit::list_checkpoints(&loc.url)?;
            let mut w = std::io::stdout().lock();
            if let Some(first) = cps.first() {
                writeln!(w, "public key {}", hex_of(&first.public_key))?;
            }
            writeln!(w, "{:>12}  {:<24}  HASH", "SEQ", "TIME")?;
            for cp in &cps {
                writeln!(
                    w,
                    "{:>12}  {:<24}  {}",
                    cp.seq,
                    moat_audit::format_ms(cp.ts_ms),
                    hex_of(&cp.hash)
                )?;
            }
        }
    }
    Ok(())
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn prune(loc: &Location) -> anyhow::Result<()> {
    let Some(days) = loc.settings.retention_days else {
        eprintln!("[audit] retention_days is not set: keeping every record");
        return Ok(());
    };
    let log = AuditLog::open(&loc.url, &loc.key_file, loc.settings.clone())?;
    let report = log.prune(moat_audit::now_ms())?;
    match report.through_seq {
        Some(seq) => eprintln!(
            "pruned {} records older than {days} days (through seq {seq}, kept as the anchor)",
            report.deleted
        ),
        None => eprintln!("nothing to prune: no checkpointed records older than {days} days"),
    }
    Ok(())
}
