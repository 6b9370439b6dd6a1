use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::*;
use crate::openai::{ChatCompletionRequest, EmbeddingRequest, StreamOptions};

/// A request decoded as the gateway decodes one, with its bytes when they may be edited.
fn decoded<T: serde::de::DeserializeOwned>(sent: &[u8]) -> (T, Option<Unique<&[u8]>>) {
    let (value, unique) = parse(sent).unwrap();
    (serde_json::from_value(value).unwrap(), unique)
}

fn text(body: Option<Vec<u8>>) -> String {
    String::from_utf8(body.expect("edited")).expect("utf-8")
}

#[test]
fn members_the_gateway_does_not_set_are_copied_byte_for_byte() {
    let sent = br#"{ "model" : "fast",
        "messages": [ {"role":"user", "content":"caf\u00e9 \"q\"", "x-vendor": {"a": [1, 2.50, 1e3]}} ],
        "temperature": 1, "logit_bias": {"50256": -100},  "metadata":{"k":"v"} }"#;
    let (mut request, unique): (ChatCompletionRequest, _) = decoded(sent);
    request.model = Some("llama3.2".into());
    let out = text(edit(&unique.unwrap(), &request, &["model"]));
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
    let (mut request, unique): (ChatCompletionRequest, _) = decoded(sent);
    request.model = Some("m".into());
    request.models = None;
    request.stream_options = Some(StreamOptions {
        include_usage: Some(true),
        extra: Map::from_iter([("extra".to_owned(), json!(1))]),
    });
    request.user = Some("hashed".into());
    request.prompt_cache_key = Some("tenant".into());
    let fresh = ["model", "models", "stream_options", "user", "prompt_cache_key"];
    let out = text(edit(&unique.unwrap(), &request, &fresh));
    assert_eq!(
        out,
        r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true,"extra":1},"user":"hashed","prompt_cache_key":"tenant"}"#
    );
    assert!(!out.contains("alice") && !out.contains("null"), "{out}");
}

#[test]
fn bytes_with_a_key_twice_anywhere_are_never_edited() {
    // serde_json keeps the last copy, so that is the one the gateway inspected; the first must not
    // reach a provider, at the top or deeper down.
    for sent in [
        &br#"{"model":"m","note":"sk-secret-first","messages":[],"note":"plain"}"#[..],
        br#"{"model":"m","messages":[{"role":"user","content":"sk-secret-first","content":"plain"}]}"#,
        br#"{"model":"first","messages":[],"model":"second"}"#,
    ] {
        let (value, unique) = parse(sent).unwrap();
        assert!(unique.is_none(), "{}", String::from_utf8_lossy(sent));
        assert!(!value.to_string().contains("sk-secret-first"));
        assert_eq!(value, serde_json::from_slice::<Value>(sent).unwrap());
    }
}

#[test]
fn parsing_reads_what_serde_json_reads() {
    let body = br#" {"a": [1, -2, 3.5, 1e400000000000000000000], "b": {"c": null, "d": true}} "#;
    assert_eq!(
        parse(&body[..]).map(|(v, _)| v).map_err(|e| e.to_string()),
        serde_json::from_slice::<Value>(body).map_err(|e| e.to_string())
    );
    for body in [
        &br#" {"a": [1, -2, 3.5e-3, 18446744073709551615], "b": {"c": null, "d": "\u00e9\n"}} "#[..],
        b"[1, 2]",
        b"\"s\"",
    ] {
        let (value, unique) = parse(body).unwrap();
        assert_eq!(value, serde_json::from_slice::<Value>(body).unwrap());
        assert_eq!(unique.unwrap().bytes(), body);
    }
    for bad in [&b""[..], b"{} {}", b"{\"a\":}", b"{\"a\":1,}"] {
        assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn escaped_keys_are_read_as_keys_and_keys_to_escape_are_left_to_the_encoder() {
    let sent = br#"{"mod\u0065l":"m","messages":[],"n":1}"#;
    let (mut request, unique): (ChatCompletionRequest, _) = decoded(sent);
    request.model = Some("n".into());
    let out = text(edit(&unique.unwrap(), &request, &["model"]));
    assert_eq!(out, r#"{"model":"n","messages":[],"n":1}"#);

    let sent = br#"{"model":"m","messages":[],"we\"ird":1}"#;
    let (request, unique): (ChatCompletionRequest, _) = decoded(sent);
    assert_eq!(edit(&unique.unwrap(), &request, &["model"]), None);
}

#[test]
fn anything_unusual_is_left_to_the_encoder() {
    let request = EmbeddingRequest::new("m", "hi");
    let unique = |body: &'static [u8]| parse(body).unwrap().1.unwrap();
    // Not an object.
    assert_eq!(edit(&unique(b"[1]"), &request, &[]), None);
    // A member the client did not send, and not the gateway's.
    assert_eq!(edit(&unique(br#"{"model":"m"}"#), &request, &["model"]), None);
    // The request is not an object.
    assert_eq!(edit(&unique(br#"{"model":"m"}"#), &json!(["model"]), &[]), None);
    // Too many members to match cheaply.
    let many: Map<String, Value> = (0..=MAX_MEMBERS).map(|i| (format!("k{i}"), json!(i))).collect();
    let sent = serde_json::to_vec(&many).unwrap();
    let (_, sent) = parse(&sent).unwrap();
    assert_eq!(edit(&sent.unwrap(), &many, &[]), None);
}

/// A JSON text with keys from a small alphabet, so objects repeat keys often, and whether one does.
fn json_text(depth: u32) -> BoxedStrategy<(String, bool)> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<i32>().prop_map(|n| n.to_string()),
        "[a-c ]{0,4}".prop_map(|s| format!("{s:?}")),
    ]
    .prop_map(|s| (s, false));
    if depth == 0 {
        return leaf.boxed();
    }
    prop_oneof![
        2 => leaf,
        1 => prop::collection::vec(json_text(depth - 1), 0..3).prop_map(|items| {
            let texts: Vec<&str> = items.iter().map(|(t, _)| t.as_str()).collect();
            (format!("[{}]", texts.join(",")), items.iter().any(|(_, d)| *d))
        }),
        1 => object_text(depth - 1),
    ]
    .boxed()
}

fn object_text(depth: u32) -> BoxedStrategy<(String, bool)> {
    prop::collection::vec(("[a-d]", json_text(depth)), 0..5)
        .prop_map(|members| {
            let texts: Vec<String> = members.iter().map(|(k, (v, _))| format!("{k:?}:{v}")).collect();
            let mut keys: Vec<&String> = members.iter().map(|(k, _)| k).collect();
            keys.sort();
            let repeats = keys.windows(2).any(|w| w[0] == w[1]) || members.iter().any(|(_, (_, d))| *d);
            (format!("{{{}}}", texts.join(",")), repeats)
        })
        .boxed()
}

proptest! {
    /// Bytes with a key twice anywhere are never kept to edit; from any others, an edited body is
    /// exactly the request, its members once each.
    #[test]
    fn an_edited_body_is_exactly_the_request(
        (sent, repeats) in object_text(3),
        set in prop::collection::btree_map("[a-e]", json_text(1), 0..3),
        removed in "[a-e]",
    ) {
        let (inspected, unique) = parse(sent.as_bytes()).unwrap();
        prop_assert_eq!(&inspected, &serde_json::from_str::<Value>(&sent).unwrap());
        prop_assert_eq!(unique.is_none(), repeats);
        let Some(unique) = unique else {
            return Ok(());
        };
        let mut request = inspected.as_object().unwrap().clone();
        let mut fresh: Vec<&str> = vec![removed.as_str()];
        request.remove(&removed);
        for (k, (v, _)) in &set {
            request.insert(k.clone(), serde_json::from_str(v).unwrap());
            fresh.push(k.as_str());
        }
        let out = edit(&unique, &request, &fresh).unwrap();
        let (back, out_unique) = parse(&out).unwrap();
        prop_assert!(out_unique.is_some(), "{}", String::from_utf8_lossy(&out));
        prop_assert_eq!(back, Value::Object(request));
    }
}

#[test]
fn only_a_top_level_null_member_is_taken_out() {
    let cases = [
        (
            r#"{"a\"b":1,"usage":null,"c":[1, 2]}"#,
            Some(r#"{"a\"b":1,"c":[1, 2]}"#),
        ),
        (r#"{"usage":{"t":1},"usage":null}"#, Some("{}")),
        (r#"{"usage":null,"usage":{"t":1}}"#, None),
        (r#"{"choices":[{"usage":null}]}"#, None),
        (r#"{"usage":0}"#, None),
        ("[DONE]", None),
        ("[1]", None),
        (r#"{"usage":null"#, None),
    ];
    for (json, expected) in cases {
        assert_eq!(without_null_member(json, "usage").as_deref(), expected, "{json}");
        // What is left reads as the object serde_json reads, less the member.
        if let Some(out) = without_null_member(json, "usage") {
            let mut whole: serde_json::Value = serde_json::from_str(json).unwrap();
            whole.as_object_mut().unwrap().remove("usage");
            assert_eq!(serde_json::from_str::<serde_json::Value>(&out).unwrap(), whole);
        }
    }
}
