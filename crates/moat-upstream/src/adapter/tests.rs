//! The adapters' pure parts: the registry, defaults, encoding and error shapes. The wire round trips
//! are covered end to end by the gateway's conformance suite.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::borrow::Cow;

use moat_wire::openai::{ChatCompletionRequest, EmbeddingRequest, ProviderPreferences};
use serde_json::{json, Value};

use super::registry::{ANTHROPIC, OLLAMA, OPENAI, OPENROUTER};
use super::*;

fn chat(value: Value) -> ChatCompletionRequest {
    serde_json::from_value(value).unwrap()
}

fn ask() -> ChatCompletionRequest {
    chat(
        json!({"model": "m", "max_tokens": 7, "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]}),
    )
}

#[test]
fn every_registered_kind_builds_the_adapter_of_its_name() {
    let names: Vec<&str> = kinds().map(Kind::name).collect();
    assert_eq!(names, ["openai", "openrouter", "anthropic", "ollama"]);
    for k in kinds() {
        assert_eq!(k.adapter().kind(), k.name());
        assert_eq!(kind(k.name()), Some(k));
    }
    assert!(kind("grpc").is_none());
}

#[test]
fn openai_wire_kinds_send_the_request_as_it_is() {
    let request = ask();
    for k in [&registry::OPENAI, &registry::OPENROUTER] {
        let out = outbound(&k.adapter(), "p", WireRequest::Chat(Cow::Borrowed(&request)), "r").unwrap();
        assert_eq!(out.path, "/chat/completions");
        let sent: ChatCompletionRequest = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(sent, request);
        assert!(out.translation.stream().is_none(), "{}", k.name());
        let body = Bytes::from_static(br#"{"not": "touched"}"#);
        assert_eq!(out.translation.whole(body.clone()).unwrap(), body);
    }
    let embed: EmbeddingRequest = serde_json::from_value(json!({"model": "e", "input": "x"})).unwrap();
    let out = outbound(
        &OPENAI.adapter(),
        "p",
        WireRequest::Embedding(Cow::Borrowed(&embed)),
        "r",
    )
    .unwrap();
    assert_eq!(out.path, "/embeddings");
}

#[test]
fn translated_kinds_write_their_own_wire_and_serve_chat_only() {
    let request = ask();
    let out = outbound(
        &ANTHROPIC.adapter(),
        "claude",
        WireRequest::Chat(Cow::Borrowed(&request)),
        "r",
    )
    .unwrap();
    assert_eq!(out.path, "/messages");
    let sent: Value = serde_json::from_slice(&out.body).unwrap();
    assert_eq!(sent["system"], "be brief");
    assert_eq!(sent["max_tokens"], 7);
    let out = outbound(
        &OLLAMA.adapter(),
        "local",
        WireRequest::Chat(Cow::Borrowed(&request)),
        "r",
    )
    .unwrap();
    assert_eq!(out.path, "/api/chat");
    let sent: Value = serde_json::from_slice(&out.body).unwrap();
    assert_eq!(sent["options"]["num_predict"], 7);
    assert!(out.translation.stream().is_some());

    let embed: EmbeddingRequest = serde_json::from_value(json!({"model": "e", "input": "x"})).unwrap();
    for k in [&ANTHROPIC, &OLLAMA] {
        let err = outbound(
            &k.adapter(),
            "p",
            WireRequest::Embedding(Cow::Borrowed(&embed)),
            "r",
        )
        .unwrap_err();
        assert!(matches!(err, EncodeError::Unsupported { .. }), "{err}");
        assert!(err.to_string().contains("chat completions only"), "{err}");
    }
}

#[test]
fn error_bodies_come_back_in_openai_shape() {
    let request = ask();
    let translate = |k: &Kind, status: u16, body: &'static [u8]| {
        let out = outbound(&k.adapter(), "p", WireRequest::Chat(Cow::Borrowed(&request)), "r").unwrap();
        match out.translation.error(UpstreamError::Status {
            provider: "p".into(),
            status,
            body: Bytes::from_static(body),
            retry_after: None,
        }) {
            UpstreamError::Status { status, body, .. } => {
                (status, serde_json::from_slice::<Value>(&body).unwrap())
            }
            other => panic!("{other}"),
        }
    };
    let (status, body) = translate(
        &ANTHROPIC,
        529,
        br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
    );
    assert_eq!(status, 503);
    assert_eq!(body["error"]["message"], "Overloaded");
    let (status, body) = translate(&OLLAMA, 404, br#"{"error":"model 'x' not found"}"#);
    assert_eq!(
        (status, body["error"]["message"].as_str()),
        (404, Some("model 'x' not found"))
    );
    let openai = br#"{"error":{"message":"m","type":"t","code":null,"param":null}}"#;
    let (status, body) = translate(&OPENAI, 400, openai);
    assert_eq!((status, body), (400, serde_json::from_slice(openai).unwrap()));
}

#[test]
fn only_openrouter_takes_the_gateways_retention_settings() {
    let strict = Retention {
        deny_data_collection: true,
        require_zdr: true,
    };
    let client = Some(ProviderPreferences {
        data_collection: Some("allow".into()),
        ..Default::default()
    });
    let prefs = OPENROUTER
        .adapter()
        .provider_preferences(&client, strict)
        .unwrap();
    assert_eq!(
        prefs.data_collection.as_deref(),
        Some("allow"),
        "the client's choice stands"
    );
    assert_eq!(prefs.zdr, Some(true));
    let prefs = OPENROUTER.adapter().provider_preferences(&None, strict).unwrap();
    assert_eq!(prefs.data_collection.as_deref(), Some("deny"));
    assert_eq!(
        OPENROUTER
            .adapter()
            .provider_preferences(&None, Retention::default()),
        None
    );
    for k in [&OPENAI, &ANTHROPIC, &OLLAMA] {
        assert_eq!(
            k.adapter().provider_preferences(&client, strict),
            client,
            "{}",
            k.name()
        );
    }
}

#[test]
fn defaults_by_kind() {
    use moat_policy::cache::CachePartition;
    let base = |k: &Kind| k.adapter().default_base_url();
    assert_eq!(base(&OPENAI), None);
    assert_eq!(base(&OPENROUTER), Some("https://openrouter.ai/api/v1"));
    assert_eq!(base(&ANTHROPIC), Some("https://api.anthropic.com/v1"));
    assert_eq!(base(&OLLAMA), Some("http://127.0.0.1:11434"));
    assert_eq!(
        OPENAI.adapter().default_partition("api.openai.com"),
        CachePartition::PromptCacheKey
    );
    assert_eq!(
        OPENAI.adapter().default_partition("10.0.0.1"),
        CachePartition::CacheSalt
    );
    assert_eq!(
        OPENROUTER.adapter().default_partition("openrouter.ai"),
        CachePartition::User
    );
    assert_eq!(ANTHROPIC.adapter().default_partition("x"), CachePartition::None);
    assert_eq!(OLLAMA.adapter().health_path("/"), "/api/version");
    assert_eq!(OPENAI.adapter().health_path("/v1/"), "/v1/models");
    assert_eq!(ANTHROPIC.adapter().auth_style(), AuthStyle::Anthropic);
    assert_eq!(OLLAMA.adapter().models_path(), "/api/tags");
}

#[test]
fn member_hygiene_borrows_unless_a_member_must_change() {
    let request = ask();
    for k in kinds() {
        let kept = k.adapter().members(WireRequest::Chat(Cow::Borrowed(&request)));
        assert!(
            matches!(kept, WireRequest::Chat(Cow::Borrowed(_))),
            "{}",
            k.name()
        );
    }
}
