//! moat's command-line client: ask OpenRouter, moatd, or any OpenAI-compatible server a question from a
//! terminal, streamed, with verified TLS and a key that never appears in argv or a world-readable file.
//!
//! The crate is split the way a request flows, pure parts first:
//! - [`cli`] declares the flags; [`invocation`] validates what was typed (no system calls) into an
//!   [`invocation::Ask`]; [`prompt`] assembles the prompt text; [`request`] builds the JSON body.
//! - [`config`] and [`paths`] find the profile; [`keys`] finds the API key and stores it at login.
//! - [`net`] owns the HTTP agent: trust anchors, proxy choice, and turning failures into one-line reasons.
//! - [`answer`] decodes a streamed answer; [`ask`] runs one question against one or more models and
//!   [`render`] draws it (spinner, dimmed reasoning, [`stats`] line); [`conversation`] keeps `-c` history.
//! - [`doctor`], [`models`], [`login`] and [`audit_cache`] are the subcommands.
//!
//! ```no_run
//! // What `main.rs` does; tests run the real binary instead.
//! let code = moat::main();
//! # let _ = code;
//! ```

pub mod answer;
pub mod ask;
pub mod audit_cache;
pub mod cli;
pub mod config;
pub mod conversation;
pub mod doctor;
pub mod error;
pub mod invocation;
pub mod keys;
pub mod login;
pub mod models;
pub mod net;
pub mod paths;
pub mod prompt;
pub mod render;
pub mod request;
pub mod stats;
pub mod tlsinfo;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

pub use error::Error;

/// Parses the command line, runs it, prints any error as one line, and returns the exit code:
/// 0 ok, 1 API/network/TLS/key error, 2 usage error, 130 interrupted.
pub fn main() -> ExitCode {
    let args = match cli::Cli::try_parse() {
        Ok(args) => args,
        Err(e) => {
            // clap prints help/version to stdout with exit 0 and usage errors to stderr with exit 2.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    render::install_interrupt_handler();
    if let Some(cli::Command::AuditCache(audit)) = &args.command {
        // The audit's verdict is its exit code: 0 isolated, 3 shared, 4 inconclusive.
        let env = paths::Env::from_process();
        return match audit_cache::run(&env, &args.common, audit) {
            Ok(verdict) => ExitCode::from(verdict.exit_code()),
            Err(e) => {
                render::report_error(&e);
                ExitCode::from(e.exit_code())
            }
        };
    }
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            render::report_error(&e);
            ExitCode::from(e.exit_code())
        }
    }
}

/// Dispatches a parsed command line.
pub fn run(args: cli::Cli) -> Result<(), Error> {
    let env = paths::Env::from_process();
    match args.command {
        Some(cli::Command::Login(_)) => login::run(&env, &args.common),
        Some(cli::Command::Doctor(doctor)) => doctor::run(&env, &args.common, &doctor),
        Some(cli::Command::Models(models)) => models::run(&env, &args.common, &models),
        Some(cli::Command::AuditCache(audit)) => audit_cache::run(&env, &args.common, &audit).map(|_| ()),
        Some(cli::Command::Completions(c)) => {
            let mut command = cli::Cli::command();
            clap_complete::generate(c.shell, &mut command, "moat", &mut std::io::stdout());
            Ok(())
        }
        None => {
            // Flags are checked before stdin is read, so a typo never waits on a pipe.
            let flags = invocation::validate(&args.ask)?;
            let stdin = match std::io::stdin().is_terminal() {
                true => None,
                false => Some(prompt::read_stdin()?),
            };
            ask::run(&env, &args.common, flags, stdin)
        }
    }
}
