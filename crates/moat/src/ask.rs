//! Asking: merge the profile, the flags and the last conversation into requests, send them (one model
//! streamed live, several in parallel threads and printed in flag order, labelled), print the stats,
//! and save the conversation unless `--private`.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use moat_wire::openai::{ChatMessage, ContentPart};

use crate::answer::{self, Answer, Piece};
use crate::cli::Common;
use crate::config::{ConfigFile, Endpoint, Profile, OPENROUTER_DEFAULT_MODEL};
use crate::conversation::{self, Conversation};
use crate::invocation::{self, Flags, Image, TextOrFile};
use crate::net::Client;
use crate::paths::Env;
use crate::render::{self, Live, Spinner, Term};
use crate::request::{self, Options};
use crate::stats::Stats;
use crate::{keys, prompt, Error};

const CHAT_PATH: &str = "/chat/completions";

/// Runs one question.
pub fn run(env: &Env, common: &Common, flags: Flags, stdin: Option<String>) -> Result<(), Error> {
    let config = ConfigFile::load(env)?;
    let (profile_name, profile) = config.select(common.profile.as_deref())?;
    let endpoint = Endpoint::resolve(&profile, common)?;
    let read_text = |p: &Path| fs::read_to_string(p);
    let prompt = prompt::assemble(&flags.words, stdin.as_deref(), &read_text)?;
    let system = match &flags.system {
        Some(TextOrFile::Text(text)) => Some(text.clone()),
        Some(TextOrFile::File(path)) => Some(
            fs::read_to_string(path)
                .map_err(|e| Error::usage(format!("cannot read system prompt @{}: {e}", path.display())))?,
        ),
        None => profile.system.clone(),
    };
    let images = read_images(&flags.images)?;

    let term = Term::detect();
    let conversation_file = conversation::path(
        env,
        &conversation::session_id(env, conversation::tty_name().as_deref()),
    )?;
    let previous = match flags.continue_last {
        true => conversation::load(&conversation_file)?,
        false => None,
    };
    if flags.continue_last && previous.is_none() {
        render::note(
            "moat: no earlier conversation in this terminal; starting a new one",
            term,
        );
    }
    let plan = Plan::merge(&flags, &profile, previous.as_ref(), &endpoint, system)?;

    let (key, _) = keys::find(env, &profile_name, &profile)?;
    let client = Client::new(env, endpoint, key)?;
    let history = previous.map(|c| c.messages).unwrap_or_default();
    let messages = request::messages(
        &history,
        plan.options.system.as_deref(),
        request::user_message(&prompt, images),
    );
    let show_stats = flags.force_stats || (term.stderr_tty && !flags.quiet);

    let first = if plan.models.len() == 1 {
        let (answer, stats) = match flags.json {
            true => ask_json(&client, &plan.models[0], &messages, &plan.options)?,
            false => ask_live(&client, &plan.models[0], &messages, &plan.options, term)?,
        };
        if show_stats {
            render::note(&stats.line(), term);
        }
        answer
    } else {
        ask_parallel(&client, &plan, &messages, flags.json, term, show_stats)?
    };

    if !flags.private {
        let mut saved = Conversation::new(
            &client.endpoint.base_url,
            &plan.models[0],
            plan.options.sort.clone(),
            plan.options.providers.clone(),
        );
        saved.messages = messages;
        saved.messages.push(ChatMessage::assistant(first.content));
        conversation::save(&conversation_file, &saved)?;
    }
    Ok(())
}

/// The models and request options, once flags, the continued conversation and the profile are merged
/// (in that order of precedence).
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub models: Vec<String>,
    pub options: Options,
}

impl Plan {
    pub fn merge(
        flags: &Flags,
        profile: &Profile,
        previous: Option<&Conversation>,
        endpoint: &Endpoint,
        system: Option<String>,
    ) -> Result<Plan, Error> {
        let models = if !flags.models.is_empty() {
            flags.models.clone()
        } else if let Some(prev) = previous {
            vec![prev.model.clone()]
        } else if let Some(model) = &profile.model {
            vec![model.clone()]
        } else if endpoint.is_openrouter() {
            vec![OPENROUTER_DEFAULT_MODEL.to_owned()]
        } else {
            return Err(Error::usage(
                "no model: pass -m MODEL or set `model` in the profile",
            ));
        };
        let sort = match (&flags.sort, previous.and_then(|p| p.sort.clone()), &profile.sort) {
            (Some(s), _, _) => Some(s.clone()),
            (None, Some(s), _) => Some(s),
            (None, None, Some(s)) => Some(invocation::check_sort(s)?),
            (None, None, None) => None,
        };
        let providers = if !flags.providers.is_empty() {
            flags.providers.clone()
        } else if let Some(prev) = previous.filter(|p| !p.providers.is_empty()) {
            prev.providers.clone()
        } else {
            profile.providers.clone()
        };
        Ok(Plan {
            models,
            options: Options {
                system,
                effort: flags.effort.clone(),
                show_reasoning: flags.show_reasoning,
                sort,
                providers,
                max_tokens: flags.max_tokens,
                temperature: flags.temperature,
                extra_body: profile.extra_body.clone(),
            },
        })
    }
}

fn read_images(images: &[Image]) -> Result<Vec<ContentPart>, Error> {
    images
        .iter()
        .map(|image| match image {
            Image::Url(url) => Ok(ContentPart::image_url(url.clone())),
            Image::File(path) => {
                let bytes = fs::read(path)
                    .map_err(|e| Error::usage(format!("cannot read image {}: {e}", path.display())))?;
                request::image_part(path, &bytes)
            }
        })
        .collect()
}

fn stats_of(model: &str, answer: &Answer, first_token: Option<Duration>, total: Duration) -> Stats {
    Stats {
        model: answer.model.clone().unwrap_or_else(|| model.to_owned()),
        provider: answer.provider.clone(),
        cost: answer.usage.as_ref().and_then(|u| u.cost),
        first_token,
        total,
        completion_tokens: answer.usage.as_ref().map(|u| u.completion_tokens),
    }
}

/// One model, streamed to the terminal as it arrives.
fn ask_live(
    client: &Client,
    model: &str,
    messages: &[ChatMessage],
    options: &Options,
    term: Term,
) -> Result<(Answer, Stats), Error> {
    let body = request::body(model, messages.to_vec(), options, true)?;
    let mut live = Live::new(
        Spinner::start(format!("{model}…"), term.stderr_tty),
        term,
        options.show_reasoning,
    );
    let started = Instant::now();
    let reply = client.post_json(CHAT_PATH, &body)?;
    let mut first_token = None;
    let answer = if reply.content_type.starts_with("text/event-stream") {
        let mut reader = reply.body.into_reader();
        answer::read_stream(&mut reader, &mut |piece| {
            first_token.get_or_insert_with(|| started.elapsed());
            live.piece(piece)
        })?
    } else {
        // A server that ignores `stream` and answers whole.
        let answer = answer::from_response(&client.read_all(reply.body)?)?;
        first_token = Some(started.elapsed());
        live.piece(Piece::Reasoning(&answer.reasoning))?;
        live.piece(Piece::Content(&answer.content))?;
        answer
    };
    live.finish()?;
    let stats = stats_of(model, &answer, first_token, started.elapsed());
    Ok((answer, stats))
}

/// One model, not streamed; the server's JSON goes to stdout as it came.
fn ask_json(
    client: &Client,
    model: &str,
    messages: &[ChatMessage],
    options: &Options,
) -> Result<(Answer, Stats), Error> {
    let (raw, answer, stats) = fetch_whole(client, model, messages, options)?;
    let mut out = std::io::stdout().lock();
    out.write_all(raw.trim_ascii_end())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("writing the answer", e))?;
    Ok((answer, stats))
}

/// A whole answer: the server's bytes, what they say, and the stats.
type Whole = (Vec<u8>, Answer, Stats);

fn fetch_whole(
    client: &Client,
    model: &str,
    messages: &[ChatMessage],
    options: &Options,
) -> Result<Whole, Error> {
    let body = request::body(model, messages.to_vec(), options, false)?;
    let started = Instant::now();
    let reply = client.post_json(CHAT_PATH, &body)?;
    let raw = client.read_all(reply.body)?;
    let answer = answer::from_response(&raw)?;
    let total = started.elapsed();
    let stats = stats_of(model, &answer, Some(total), total);
    Ok((raw, answer, stats))
}

/// Several models at once, one thread each; answers are printed whole, in the order the models were
/// given, each under its label. A failed model is reported under its label and the rest still print.
fn ask_parallel(
    client: &Client,
    plan: &Plan,
    messages: &[ChatMessage],
    json: bool,
    term: Term,
    show_stats: bool,
) -> Result<Answer, Error> {
    let mut spinner = Spinner::start(format!("{} models…", plan.models.len()), term.stderr_tty);
    let results: Vec<Result<Whole, Error>> = std::thread::scope(|scope| {
        let handles: Vec<_> = plan
            .models
            .iter()
            .map(|model| scope.spawn(move || fetch_whole(client, model, messages, &plan.options)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Network("a worker thread failed".into())))
            })
            .collect()
    });
    spinner.stop();
    let mut first = None;
    let mut failures = 0;
    for (model, result) in plan.models.iter().zip(results) {
        match result {
            Ok((raw, answer, stats)) => {
                if json {
                    let mut out = std::io::stdout().lock();
                    out.write_all(raw.trim_ascii_end())
                        .and_then(|()| out.write_all(b"\n"))
                        .map_err(|e| Error::io("writing the answer", e))?;
                } else {
                    let reasoning = if plan.options.show_reasoning {
                        answer.reasoning.as_str()
                    } else {
                        ""
                    };
                    render::labelled(model, reasoning, &answer.content, term)?;
                }
                if show_stats {
                    render::note(&stats.line(), term);
                }
                first.get_or_insert(answer);
            }
            Err(e) => {
                failures += 1;
                if !json {
                    render::labelled(model, "", "", term)?;
                }
                render::report_error(&Error::Network(format!("{model}: {e}")));
            }
        }
    }
    match (first, failures) {
        (Some(answer), 0) => Ok(answer),
        _ => Err(Error::Network(format!(
            "{failures} of {} models failed",
            plan.models.len()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invocation::Effort;

    fn endpoint(base: &str) -> Endpoint {
        let common = Common {
            base_url: Some(base.into()),
            ..Common::default()
        };
        Endpoint::resolve(&Profile::default(), &common).unwrap()
    }

    #[test]
    fn model_precedence() {
        let or = endpoint("https://openrouter.ai/api/v1");
        let local = endpoint("http://127.0.0.1:11434/v1");
        let flags = Flags::default();
        let profile = Profile {
            model: Some("p".into()),
            sort: Some("Price".into()),
            ..Profile::default()
        };
        assert_eq!(
            Plan::merge(&flags, &Profile::default(), None, &or, None)
                .unwrap()
                .models,
            ["openrouter/auto"]
        );
        assert_eq!(
            Plan::merge(&flags, &Profile::default(), None, &local, None)
                .unwrap_err()
                .exit_code(),
            2
        );
        let plan = Plan::merge(&flags, &profile, None, &local, None).unwrap();
        assert_eq!(
            (plan.models[0].as_str(), plan.options.sort.as_deref()),
            ("p", Some("price"))
        );
        let prev = Conversation::new("x", "c", Some("latency".into()), vec!["a".into()]);
        let plan = Plan::merge(&flags, &profile, Some(&prev), &local, None).unwrap();
        assert_eq!(plan.models, ["c"]);
        assert_eq!(
            (plan.options.sort.as_deref(), plan.options.providers.clone()),
            (Some("latency"), vec!["a".to_owned()])
        );
        let explicit = Flags {
            models: vec!["f".into()],
            sort: Some("throughput".into()),
            effort: Some(Effort::Tokens(9)),
            ..Flags::default()
        };
        let plan = Plan::merge(&explicit, &profile, Some(&prev), &local, Some("sys".into())).unwrap();
        assert_eq!(
            (plan.models[0].as_str(), plan.options.sort.as_deref()),
            ("f", Some("throughput"))
        );
        assert_eq!(plan.options.system.as_deref(), Some("sys"));
        assert_eq!(plan.options.effort, Some(Effort::Tokens(9)));
    }
}
