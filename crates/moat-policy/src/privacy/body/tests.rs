//! Whole-body inspection: every place a secret can sit in a request body, split secrets, invisible
//! characters, embedded text and binary, and properties over random bodies.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;

fn shared() -> &'static Scanner {
    static SCANNER: std::sync::OnceLock<Scanner> = std::sync::OnceLock::new();
    SCANNER.get_or_init(|| Scanner::new(&[]).unwrap())
}

const AWS: &str = "AKIAQ3EGRTPRZ5J4KF6D";
const GITHUB: &str = "ghp_R8mK2vQ9xL4pN7bW3cZ6tY1hJ5sD0fGaE2uO";

fn detectors(body: &Value) -> Vec<String> {
    inspect(shared(), body)
        .findings
        .iter()
        .map(|f| f.detector.to_string())
        .collect()
}

/// Redacts everything found with `[detector]` placeholders and returns the body as text.
fn redacted(mut body: Value) -> String {
    let scan = inspect(shared(), &body);
    let all: Vec<&BodyFinding> = scan.findings.iter().collect();
    redact(&mut body, &all, |id, _| format!("[{id}]"));
    body.to_string()
}

fn b64(s: &str) -> String {
    let mut out = String::new();
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in s.as_bytes().chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &x)| acc | (u32::from(x) << (16 - 8 * i)));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                char::from(alphabet[((n >> (18 - 6 * i)) & 63) as usize])
            } else {
                '='
            });
        }
    }
    out
}

#[test]
fn secrets_are_found_in_every_member_a_client_can_send() {
    let bodies = [
        json!({"model": "m", "prompt": "hi", "suffix": format!("key {AWS}")}),
        json!({"model": "m", "prompt": [[format!("key {AWS}")]]}),
        json!({"model": "m", "input": ["a", format!("key {AWS}")]}),
        json!({"model": "m", "messages": [], "tools": [{"type": "function", "function": {"name": "f", "description": format!("use {AWS}")}}]}),
        json!({"model": "m", "messages": [], "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"k": {"default": AWS}}}}}]}),
        json!({"model": "m", "instructions": format!("key {AWS}")}),
        json!({"model": "m", "prediction": {"type": "content", "content": AWS}}),
        json!({"model": "m", "metadata": {"k": AWS}}),
        json!({"model": "m", "stop": [AWS]}),
        json!({"model": "m", "response_format": {"type": "json_schema", "json_schema": {"schema": {"description": AWS}}}}),
        json!({"model": "m", "x_unknown": {"deep": [{"deeper": AWS}]}}),
        json!({"model": "m", "messages": [{"role": "user", "name": AWS, "content": "hi"}]}),
        json!({"model": "m", "messages": [{"role": "user", "content": "hi", "x_extra": AWS}]}),
        json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": format!("https://x.io/a.png?k={AWS}")}}]}]}),
        json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "file", "file": {"filename": "a.txt", "file_data": format!("data:text/plain;base64,{}", b64(&format!("aws {AWS}")))}}]}]}),
        json!({"model": "m", "max_tokens": 5, "system": "s", "tools": [{"name": "t", "description": format!("use {AWS}"), "input_schema": {}}]}),
        json!({"model": "m", "max_tokens": 5, "messages": [], "x_top": AWS}),
        json!({"model": "m", AWS: "the key is an object key"}),
    ];
    for body in bodies {
        assert_eq!(detectors(&body), ["aws_access_key_id"], "{body}");
        let out = redacted(body.clone());
        assert!(
            !out.contains(AWS) && !out.contains(&b64(&format!("aws {AWS}"))),
            "{out}"
        );
    }
}

#[test]
fn a_secret_split_across_messages_or_parts_is_found_and_redacted_in_both() {
    let (head, tail) = GITHUB.split_at(17);
    let messages = json!({"messages": [
        {"role": "user", "content": format!("token is {head}")},
        {"role": "user", "content": format!("{tail} thanks")},
    ]});
    let parts = json!({"messages": [{"role": "user", "content": [
        {"type": "text", "text": head}, {"type": "text", "text": tail},
    ]}]});
    let mixed = json!({"messages": [
        {"role": "user", "content": head},
        {"role": "assistant", "content": [{"type": "text", "text": tail}]},
    ]});
    let (a, b) = AWS.split_at(9);
    let three = json!({"prompt": [a, &b[..4], &b[4..]]});
    // The string after the split value starts with a letter: the value still ends at a boundary.
    let glued = json!({"messages": [{"role": "user", "content": [
        {"type": "text", "text": a}, {"type": "text", "text": b},
    ]}], "model": "cloud/tiny"});
    for body in [messages, parts, mixed, three, glued] {
        let scan = inspect(shared(), &body);
        assert_eq!(scan.findings.len(), 1, "{body}: {scan:?}");
        assert!(scan.findings[0].spans.len() >= 2);
        let out = redacted(body.clone());
        assert!(
            !out.contains(head) && !out.contains(tail) && !out.contains(a),
            "{out}"
        );
    }
    let out = redacted(json!({"messages": [
        {"role": "user", "content": format!("token is {head}")},
        {"role": "user", "content": format!("{tail} thanks")},
    ]}));
    assert!(
        out.contains("token is [github_token]") && out.contains("\" thanks\""),
        "{out}"
    );
}

#[test]
fn texts_that_merely_touch_are_not_joined_into_findings() {
    let body = json!({"messages": [
        {"role": "user", "content": "my order number is 4111"},
        {"role": "user", "content": "hello there"},
        {"role": "assistant", "content": "sk-"},
        {"role": "user", "content": "learn is a python library"},
    ]});
    assert!(detectors(&body).is_empty());
}

#[test]
fn a_finding_in_one_string_is_not_reported_again_as_split() {
    let body = json!({"messages": [
        {"role": "user", "content": format!("key {AWS}")},
        {"role": "user", "content": "next message"},
    ]});
    assert_eq!(detectors(&body), ["aws_access_key_id"]);
    // A key ending one string runs on into a word starting the next: both are taken, since
    // whether the word is the rest of the key cannot be told.
    let body = json!({"messages": [
        {"role": "user", "content": format!("token {GITHUB}")},
        {"role": "user", "content": "Thanks"},
    ]});
    assert_eq!(detectors(&body), ["github_token", "github_token"]);
    let out = redacted(body);
    assert!(!out.contains(GITHUB) && out.contains("\"content\":\"\""), "{out}");
}

#[test]
fn invisible_characters_do_not_hide_a_secret() {
    let (a, b) = AWS.split_at(10);
    for sep in [
        "\u{200B}",
        "\u{00AD}",
        "\u{2060}",
        "\u{FEFF}",
        "\u{202E}",
        "\u{200D}\u{200C}",
    ] {
        let body = json!({"messages": [{"role": "user", "content": format!("key {a}{sep}{b} ok")}]});
        assert_eq!(detectors(&body), ["aws_access_key_id"], "{sep:?}");
        let out = redacted(body);
        assert!(out.contains("key [aws_access_key_id] ok"), "{out}");
    }
    let smuggled: String = AWS
        .chars()
        .map(|c| char::from_u32(0xE0000 + c as u32).unwrap())
        .collect();
    assert_eq!(
        detectors(&json!({"content": format!("hi {smuggled}")})),
        ["aws_access_key_id"]
    );
}

#[test]
fn binary_content_is_reported_with_its_path_never_its_content() {
    let png = format!(
        "data:image/png;base64,{}",
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk".repeat(3)
    );
    let pdf_bytes: String = [
        37u8, 80, 68, 70, 45, 49, 46, 55, 10, 37, 0xE2, 0xE3, 0xCF, 0xD3, 10, 1, 2, 3,
    ]
    .iter()
    .map(|&b| char::from(b))
    .collect();
    let _ = pdf_bytes;
    let body = json!({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": png}},
        {"type": "input_audio", "input_audio": {"format": "wav", "data": "UklGRiQAAABXQVZFZm10IBAAAAABAAEARKwAAIhYAQACABAAZGF0YQAAAAA".repeat(2)}},
    ]}], "x": {"source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjcKJeLjz9MKMSAwIG9iago8PC9UeXBlL0NhdGFsb2c+PgplbmRvYmoK".repeat(2)}}});
    let scan = inspect(shared(), &body);
    let got: Vec<(&str, &str)> = scan
        .opaque
        .iter()
        .map(|o| (o.path.as_str(), o.media_type.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("messages[0].content[1].image_url.url", "image/png"),
            ("messages[0].content[2].input_audio.data", "binary data"),
            ("x.source.data", "binary data"),
        ]
    );
}

#[test]
fn ids_signatures_and_remote_urls_are_not_opaque() {
    let body = json!({
        "messages": [{"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": "EqQBCkgIARABGAIiQL2Yb3k8cDf1ZW5n0q2sYwP8UfW6cI9vjh0tH3HwJ5PdfxY2bLxq0Uq0fE3rmA3uY0A9FrP1rZz8kqgUtqH1PZMSDD8A"}]}],
        "file": {"file_id": "file-6F2ksmvXxt4VdoqmHRw6kL", "filename": "report.pdf"},
        "image": {"url": "https://example.org/cat.png"},
    });
    assert!(inspect(shared(), &body).opaque.is_empty());
}

#[test]
fn decoded_text_is_redacted_and_encoded_again() {
    let url = format!("data:text/plain;base64,{}", b64(&format!("aws_key = {AWS}\n")));
    let mut body = json!({"file": {"file_data": url}});
    let scan = inspect(shared(), &body);
    redact(&mut body, &scan.findings.iter().collect::<Vec<_>>(), |_, _| {
        "[AWS_1]".to_owned()
    });
    assert_eq!(
        body["file"]["file_data"],
        format!("data:text/plain;base64,{}", b64("aws_key = [AWS_1]\n"))
    );
    let mut body = json!({"note": b64(&format!("{GITHUB} is the token"))});
    let scan = inspect(shared(), &body);
    redact(&mut body, &scan.findings.iter().collect::<Vec<_>>(), |_, _| {
        "X".to_owned()
    });
    assert_eq!(body["note"], b64("X is the token"));
}

#[test]
fn object_keys_are_renamed_when_redacted() {
    let out = redacted(json!({"model": "m", "metadata": {AWS: 1, "other": 2}}));
    assert_eq!(
        out,
        r#"{"metadata":{"[aws_access_key_id]":1,"other":2},"model":"m"}"#
    );
}

#[test]
fn paths_name_unusual_keys_safely() {
    let body = json!({"a b": [{"c.d": {"media_type": "image/png", "data": "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkAAAAAAAAAAAAAAAA"}}]});
    let scan = inspect(shared(), &body);
    assert_eq!(scan.opaque[0].path, r#"["a b"][0]["c.d"].data"#);
}

/// Random JSON bodies: objects, arrays, numbers and lowercase-word strings, a few levels deep.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i32>().prop_map(Value::from),
        "[a-z ]{0,12}".prop_map(Value::from),
        "[A-Za-z0-9 .,:/_-]{0,24}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            proptest::collection::btree_map("[a-z_]{1,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every string slot of `v` as a path of steps (`None` for the key itself).
fn string_paths(
    v: &Value,
    at: &mut Vec<Result<String, usize>>,
    out: &mut Vec<(Vec<Result<String, usize>>, bool)>,
) {
    match v {
        Value::String(_) => out.push((at.clone(), false)),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                at.push(Err(i));
                string_paths(item, at, out);
                at.pop();
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                at.push(Ok(k.clone()));
                out.push((at.clone(), true));
                string_paths(item, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

/// Puts `secret` into the string (or key) at `path`, wrapped by `wrap`.
fn plant(v: &mut Value, path: &[Result<String, usize>], is_key: bool, text: &str) {
    let (last, rest) = match path.split_last() {
        Some(x) => x,
        None => {
            *v = Value::from(text);
            return;
        }
    };
    let mut cur = v;
    for step in rest {
        cur = match step {
            Ok(k) => cur.get_mut(k.as_str()).unwrap(),
            Err(i) => cur.get_mut(*i).unwrap(),
        };
    }
    match last {
        Ok(k) if is_key => {
            let map = cur.as_object_mut().unwrap();
            let item = map.remove(k).unwrap();
            map.insert(format!("{k} {text}"), item);
        }
        Ok(k) => cur[k.as_str()] = Value::from(text),
        Err(i) => cur[*i] = Value::from(text),
    }
}

fn secrets() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just(AWS),
        Just(GITHUB),
        Just("sk-proj-Xq3vT9mB2kLp8RwZ4nYc6HdJ1sFgA0eUoQiV7tK5xNbM"),
        Just("xoxb-2048137495-8471920365-Qw3Er5Ty7Ui9Op1As3Df5Gh"),
        Just("DB_PASSWORD=Vq8#mZ2!pL9xK4$wR7tY"),
    ]
}

/// How a planted secret is written.
fn disguise(secret: &str, how: u8) -> String {
    match how {
        0 => secret.to_owned(),
        1 => {
            let (a, b) = secret.split_at(secret.len() / 2);
            format!("{a}\u{200B}{b}")
        }
        2 => format!("data:text/plain;base64,{}", b64(secret)),
        _ => b64(&format!("{secret} ")),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Wherever a secret is planted in a random body, and however it is written, it is found, and
    /// redaction removes every trace of it.
    #[test]
    fn a_planted_secret_is_found_and_redacted_anywhere(
        mut body in arb_json(),
        secret in secrets(),
        how in 0u8..4,
        pick in any::<prop::sample::Index>(),
    ) {
        let mut paths = Vec::new();
        string_paths(&body, &mut Vec::new(), &mut paths);
        paths.push((Vec::new(), false));
        let (path, is_key) = pick.get(&paths).clone();
        // Keys hold text as written (a data URL in a key is just text).
        let how = if is_key { how.min(1) } else { how };
        let text = disguise(secret, how);
        plant(&mut body, &path, is_key, &text);
        let scan = inspect(shared(), &body);
        prop_assert!(scan.findings.iter().any(|f| f.category == Category::Secret), "{body}");
        let out = redacted(body.clone());
        let probe = &secret[secret.len() - 10..];
        prop_assert!(!out.contains(probe) && !out.contains(&text), "{out}");
    }

    /// A secret cut in two and put in two consecutive string values is found.
    #[test]
    fn a_secret_split_between_consecutive_strings_is_found(
        secret in secrets(),
        cut in 4usize..16,
        filler in "[a-z]{0,6}( [a-z]{1,6}){0,3}",
    ) {
        let (a, b) = secret.split_at(cut);
        let body = json!({"messages": [
            {"role": "user", "content": format!("{filler} {a}")},
            {"role": "user", "content": [{"type": "text", "text": format!("{b} {filler}")}]},
        ]});
        let scan = inspect(shared(), &body);
        prop_assert!(scan.findings.iter().any(|f| f.category == Category::Secret), "{body}");
        let out = redacted(body);
        prop_assert!(!out.contains(&secret[secret.len() - 6..]), "{out}");
    }

    /// Redacting with placeholders equal to what they replace leaves any body as it was: the walks
    /// that number and rewrite strings agree.
    #[test]
    fn an_identity_redaction_changes_nothing(body in arb_json(), salt in "[a-z]{0,4}") {
        let mut planted = body.clone();
        if let Some(map) = planted.as_object_mut() {
            map.insert(format!("k{salt}"), Value::from(format!("{GITHUB} {salt}")));
        }
        let scan = inspect(shared(), &planted);
        let mut copy = planted.clone();
        redact(&mut copy, &scan.findings.iter().collect::<Vec<_>>(), |_, original| original.to_owned());
        prop_assert_eq!(copy, planted);
    }
}
