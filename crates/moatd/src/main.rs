//! `moatd`: parse flags, load the configuration, set up logging, and hand over to the gateway library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use moat_gateway::config::{self, Config, FileConfig};
use moat_gateway::{server, Gateway};

mod admin_cmd;
mod audit_cmd;
mod store_cmd;
mod telemetry;

/// mimalloc instead of glibc's allocator: a request allocates and frees many small buffers across
/// threads (hyper, serde, the relay), which glibc's malloc serves more slowly; see docs/BENCHMARKS.md.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A private, local-first gateway for LLM APIs: one OpenAI- and OpenRouter-compatible endpoint in
/// front of local models and cloud providers.
#[derive(Debug, Parser)]
#[command(
    name = "moatd",
    version,
    args_conflicts_with_subcommands = true,
    after_help = "Examples:
  moatd                                   start on 127.0.0.1:7400; finds OpenRouter (OPENROUTER_API_KEY),
                                          a llama.cpp server on :8080 and Ollama on :11434 by itself
  moatd serve --config /etc/moat/moatd.toml
  moatd check-config moatd.toml           validate a file and explain what it will do
  moatd teams create --name research --budget 200/month
  moatd keys create --name alice --team research --budget 5/day --rpm 60
  moatd keys list
  moatd usage --by model --since 2026-11-01
  moatd store migrate --to postgres://moat@db:5432/moat   copy a SQLite store into PostgreSQL
  printf %s \"$OPENROUTER_API_KEY\" | moatd providers set-key openrouter
  printf %s \"$TEAM_OWN_KEY\" | moatd teams set-key research openrouter   the team's own key (BYOK)
  curl -s localhost:7400/v1/models

Logging: MOAT_LOG (default \"info\"; \"moat=debug\" adds one line per request, never headers or bodies);
MOAT_LOG_FORMAT=json for one JSON object per line.
Traces: OTEL_EXPORTER_OTLP_ENDPOINT (or _TRACES_ENDPOINT) exports request spans over OTLP,
OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf (default) or grpc; OTEL_SERVICE_NAME (default moatd)."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway (the default).
    Serve(ServeArgs),
    /// Validate a configuration file and explain what it will do; exit 1 if it is invalid.
    CheckConfig {
        /// The TOML file to check.
        file: PathBuf,
    },
    /// Virtual keys: create, list, revoke, rotate, limits.
    Keys {
        /// Configuration file naming the store (default: the data directory's moatd.db).
        #[arg(long, short = 'c', env = "MOATD_CONFIG", value_name = "FILE", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        cmd: admin_cmd::KeysCmd,
    },
    /// Teams and their limits.
    Teams {
        /// Configuration file naming the store (default: the data directory's moatd.db).
        #[arg(long, short = 'c', env = "MOATD_CONFIG", value_name = "FILE", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        cmd: admin_cmd::TeamsCmd,
    },
    /// Provider credentials kept encrypted in the store.
    Providers {
        /// Configuration file naming the store (default: the data directory's moatd.db).
        #[arg(long, short = 'c', env = "MOATD_CONFIG", value_name = "FILE", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        cmd: admin_cmd::ProvidersCmd,
    },
    /// The tamper-evident audit log: verify, export, checkpoints, prune (docs/AUDIT.md).
    Audit {
        /// Configuration file naming the audit log (default: the data directory's audit.db).
        #[arg(long, short = 'c', env = "MOATD_CONFIG", value_name = "FILE", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        cmd: audit_cmd::AuditCmd,
    },
    /// The store itself: `migrate --to postgres://…` copies everything into another store.
    Store {
        /// Configuration file naming the store (default: the data directory's moatd.db).
        #[arg(long, short = 'c', env = "MOATD_CONFIG", value_name = "FILE", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        cmd: store_cmd::StoreCmd,
    },
    /// Usage and spend report.
    Usage {
        /// Configuration file naming the store (default: the data directory's moatd.db).
        #[arg(long, short = 'c', env = "MOATD_CONFIG", value_name = "FILE", global = true)]
        config: Option<PathBuf>,
        #[command(flatten)]
        args: admin_cmd::UsageArgs,
    },
}

#[derive(Debug, Args, Default)]
struct ServeArgs {
    /// Configuration file (TOML). Without one, moatd discovers providers by itself.
    #[arg(long, short = 'c', env = "MOATD_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on; overrides the file's `listen` (default 127.0.0.1:7400).
    #[arg(long, short = 'l', env = "MOATD_LISTEN", value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Threads serving requests (default: one per CPU core).
    #[arg(long, env = "MOATD_THREADS", value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Option<u16>,
    /// How the threads share the work: `per-core` (one single-threaded event loop per thread, each
    /// with its own listener and upstream connections; the default) or `shared` (one work-stealing
    /// runtime).
    #[arg(long, env = "MOATD_RUNTIME", value_enum, default_value_t = RuntimeArg::PerCore)]
    runtime: RuntimeArg,
}

#[derive(Debug, Clone, Copy, Default, clap::ValueEnum)]
enum RuntimeArg {
    #[default]
    PerCore,
    Shared,
}

fn main() -> ExitCode {
    // One TLS crypto provider for every client in the process (the OTLP exporter's included).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::CheckConfig { file }) => check_config(&file),
        Some(Command::Serve(args)) => run(args),
        Some(Command::Keys { config, cmd }) => admin_cmd::keys(&config, cmd),
        Some(Command::Teams { config, cmd }) => admin_cmd::teams(&config, cmd),
        Some(Command::Providers { config, cmd }) => admin_cmd::providers(&config, cmd),
        Some(Command::Usage { config, args }) => admin_cmd::usage(&config, args),
        Some(Command::Audit { config, cmd }) => audit_cmd::audit(&config, cmd),
        Some(Command::Store { config, cmd }) => store_cmd::store(&config, cmd),
        None => run(cli.serve),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("moatd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(file: &std::path::Path) -> anyhow::Result<()> {
    let config = Config::load(file)?;
    println!("{}: OK", file.display());
    print!("{}", config::explain(&config));
    Ok(())
}

fn run(args: ServeArgs) -> anyhow::Result<()> {
    let threads = match args.threads {
        Some(n) => usize::from(n),
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let per_core = matches!(args.runtime, RuntimeArg::PerCore);
    let runtime = if per_core {
        // Each core builds its own upstream pools; this thread only prepares and waits for the signal.
        moat_upstream::worker::set_count(threads);
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the runtime")?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
            .context("starting the runtime")?
    };
    let telemetry = {
        let _context = runtime.enter();
        telemetry::init()?
    };
    let result = runtime.block_on(async {
        let (config, gateway) = prepare(&args).await?;
        if per_core {
            let listeners = server::bind_per_core(config.listen, threads)
                .with_context(|| format!("cannot listen on {}", config.listen))?;
            announce(&listeners);
            server::serve_per_core(listeners, gateway, shutdown_signal())
                .await
                .context("serving")
        } else {
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .with_context(|| format!("cannot listen on {}", config.listen))?;
            if let Ok(addr) = listener.local_addr() {
                tracing::info!("moatd listening on http://{addr}");
            }
            server::serve(listener, gateway, shutdown_signal())
                .await
                .context("serving")
        }
    });
    tracing::info!("moatd stopped");
    // Flushes spans still queued, while the runtime (which the gRPC exporter uses) is still up.
    telemetry.shutdown();
    result
}

fn announce(listeners: &[std::net::TcpListener]) {
    if let Some(addr) = listeners.first().and_then(|l| l.local_addr().ok()) {
        tracing::info!(cores = listeners.len(), "one event loop per core");
        // Alone on its line: scripts and tests read the address from it.
        tracing::info!("moatd listening on http://{addr}");
    }
}

/// Loads (or discovers) the configuration and opens the gateway.
async fn prepare(args: &ServeArgs) -> anyhow::Result<(Config, std::sync::Arc<Gateway>)> {
    let mut file = match &args.config {
        Some(path) => FileConfig::load(path)?,
        None => {
            let (file, notes) = config::discover(&config::DiscoveryTargets::from_env()).await;
            tracing::info!("no config file: discovering providers");
            for note in notes {
                tracing::info!("{note}");
            }
            file
        }
    };
    if let Some(listen) = args.listen {
        file.listen = Some(listen.to_string());
    }
    let config = Config::resolve(file, &|name| std::env::var(name).ok())?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    for p in &config.providers {
        tracing::info!(provider = %p.upstream.name, kind = p.kind.as_str(), base_url = %p.upstream.base_url, local = p.local, "provider ready");
    }
    let gateway = Gateway::open(&config)?;
    Ok((config, gateway))
}

/// Completes on Ctrl-C or SIGTERM (how service managers stop us).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down");
}
