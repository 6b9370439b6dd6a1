//! The provider conformance suite: every registered provider kind, through a real gateway on port 0
//! against the testkit's emulator of its wire, answers plain and streamed chats, tool calls, errors,
//! cut streams, usage, time-outs, model lists and health probes the way OpenAI's wire says. Modelled on
//! TensorZero's per-provider suite: each case is one function over a [`Kind`], and `conformance!`
//! makes one test per (kind, case), named `kind::case`.
//!
//! Adding a provider kind = its adapter in `moat_upstream::adapter`, its line in the registry, and
//! its entry below (the last test fails until every registered kind has one).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/mod.rs"]
mod common;

mod cases;

use moat_testkit::Emulator;

/// What the suite needs to know about one kind: how to point a provider of it at the emulator, and
/// where its requests land there.
pub struct Kind {
    /// The `kind` string.
    pub name: &'static str,
    /// The kind's own lines of a `[[providers]]` block aimed at `emu` (`kind`, `base_url`, key).
    pub provider: fn(&Emulator) -> String,
    /// Where a chat request arrives at the emulator.
    pub chat_path: &'static str,
    /// Where a streamed chat request arrives (the same path on most wires).
    pub stream_path: &'static str,
    /// The model is named in the path (Gemini, Bedrock), not in the body.
    pub model_in_path: bool,
    /// The provider has a model list that moatd merges into `/v1/models`.
    pub lists_models: bool,
    /// Where the default health probe arrives.
    pub health_path: &'static str,
    /// Whether `/v1/embeddings` is served (otherwise it is refused with 400 before anything is sent).
    pub embeddings: bool,
}

/// The key every emulated provider is given (and the emulator checks, where the wire has keys).
pub const PROVIDER_KEY: &str = "sk-conformance";

fn root(emu: &Emulator) -> String {
    emu.base_url().trim_end_matches("/v1").to_owned()
}

macro_rules! conformance {
    ($($kind:ident => $entry:expr,)*) => {
        $(
            mod $kind {
                #[allow(unused_imports)]
                use super::*;
                pub(super) const KIND: super::Kind = $entry;
                #[tokio::test]
                async fn answers_a_whole_chat() { cases::plain(&KIND).await }
                #[tokio::test]
                async fn streams_a_chat_as_openai_chunks() { cases::streamed(&KIND).await }
                #[tokio::test]
                async fn calls_tools_whole_and_streamed() { cases::tools(&KIND).await }
                #[tokio::test]
                async fn reports_usage_that_settles_the_budget() { cases::usage(&KIND).await }
                #[tokio::test]
                async fn passes_errors_on_in_openai_shape_and_retries_transient_ones() { cases::errors(&KIND).await }
                #[tokio::test]
                async fn ends_a_cut_stream_with_an_error_event() { cases::cut_streams(&KIND).await }
                #[tokio::test]
                async fn times_out_a_silent_provider() { cases::timeouts(&KIND).await }
                #[tokio::test]
                async fn cancels_the_upstream_when_the_client_leaves() { cases::client_leaves(&KIND).await }
                #[tokio::test]
                async fn lists_models_under_the_providers_name() { cases::models(&KIND).await }
                #[tokio::test]
                async fn probes_health_on_its_own_endpoint() { cases::health(&KIND).await }
                #[tokio::test]
                async fn serves_or_refuses_embeddings_cleanly() { cases::embeddings(&KIND).await }
            }
        )*

        #[test]
        fn every_registered_kind_is_in_the_suite() {
            let suite = [$(stringify!($kind)),*];
            for kind in moat_upstream::adapter::kinds() {
                assert!(suite.contains(&kind.name()), "kind `{}` has no conformance entry", kind.name());
            }
            $(assert_eq!($kind::KIND.name, stringify!($kind));)*
        }
    };
}

conformance! {
    openai => Kind {
        name: "openai",
        provider: |emu| format!("kind = \"openai\"\nbase_url = \"{}\"\napi_key = \"{PROVIDER_KEY}\"\n", emu.base_url()),
        chat_path: "/v1/chat/completions",
        stream_path: "/v1/chat/completions",
        model_in_path: false,
        lists_models: true,
        health_path: "/v1/models",
        embeddings: true,
    },
    openrouter => Kind {
        name: "openrouter",
        provider: |emu| format!("kind = \"openrouter\"\nbase_url = \"{}\"\napi_key = \"{PROVIDER_KEY}\"\n", emu.openrouter_base_url()),
        chat_path: "/api/v1/chat/completions",
        stream_path: "/api/v1/chat/completions",
        model_in_path: false,
        lists_models: true,
        health_path: "/api/v1/models",
        embeddings: true,
    },
    anthropic => Kind {
        name: "anthropic",
        provider: |emu| format!("kind = \"anthropic\"\nbase_url = \"{}\"\napi_key = \"{PROVIDER_KEY}\"\n", emu.base_url()),
        chat_path: "/v1/messages",
        stream_path: "/v1/messages",
        model_in_path: false,
        lists_models: true,
        health_path: "/v1/models",
        embeddings: false,
    },
    ollama => Kind {
        name: "ollama",
        provider: |emu| format!("kind = \"ollama\"\nbase_url = \"{}\"\n", root(emu)),
        chat_path: "/api/chat",
        stream_path: "/api/chat",
        model_in_path: false,
        lists_models: true,
        health_path: "/api/version",
        embeddings: false,
    },
    azure => Kind {
        name: "azure",
        provider: |emu| format!("kind = \"azure\"\nbase_url = \"{}\"\napi_key = \"{PROVIDER_KEY}\"\n", root(emu)),
        chat_path: "/openai/deployments/tiny/chat/completions",
        stream_path: "/openai/deployments/tiny/chat/completions",
        model_in_path: false,
        lists_models: true,
        health_path: "/openai/models",
        embeddings: true,
    },
    bedrock => Kind {
        name: "bedrock",
        provider: |emu| format!("kind = \"bedrock\"\nregion = \"us-east-1\"\nbase_url = \"{}\"\napi_key = \"{PROVIDER_KEY}\"\n", root(emu)),
        chat_path: "/model/tiny/converse",
        stream_path: "/model/tiny/converse-stream",
        model_in_path: true,
        lists_models: false,
        health_path: "/ping",
        embeddings: false,
    },
    gemini => Kind {
        name: "gemini",
        provider: |emu| format!("kind = \"gemini\"\nbase_url = \"{}/v1beta\"\napi_key = \"{PROVIDER_KEY}\"\n", root(emu)),
        chat_path: "/v1beta/models/tiny:generateContent",
        stream_path: "/v1beta/models/tiny:streamGenerateContent",
        model_in_path: true,
        lists_models: true,
        health_path: "/v1beta/models",
        embeddings: false,
    },
}
