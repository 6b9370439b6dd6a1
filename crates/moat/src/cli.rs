//! The command line as clap sees it: flags, subcommands and the help text with examples.
//!
//! Only shapes live here; whether the values make sense is [`crate::invocation`]'s job, so the rules
//! can be unit-tested without parsing argv.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use clap_complete::Shell;

const EXAMPLES: &str = "\
Examples:
  moat \"why is the sky blue\"                       ask the profile's default model
  moat -m anthropic/claude-sonnet-4 -m openai/gpt-4o-mini \"name a colour\"   two models in parallel
  git diff | moat \"write a commit message\"          stdin is appended after a blank line
  moat \"explain this\" @trace.txt                    @FILE inserts a file (@@ for a literal @)
  moat -c \"and in French?\"                          continue this terminal's last conversation
  moat -r high -rr \"prove it\"                       reasoning effort high, and show the reasoning
  moat -f photo.png \"what is in this picture\"       attach an image (file or URL)
  moat --base-url http://127.0.0.1:11434/v1 -m llama3.2 hi   any OpenAI-compatible server
  echo \"$KEY\" | moat login                          store a key (keyring, else a 0600 file)
  moat doctor                                       check TLS, key storage, proxy and spend limit

Keys come from MOAT_API_KEY, OPENROUTER_API_KEY, the profile's key_env or key_command, or `moat login`;
never from a flag. Config: $XDG_CONFIG_HOME/moat/config.toml (profiles). Exit codes: 0 ok,
1 API/network/TLS/key error, 2 usage error, 130 interrupted.";

/// `moat [flags] [prompt…]` and its subcommands.
#[derive(Debug, Parser)]
#[command(
    name = "moat",
    version,
    about = "Ask LLMs from the terminal: OpenRouter, moatd, or any OpenAI-compatible server",
    after_help = EXAMPLES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub ask: AskArgs,
}

/// Flags that choose and reach the endpoint; every subcommand that talks to it takes them.
#[derive(Debug, Clone, Default, Args)]
pub struct Common {
    /// Named profile from the config file (default: the file's default_profile, else "default")
    #[arg(long, global = true, env = "MOAT_PROFILE")]
    pub profile: Option<String>,
    /// API base URL, e.g. https://openrouter.ai/api/v1 or http://127.0.0.1:11434/v1
    #[arg(long, global = true, value_name = "URL")]
    pub base_url: Option<String>,
    /// Also trust the CA certificates in this PEM file (repeatable); verification is never off
    #[arg(long, global = true, value_name = "FILE")]
    pub cacert: Vec<PathBuf>,
}

/// Flags of a question.
#[derive(Debug, Clone, Default, Args)]
pub struct AskArgs {
    /// Model to ask; repeat for up to 10 models answering in parallel
    #[arg(short = 'm', long = "model", value_name = "MODEL")]
    pub models: Vec<String>,
    /// System prompt: text, or @FILE
    #[arg(short = 's', long, value_name = "SYSTEM")]
    pub system: Option<String>,
    /// Reasoning effort (none|minimal|low|medium|high) or a token budget; -rr shows the reasoning
    #[arg(short = 'r', long = "reasoning", value_name = "EFFORT")]
    pub reasoning: Vec<String>,
    /// Show the model's reasoning (same as -rr)
    #[arg(long)]
    pub show_reasoning: bool,
    /// Continue this terminal's last conversation (same model and provider unless given)
    #[arg(short = 'c', long = "continue")]
    pub continue_last: bool,
    /// Attach an image file or URL (repeatable)
    #[arg(short = 'f', long = "file", value_name = "IMAGE")]
    pub images: Vec<String>,
    /// OpenRouter provider sort: price, throughput or latency
    #[arg(short = 'p', long = "sort", value_name = "SORT")]
    pub sort: Option<String>,
    /// OpenRouter provider slug to try first (repeatable, in order)
    #[arg(long = "provider", value_name = "SLUG")]
    pub providers: Vec<String>,
    /// Cap on the answer's tokens
    #[arg(long, value_name = "N")]
    pub max_tokens: Option<u64>,
    /// Sampling temperature, 0 to 2
    #[arg(long, value_name = "T")]
    pub temperature: Option<f64>,
    /// No stats line
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Print the stats line even when stderr is not a terminal
    #[arg(long, conflicts_with = "quiet")]
    pub stats: bool,
    /// Print the final response JSON on stdout instead of text
    #[arg(long)]
    pub json: bool,
    /// Write nothing to disk (no conversation is saved or read)
    #[arg(long)]
    pub private: bool,
    /// The prompt; words are joined by spaces, @FILE inserts a file, piped stdin is appended
    #[arg(value_name = "PROMPT", trailing_var_arg = true)]
    pub prompt: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Store an API key for a profile: read from a no-echo prompt or stdin, never from argv
    Login(LoginArgs),
    /// Check the endpoint, TLS chain, key storage, proxy settings and the key's spend limit
    Doctor(DoctorArgs),
    /// List the endpoint's models with context length and prices per million tokens
    Models(ModelsArgs),
    /// Print a shell completion script
    Completions(CompletionsArgs),
    /// Test whether an endpoint's prompt cache is shared between two keys (cache-timing audit)
    AuditCache(AuditCacheArgs),
}

/// Whose cache the audit probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuditLevel {
    /// Key A fills the cache, key B probes it: is the cache shared across keys?
    Cross,
    /// One key both fills and probes: is there a prompt cache at all?
    Key,
}

#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Keys: A from --key-a-file, MOAT_AUDIT_KEY_A, else the profile's key; B from \
--key-b-file or MOAT_AUDIT_KEY_B (never argv). Key files must be readable by their owner only.
Exit codes: 0 isolated, 3 shared, 4 inconclusive, 1 API/network error, 2 usage error."
)]
pub struct AuditCacheArgs {
    /// Model to probe (default: the profile's model)
    #[arg(short = 'm', long)]
    pub model: Option<String>,
    /// Trials of each kind (hit and miss)
    #[arg(long, default_value_t = 50)]
    pub trials: usize,
    /// Words (about one token each) per prompt
    #[arg(long, default_value_t = 2000)]
    pub prompt_tokens: usize,
    /// cross: key B probes key A's cache; key: one key probes its own
    #[arg(long, value_enum, default_value = "cross")]
    pub level: AuditLevel,
    /// File holding key A (mode 0600)
    #[arg(long, value_name = "FILE")]
    pub key_a_file: Option<PathBuf>,
    /// File holding key B (mode 0600)
    #[arg(long, value_name = "FILE")]
    pub key_b_file: Option<PathBuf>,
    /// Where to write every sample
    #[arg(long, value_name = "FILE", default_value = "audit-cache.csv")]
    pub csv: PathBuf,
    /// Where to write the plot of both distributions
    #[arg(long, value_name = "FILE", default_value = "audit-cache.svg")]
    pub svg: PathBuf,
    /// Seed for the random prompts and trial order (default: from the clock)
    #[arg(long)]
    pub seed: Option<u64>,
}

#[derive(Debug, Clone, Args)]
pub struct LoginArgs {}

#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {}

#[derive(Debug, Clone, Args)]
pub struct ModelsArgs {
    /// Print the (filtered) list as JSON
    #[arg(long)]
    pub json: bool,
    /// Only models whose id or name contains this text (case-insensitive)
    pub filter: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell
    pub shell: Shell,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn double_r_reads_as_reasoning_value_r() {
        let cli = Cli::try_parse_from(["moat", "-rr", "-r", "high", "hello", "world"]).unwrap();
        assert_eq!(cli.ask.reasoning, ["r", "high"]);
        assert_eq!(cli.ask.prompt, ["hello", "world"]);
    }

    #[test]
    fn subcommands_and_prompts_do_not_mix() {
        let cli = Cli::try_parse_from(["moat", "models", "--json", "gpt"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Models(ModelsArgs { json: true, .. }))
        ));
        let cli = Cli::try_parse_from(["moat", "--base-url", "http://x", "doctor"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Doctor(_))));
        assert_eq!(cli.common.base_url.as_deref(), Some("http://x"));
        let cli = Cli::try_parse_from(["moat", "-m", "a", "-m", "b", "q"]).unwrap();
        assert_eq!(cli.ask.models, ["a", "b"]);
        assert!(cli.command.is_none());
    }
}
