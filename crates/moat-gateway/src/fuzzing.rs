//! Entry points for the fuzz targets in `fuzz/` (not an API): each runs one of moatd's decoders over
//! arbitrary bytes the way a request handler does, so the fuzzer explores exactly what a client can
//! reach. Kept here, compiled with the crate, so a change to a decoder cannot silently leave its
//! fuzz target behind.

use moat_wire::openai::{ChatCompletionRequest, CompletionRequest, EmbeddingRequest};

use crate::handlers::proxy::{parse, parse_body_kept};
use crate::handlers::request_kinds::Forward;

/// Every endpoint that takes a body.
#[derive(Debug, Clone, Copy)]
pub enum Endpoint {
    Chat,
    Completions,
    Embeddings,
    Messages,
    Responses,
    CountTokens,
    AdminNewKey,
    AdminNewTeam,
    AdminKeyLimits,
    AdminTeamProviderKey,
}

impl Endpoint {
    pub const ALL: [Endpoint; 10] = [
        Endpoint::Chat,
        Endpoint::Completions,
        Endpoint::Embeddings,
        Endpoint::Messages,
        Endpoint::Responses,
        Endpoint::CountTokens,
        Endpoint::AdminNewKey,
        Endpoint::AdminNewTeam,
        Endpoint::AdminKeyLimits,
        Endpoint::AdminTeamProviderKey,
    ];
}

/// Decodes `body` as `endpoint`'s handler does and takes every step of admission that reads the
/// request (addressing, fallbacks, output caps, prompt texts, cache-partition members, the stream
/// usage option) and the rewrite for every provider kind's wire.
pub fn decode(endpoint: Endpoint, body: &[u8]) {
    match endpoint {
        Endpoint::Chat => forward::<ChatCompletionRequest>(body),
        Endpoint::Completions => forward::<CompletionRequest>(body),
        Endpoint::Embeddings => forward::<EmbeddingRequest>(body),
        Endpoint::Messages => {
            let Ok(request) = parse::<moat_translate::anthropic::MessagesRequest>(body) else {
                return;
            };
            if let Ok(chat) = moat_translate::anthropic::to_chat_request(&request) {
                if let Ok(bytes) = serde_json::to_vec(&chat) {
                    forward::<ChatCompletionRequest>(&bytes);
                }
            }
        }
        Endpoint::Responses => {
            use moat_translate::responses::{to_chat_request, ItemIds, ResponsesRequest};
            let Ok(request) = parse::<ResponsesRequest>(body) else {
                return;
            };
            if let Ok(bridged) = to_chat_request(&request, &[], &mut ItemIds::new("resp_in")) {
                if let Ok(bytes) = serde_json::to_vec(&bridged.chat) {
                    forward::<ChatCompletionRequest>(&bytes);
                }
            }
        }
        Endpoint::CountTokens => {
            if let Ok(request) = parse::<crate::handlers::count_tokens::CountTokensBody>(body) {
                let _ = request.estimate();
            }
            forward::<crate::handlers::count_tokens::CountTokensBody>(body);
        }
        Endpoint::AdminNewKey => {
            if let Ok(new) = serde_json::from_slice::<crate::admin::NewKey>(body) {
                let _ = new.limits.to_limits();
                let _ = moat_policy::keys::ModelFilter::new(&new.models);
                if let Some(expires) = &new.expires {
                    let _ = moat_policy::keys::parse_duration_secs(expires);
                }
            }
        }
        Endpoint::AdminNewTeam => {
            if let Ok(new) = serde_json::from_slice::<crate::admin::NewTeam>(body) {
                let _ = new.limits.to_limits();
            }
        }
        Endpoint::AdminKeyLimits => {
            if let Ok(spec) = serde_json::from_slice::<crate::admin::LimitSpec>(body) {
                let _ = spec.to_limits();
            }
        }
        Endpoint::AdminTeamProviderKey => {
            let _ = serde_json::from_slice::<crate::handlers::admin::TeamKeyBody>(body);
        }
    }
}

/// The privacy scan every decoded body goes through, redacting what it finds so that path is taken too.
fn privacy() -> &'static crate::privacy::Privacy {
    static PRIVACY: std::sync::OnceLock<Option<crate::privacy::Privacy>> = std::sync::OnceLock::new();
    let section = || crate::config::PrivacySection {
        secrets: crate::config::PrivacyAction::Redact,
        personal: Some(crate::config::PrivacyAction::Redact),
        ..Default::default()
    };
    PRIVACY
        .get_or_init(|| crate::privacy::Privacy::new(&section()).ok())
        .as_ref()
        .unwrap_or_else(|| unreachable_privacy())
}

#[expect(
    clippy::panic,
    reason = "the built-in detectors always compile; a fuzz entry point may stop"
)]
fn unreachable_privacy() -> &'static crate::privacy::Privacy {
    panic!("the built-in privacy detectors did not compile")
}

fn forward<T: Forward>(body: &[u8]) {
    let Ok((raw, unique)) = parse_body_kept(body) else {
        return;
    };
    // As the admit stage (`handlers::pipeline`) does: privacy and budgets over the body as sent,
    // then the decode of it and of its redacted copy.
    let inspection = privacy().inspect(&raw);
    let demand = moat_policy::demand::Demand::of_body(&raw, body.len());
    let _ = demand.output_tokens(None, 4096);
    let redacted = inspection.redacted(&raw).map(|(value, _)| value);
    // The client's own bytes are edited in place for the request decoded from them, not its copy.
    for (value, sent) in std::iter::once((raw, unique)).chain(redacted.map(|r| (r, None))) {
        let Ok(mut request) = crate::handlers::proxy::decode::<T>(value) else {
            continue;
        };
        let _ = request.model();
        let _ = request.take_fallbacks();
        let _ = request.wants_stream();
        let _ = crate::cache::partition::take_client_values(&mut request);
        request.ask_stream_usage();
        for kind in moat_upstream::adapter::kinds() {
            let adapter = kind.adapter();
            let _ = crate::handlers::translated::outbound(&adapter, "fuzz", (&request, sent), "id", 1024);
        }
    }
}

/// Validates a config file's text as `moatd serve` does (without the process environment).
pub fn config(text: &str) {
    if let Ok(file) = crate::config::FileConfig::from_toml(text, "fuzz") {
        let _ = crate::config::Config::resolve(file, &|_| None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_decodes_a_real_body_and_survives_junk() {
        let chat = br#"{"model":"emu/tiny","models":["a/b"],"max_tokens":5,"stream":true,"user":"u","messages":[{"role":"user","content":"hi"}]}"#;
        for e in Endpoint::ALL {
            decode(e, chat);
            decode(e, b"");
            decode(e, b"{\"x\":[[[[[[1]]]]]]}");
            decode(e, &[0xff, 0xfe, b'{']);
        }
        config("[server]\nmax_event_bytes = 1\n[[providers]]\nname = \"x\"\nkind = \"ollama\"\n");
        config("not toml [");
    }
}
