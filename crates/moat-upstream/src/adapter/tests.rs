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
    assert_eq!(
        names,
        [
            "openai",
            "openrouter",
            "anthropic",
            "ollama",
            "azure",
            "bedrock",
            "gemini"
        ]
    );
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
fn openai_wire_kinds_edit_the_clients_bytes_in_place() {
    let long = format!(
        r#"{{"model": "alias", "messages": [{{"role": "user", "content": "{}"}}], "x-vendor": {{"keep": [1.50, "as is"]}}}}"#,
        "hi ".repeat(EDIT_FROM_BYTES / 3)
    );
    let short = br#"{"model": "alias", "messages": [{"role": "user", "content": "hi"}], "x-vendor": {"keep": [1.50, "as is"]}}"#;
    let (value, sent) = moat_wire::edit::parse(long.as_bytes()).unwrap();
    let sent = sent.unwrap();
    let mut request: ChatCompletionRequest = serde_json::from_value(value).unwrap();
    request.model = Some("m".into());
    request.prompt_cache_key = Some("tenant".into());
    let fresh = ["model", "prompt_cache_key"];
    for k in [&registry::OPENAI, &registry::OPENROUTER] {
        let wire = WireRequest::Chat(Cow::Borrowed(&request));
        let out = outbound_edited(&k.adapter(), "p", wire, (sent, &fresh), "r").unwrap();
        assert_eq!(out.path, "/chat/completions");
        let expected = format!(
            r#"{{"model":"m","messages":[{{"role": "user", "content": "{}"}}],"x-vendor":{{"keep": [1.50, "as is"]}},"prompt_cache_key":"tenant"}}"#,
            "hi ".repeat(EDIT_FROM_BYTES / 3)
        );
        assert_eq!(out.body, expected, "{}", k.name());
    }
    // A short body is cheaper to encode.
    let (value, short) = moat_wire::edit::parse(&short[..]).unwrap();
    let mut request: ChatCompletionRequest = serde_json::from_value(value).unwrap();
    request.model = Some("m".into());
    let adapter = OPENAI.adapter();
    let wire = WireRequest::Chat(Cow::Borrowed(&request));
    let edited = outbound_edited(&adapter, "p", wire, (short.unwrap(), &fresh), "r").unwrap();
    let encoded = outbound(&adapter, "p", WireRequest::Chat(Cow::Borrowed(&request)), "r").unwrap();
    assert_eq!(edited.body, encoded.body);
    // Kinds that translate, and requests their hygiene changes, are encoded.
    for (k, request) in [
        (&OLLAMA, request.clone()),
        (
            &OPENAI,
            chat(json!({"model": "m", "messages": [], "transforms": ["middle-out"]})),
        ),
    ] {
        let adapter = k.adapter();
        let edited = outbound_edited(
            &adapter,
            "p",
            WireRequest::Chat(Cow::Borrowed(&request)),
            (sent, &fresh),
            "r",
        )
        .unwrap();
        let encoded = outbound(&adapter, "p", WireRequest::Chat(Cow::Borrowed(&request)), "r").unwrap();
        assert_eq!((edited.path, edited.body), (encoded.path, encoded.body));
    }
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

#[test]
fn openrouter_members_reach_only_openrouter_and_reasoning_maps_to_reasoning_effort() {
    let request: ChatCompletionRequest = serde_json::from_value(serde_json::json!({
        "model": "m", "messages": [{"role": "user", "content": "hi"}],
        "provider": {"order": ["a"]}, "transforms": ["middle-out"], "route": "fallback",
        "usage": {"include": true}, "reasoning": {"effort": "high"}, "min_p": 0.1
    }))
    .unwrap();
    let body = |k: &Kind| -> serde_json::Value {
        let out = outbound(&k.adapter(), "p", WireRequest::Chat(Cow::Borrowed(&request)), "r").unwrap();
        serde_json::from_slice(&out.body).unwrap()
    };
    let plain = body(&OPENAI);
    for member in ["provider", "transforms", "route", "usage", "reasoning"] {
        assert!(plain.get(member).is_none(), "{member}: {plain}");
    }
    assert_eq!(plain["reasoning_effort"], "high");
    assert_eq!(
        plain["min_p"], 0.1,
        "members of no one's are the client's business"
    );
    let routed = body(&OPENROUTER);
    assert_eq!(routed["transforms"], serde_json::json!(["middle-out"]));
    assert_eq!(routed["reasoning"]["effort"], "high");
    assert!(routed.get("reasoning_effort").is_none());
}

#[test]
fn cloud_kinds_put_the_model_in_a_safe_path_and_take_only_their_options() {
    use super::registry::{AZURE, BEDROCK, GEMINI};
    let mut request = ask();
    request.model = Some("gpt-4o/../../admin?x=1".into());
    let azure = AZURE.adapter_with(&AdapterOptions::default()).unwrap();
    let out = outbound(&azure, "p", WireRequest::Chat(Cow::Borrowed(&request)), "r").unwrap();
    assert_eq!(
        out.path,
        "/openai/deployments/gpt-4o%2F..%2F..%2Fadmin%3Fx%3D1/chat/completions?api-version=2024-10-21"
    );
    let preview = AdapterOptions {
        api_version: Some("2025-01-01-preview".into()),
        ..AdapterOptions::default()
    };
    let out = outbound(
        &AZURE.adapter_with(&preview).unwrap(),
        "p",
        WireRequest::Chat(Cow::Borrowed(&ask())),
        "r",
    )
    .unwrap();
    assert!(
        out.path.ends_with("?api-version=2025-01-01-preview"),
        "{}",
        out.path
    );

    let mut claude = ask();
    claude.model = Some("anthropic.claude-3-haiku-20240307-v1:0".into());
    let region = AdapterOptions {
        region: Some("eu-west-1".into()),
        ..AdapterOptions::default()
    };
    let bedrock = BEDROCK.adapter_with(&region).unwrap();
    assert_eq!(
        bedrock.base_url().as_deref(),
        Some("https://bedrock-runtime.eu-west-1.amazonaws.com")
    );
    let out = outbound(&bedrock, "p", WireRequest::Chat(Cow::Borrowed(&claude)), "r").unwrap();
    assert_eq!(
        out.path,
        "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream"
    );
    let body: Value = serde_json::from_slice(&out.body).unwrap();
    assert_eq!(body["system"], json!([{"text": "be brief"}]));
    assert!(!bedrock.lists_models());

    let vertex = AdapterOptions {
        project: Some("proj".into()),
        region: Some("europe-west4".into()),
        ..AdapterOptions::default()
    };
    let gemini = GEMINI.adapter_with(&vertex).unwrap();
    assert_eq!(
        gemini.base_url().as_deref(),
        Some("https://europe-west4-aiplatform.googleapis.com/v1/projects/proj/locations/europe-west4/publishers/google")
    );
    let mut whole = ask();
    whole.stream = None;
    whole.model = Some("gemini-2.0-flash".into());
    let out = outbound(&gemini, "p", WireRequest::Chat(Cow::Borrowed(&whole)), "r").unwrap();
    assert_eq!(out.path, "/models/gemini-2.0-flash:generateContent");
    whole.stream = Some(true);
    let out = outbound(&gemini, "p", WireRequest::Chat(Cow::Borrowed(&whole)), "r").unwrap();
    assert_eq!(out.path, "/models/gemini-2.0-flash:streamGenerateContent?alt=sse");

    for (kind, option) in [
        (&OPENAI, "region"),
        (&GEMINI, "api_version"),
        (&BEDROCK, "project"),
    ] {
        let mut o = AdapterOptions::default();
        match option {
            "region" => o.region = Some("x".into()),
            "api_version" => o.api_version = Some("x".into()),
            _ => o.project = Some("x".into()),
        }
        let err = kind.adapter_with(&o).unwrap_err();
        assert!(err.contains(option) && err.contains(kind.name()), "{err}");
    }
    assert_eq!(AuthStyle::AzureKey.credential("k").0.as_str(), "api-key");
    assert_eq!(AuthStyle::GoogleKey.credential("k").0.as_str(), "x-goog-api-key");
}
