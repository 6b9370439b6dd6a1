//! The audit against a live endpoint: the two clients, the timed requests, and the printed report.

use std::path::Path;
use std::time::Instant;

use crate::answer::{self, Piece};
use crate::cli::{AuditCacheArgs, AuditLevel, Common};
use crate::config::{ConfigFile, Endpoint};
use crate::keys::{self, ApiKey};
use crate::net::Client;
use crate::paths::Env;
use crate::Error;

use super::ks::{self, Method};
use super::report::{self, Sample};
use super::trials::{self, Kind, Rng, Verdict};

/// Where key B (and optionally key A) come from: never argv.
pub const KEY_A_VAR: &str = "MOAT_AUDIT_KEY_A";
pub const KEY_B_VAR: &str = "MOAT_AUDIT_KEY_B";

/// Runs the audit, prints the report and returns the verdict.
pub fn run(env: &Env, common: &Common, args: &AuditCacheArgs) -> Result<Verdict, Error> {
    if args.trials < 2 {
        return Err(Error::usage("--trials must be at least 2"));
    }
    if args.prompt_tokens < 20 {
        return Err(Error::usage("--prompt-tokens must be at least 20"));
    }
    let config = ConfigFile::load(env)?;
    let (name, profile) = config.select(common.profile.as_deref())?;
    let endpoint = Endpoint::resolve(&profile, common)?;
    let model = args
        .model
        .clone()
        .or_else(|| profile.model.clone())
        .ok_or_else(|| Error::usage("name the model to probe with --model"))?;
    let key_a = match key_from(args.key_a_file.as_deref(), KEY_A_VAR, env)? {
        Some(k) => Some(k),
        None => keys::find(env, &name, &profile)?.0,
    };
    let key_b = match (key_from(args.key_b_file.as_deref(), KEY_B_VAR, env)?, args.level) {
        (Some(k), _) => Some(k),
        (None, AuditLevel::Key) => key_a.clone(),
        (None, AuditLevel::Cross) => {
            return Err(Error::usage(format!(
                "the cross-key audit needs a second key: --key-b-file FILE or {KEY_B_VAR}"
            )))
        }
    };
    if args.level == AuditLevel::Cross && key_a == key_b {
        return Err(Error::usage(
            "keys A and B are the same; use --level key to audit one key's own cache",
        ));
    }
    let a = Client::new(env, endpoint.clone(), key_a)?;
    let b = Client::new(env, endpoint, key_b)?;
    let mut rng = Rng::new(args.seed.unwrap_or_else(seed));
    let plan = trials::plan(args.trials, &mut rng);
    eprintln!(
        "audit-cache: {} trials ({} hit, {} miss) of {} words against {} with model {model}",
        plan.len(),
        args.trials,
        args.trials,
        args.prompt_tokens,
        a.endpoint.base_url
    );
    let mut samples = Vec::with_capacity(plan.len());
    for (trial, kind) in plan.into_iter().enumerate() {
        let (prompt_a, prompt_b) = trials::prompts(kind, args.prompt_tokens, &mut rng);
        timed(&a, &model, &prompt_a)?;
        let (ttft_ms, cached_tokens) = timed(&b, &model, &prompt_b)?;
        samples.push(Sample {
            trial,
            kind,
            ttft_ms,
            cached_tokens,
        });
    }
    report_and_write(args, &samples)
}

/// Tests, prints and writes the CSV and SVG.
fn report_and_write(args: &AuditCacheArgs, samples: &[Sample]) -> Result<Verdict, Error> {
    let of = |k: Kind| -> Vec<f64> {
        samples
            .iter()
            .filter(|s| s.kind == k)
            .map(|s| s.ttft_ms)
            .collect()
    };
    let (hits, misses) = (of(Kind::Hit), of(Kind::Miss));
    let result = ks::ks_greater(&hits, &misses)
        .ok_or_else(|| Error::Network("no usable timings were collected".into()))?;
    let verdict = trials::verdict(result.p_value);
    let who = match args.level {
        AuditLevel::Cross => "key A's prompt, then key B's",
        AuditLevel::Key => "the same key twice",
    };
    println!(
        "samples: {} hit, {} miss ({who}; hits share the first 95% of the prompt)",
        hits.len(),
        misses.len()
    );
    println!(
        "median time to first token: hit {:.1} ms, miss {:.1} ms",
        trials::median(&hits),
        trials::median(&misses)
    );
    println!(
        "one-sided Kolmogorov-Smirnov (miss slower than hit): D = {:.3}, p = {:.3e} ({})",
        result.statistic,
        result.p_value,
        match result.method {
            Method::Exact => "exact",
            Method::Asymptotic => "asymptotic",
        }
    );
    let reported = samples
        .iter()
        .filter(|s| s.kind == Kind::Hit && s.cached_tokens.is_some_and(|c| c > 0))
        .count();
    if reported > 0 {
        println!(
            "the endpoint reported cached_tokens > 0 on {reported} of {} hit trials: by its own account it served {}",
            hits.len(),
            match args.level {
                AuditLevel::Cross => "key B's prompts from a cache key A filled",
                AuditLevel::Key => "the repeated prefixes from its cache",
            }
        );
    }
    let meaning = match (verdict, args.level) {
        (Verdict::Shared, AuditLevel::Cross) => {
            "the prompt cache is shared between the two keys: one can time the other's prompts"
        }
        (Verdict::Shared, AuditLevel::Key) => "this key's own requests share a prompt cache",
        (Verdict::Isolated, _) => "no sign of a shared prompt cache (p > 0.01)",
        (Verdict::Inconclusive, _) => {
            "neither clearly shared (p < 1e-8) nor clearly isolated (p > 0.01); rerun with more --trials"
        }
    };
    println!("verdict: {}: {meaning}", verdict.as_str());
    write(&args.csv, &report::csv(samples))?;
    let title = format!(
        "audit-cache: {} (p = {:.2e}, {} + {} trials)",
        verdict.as_str(),
        result.p_value,
        hits.len(),
        misses.len()
    );
    write(&args.svg, &report::svg(&hits, &misses, &title))?;
    println!("wrote {} and {}", args.csv.display(), args.svg.display());
    Ok(verdict)
}

fn write(path: &Path, text: &str) -> Result<(), Error> {
    std::fs::write(path, text).map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

/// One streamed request with `max_tokens = 1`: milliseconds until the first token (or, if the model
/// sends none, until the stream ends), and the cached tokens its usage reports.
fn timed(client: &Client, model: &str, prompt: &str) -> Result<(f64, Option<u64>), Error> {
    let body = serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": 1,
        "temperature": 0,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    let bytes = serde_json::to_vec(&body).map_err(|e| Error::Network(e.to_string()))?;
    let started = Instant::now();
    let reply = client.post_json("/chat/completions", &bytes)?;
    let mut first: Option<f64> = None;
    let answer = if reply.content_type.starts_with("text/event-stream") {
        let mut reader = reply.body.into_reader();
        answer::read_stream(&mut reader, &mut |piece| {
            if let (None, Piece::Content(_) | Piece::Reasoning(_)) = (first, piece) {
                first = Some(started.elapsed().as_secs_f64() * 1000.0);
            }
            Ok(())
        })?
    } else {
        answer::from_response(&client.read_all(reply.body)?)?
    };
    let ttft = first.unwrap_or_else(|| started.elapsed().as_secs_f64() * 1000.0);
    let cached = answer
        .usage
        .as_ref()
        .and_then(|u| u.prompt_tokens_details.as_ref())
        .and_then(|d| d.cached_tokens);
    Ok((ttft, cached))
}

/// A key from a file (owner-only, like `moat login`'s) or the environment.
fn key_from(file: Option<&Path>, var: &str, env: &Env) -> Result<Option<ApiKey>, Error> {
    if let Some(path) = file {
        let meta =
            std::fs::metadata(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            keys::check_mode(meta.permissions().mode(), path)?;
        }
        #[cfg(not(unix))]
        let _ = meta;
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        return keys::parse_key(&text).map(Some);
    }
    match env.get(var) {
        Some(text) => keys::parse_key(text).map(Some),
        None => Ok(None),
    }
}

/// A seed that differs per run, so repeated audits never reuse prompts.
fn seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    nanos ^ (u64::from(std::process::id()) << 32)
}
