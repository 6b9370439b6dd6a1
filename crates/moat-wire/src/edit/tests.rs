use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::*;
use crate::openai::{ChatCompletionRequest, EmbeddingRequest, StreamOptions};

/// A request decoded as the gateway decodes one: parsed into a `Value` first (last copy of a
/// duplicate key wins), then typed.
fn decoded<T: serde::de::DeserializeOwned>(sent: &[u8]) -> T {
    serde_json::from_value(serde_json::from_slice(sent).unwrap()).unwrap()
}

fn text(body: Option<Vec<u8>>) -> String {
    String::from_utf8(body.expect("edited")).expect("utf-8")
}

#[test]
fn members_the_gateway_does_not_set_are_copied_byte_for_byte() {
    let sent = br#"{ "model" : "fast",
        "messages": [ {"role":"user", "content":"caf\u00e9 \"q\"", "x-vendor": {"a": [1, 2.50, 1e3]}} ],
        "temperature": 1, "logit_bias": {"50256": -100},  "metadata":{"k":"v"} }"#;
    let mut request: ChatCompletionRequest = decoded(sent);
    request.model = Some("llama3.2".into());
    let out = text(edit(sent, &request, &["model"]));
    assert_eq!(
        out,
        r#"{"model":"llama3.2","messages":[ {"role":"user", "content":"caf\u00e9 \"q\"", "x-vendor": {"a": [1, 2.50, 1e3]}} ],"temperature":1,"logit_bias":{"50256": -100},"metadata":{"k":"v"}}"#
    );
    let back: ChatCompletionRequest = serde_json::from_str(&out).unwrap();
    assert_eq!(back, request);
}

#[test]
fn the_gateways_members_are_replaced_added_and_removed() {
    let sent = br#"{"model":"alias","models":["a","b"],"messages":[{"role":"user","content":"hi"}],
        "stream":true,"stream_options":{"include_usage":false,"extra":1},"user":"alice","temperature":null}"#;
    let mut request: ChatCompletionRequest = decoded(sent);
    request.model = Some("m".into());
    request.models = None;
    request.stream_options = Some(StreamOptions {
        include_usage: Some(true),
        extra: Map::from_iter([("extra".to_owned(), json!(1))]),
    });
    request.user = Some("hashed".into());
    request.prompt_cache_key = Some("tenant".into());
    let fresh = ["model", "models", "stream_options", "user", "prompt_cache_key"];
    let out = text(edit(sent, &request, &fresh));
    assert_eq!(
        out,
        r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true,"extra":1},"user":"hashed","prompt_cache_key":"tenant"}"#
    );
    assert!(!out.contains("alice") && !out.contains("null"), "{out}");
}

#[test]
fn of_duplicate_keys_only_the_last_is_forwarded() {
    // serde_json keeps the last copy, so that is the one the gateway inspected.
    let sent = br#"{"model":"m","note":"sk-secret-first","messages":[{"role":"user","content":"hi"}],"note":"plain"}"#;
    let request: ChatCompletionRequest = decoded(sent);
    assert_eq!(request.extra["note"], "plain");
    let out = text(edit(sent, &request, &["model"]));
    assert!(!out.contains("sk-secret-first"), "{out}");
    assert_eq!(out.matches("\"note\"").count(), 1, "{out}");
    assert_eq!(serde_json::from_str::<ChatCompletionRequest>(&out).unwrap(), request);

    // The gateway's own members too.
    let sent = br#"{"model":"first","messages":[],"model":"second"}"#;
    let mut request: ChatCompletionRequest = decoded(sent);
    request.model = Some("routed".into());
    assert_eq!(text(edit(sent, &request, &["model"])), r#"{"model":"routed","messages":[]}"#);
}

#[test]
fn a_member_with_a_duplicate_key_inside_is_not_copied() {
    let sent = br#"{"model":"m","messages":[{"role":"user","content":"sk-secret-first","content":"plain"}]}"#;
    let request: ChatCompletionRequest = decoded(sent);
    assert_eq!(edit(sent, &request, &["model"]), None);
    // …unless it is written fresh.
    assert!(edit(sent, &request, &["model", "messages"]).is_some());
}

#[test]
fn escaped_keys_are_read_and_written_as_keys() {
    let sent = br#"{"mod\u0065l":"m","messages":[],"we\"ird":1}"#;
    let mut request: ChatCompletionRequest = decoded(sent);
    request.model = Some("n".into());
    let out = text(edit(sent, &request, &["model"]));
    assert_eq!(out, r#"{"model":"n","messages":[],"we\"ird":1}"#);
}

#[test]
fn anything_unusual_is_left_to_the_encoder() {
    let request = EmbeddingRequest::new("m", "hi");
    // Not an object.
    assert_eq!(edit(b"[1]", &request, &[]), None);
    assert_eq!(edit(b"{} {}", &request, &[]), None);
    // A member the client did not send, and not the gateway's.
    assert_eq!(edit(br#"{"model":"m"}"#, &request, &["model"]), None);
    // The request is not an object.
    assert_eq!(edit(br#"{"model":"m"}"#, &json!(["model"]), &[]), None);
    // Too many members to match cheaply.
    let many: Map<String, Value> = (0..=MAX_MEMBERS).map(|i| (format!("k{i}"), json!(i))).collect();
    let sent = serde_json::to_vec(&many).unwrap();
    assert_eq!(edit(&sent, &many, &[]), None);
}

/// A JSON text with keys from a small alphabet, so objects repeat keys often.
fn json_text(depth: u32) -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<i32>().prop_map(|n| n.to_string()),
        "[a-c ]{0,4}".prop_map(|s| format!("{s:?}")),
    ];
    if depth == 0 {
        return leaf.boxed();
    }
    prop_oneof![
        2 => leaf,
        1 => prop::collection::vec(json_text(depth - 1), 0..3).prop_map(|v| format!("[{}]", v.join(","))),
        1 => object_text(depth - 1),
    ]
    .boxed()
}

fn object_text(depth: u32) -> BoxedStrategy<String> {
    prop::collection::vec(("[a-d]", json_text(depth)), 0..5)
        .prop_map(|members| {
            let members: Vec<String> = members.iter().map(|(k, v)| format!("{k:?}:{v}")).collect();
            format!("{{{}}}", members.join(","))
        })
        .boxed()
}

proptest! {
    /// Whatever the client sent, an edited body holds exactly the request's members with the
    /// request's values, each key once at every depth.
    #[test]
    fn an_edited_body_is_exactly_the_request(
        sent in object_text(3),
        set in prop::collection::btree_map("[a-e]", json_text(1), 0..3),
        removed in "[a-e]",
    ) {
        let inspected: Value = serde_json::from_str(&sent).unwrap();
        let mut request = inspected.as_object().unwrap().clone();
        let mut fresh: Vec<&str> = vec![removed.as_str()];
        request.remove(&removed);
        for (k, v) in &set {
            request.insert(k.clone(), serde_json::from_str(v).unwrap());
            fresh.push(k.as_str());
        }
        if let Some(out) = edit(sent.as_bytes(), &request, &fresh) {
            let out = String::from_utf8(out).unwrap();
            prop_assert!(unique_keys(&out), "{}", out);
            prop_assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), Value::Object(request));
        } else {
            // Only a duplicate key inside a member to copy stops the edit here.
            let top = serde_json::from_str::<Top<'_>>(&sent).unwrap().0;
            prop_assert!(
                top.iter().any(|(k, raw)| !fresh.contains(&k.as_ref())
                    && request.contains_key(k.as_ref())
                    && !unique_keys(raw.get())),
                "{}",
                sent
            );
        }
    }
}
