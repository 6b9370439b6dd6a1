//! Property: a secret planted at a random place of a random request body — an unknown member, a
//! nested object, a key, message text, a tool schema — never reaches the upstream. With
//! `secrets = "block"` the request is refused; with `secrets = "redact"` it is forwarded without it.
//! Each case goes through a real gateway and a real upstream emulator.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use moat_testkit::{Emulator, EmulatorOptions};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};

/// Random JSON: objects, arrays, numbers and text, a few levels deep.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i32>().prop_map(Value::from),
        "[a-z ]{0,12}".prop_map(Value::from),
        "[A-Za-z0-9 .,:/_-]{0,24}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 32, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
            proptest::collection::btree_map("x_[a-z]{1,6}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A valid chat request carrying random JSON in the places clients put extra data: an unknown
/// top-level member, an unknown message member, a tool's parameter schema, metadata.
fn arb_request() -> impl Strategy<Value = Value> {
    (arb_json(), arb_json(), arb_json(), arb_json(), "[a-z ]{1,20}").prop_map(|(a, b, c, d, text)| {
        json!({
            "model": "cloud/tiny",
            "messages": [{"role": "user", "content": text, "x_meta": b}],
            "x_extra": a,
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "x_schema": c}}}],
            "metadata": {"x_data": d},
        })
    })
}

/// Paths to every string value and object key, as (steps, is_key).
type Path = Vec<Result<String, usize>>;

fn string_paths(v: &Value, at: &mut Path, out: &mut Vec<(Path, bool)>) {
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
                // Only unknown members' names: renaming `model` or `messages` makes another request.
                if k.starts_with("x_") {
                    out.push((at.clone(), true));
                }
                string_paths(item, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

fn plant(v: &mut Value, path: &[Result<String, usize>], is_key: bool, text: &str) {
    let Some((last, rest)) = path.split_last() else {
        return;
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
        Ok(k) => cur[k.as_str()] = Value::from(format!("{} {text}", cur[k.as_str()].as_str().unwrap_or(""))),
        Err(i) => cur[*i] = Value::from(format!("{} {text}", cur[*i].as_str().unwrap_or(""))),
    }
}

const SECRETS: &[&str] = &[
    "AKIAQ3EGRTPRZ5J4KF6D",
    "ghp_R8mK2vQ9xL4pN7bW3cZ6tY1hJ5sD0fGaE2uO",
    "sk-proj-Xq3vT9mB2kLp8RwZ4nYc6HdJ1sFgA0eUoQiV7tK5xNbM",
    "xoxb-2048137495-8471920365-Qw3Er5Ty7Ui9Op1As3Df5Gh",
    "AIzaSyD4f9Q2x7Lm3Nv8Bp1Kc6Wz0Rt5Yh2Ju9E",
];

#[test]
fn a_secret_planted_anywhere_never_reaches_the_upstream() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (emu, blocking, redacting) = rt.block_on(async {
        let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
        let p = provider("cloud", &emu.base_url());
        let blocking = gateway(&format!("[privacy]\nsecrets = \"block\"\n{p}")).await;
        let redacting = gateway(&format!("[privacy]\nsecrets = \"redact\"\n{p}")).await;
        (emu, blocking, redacting)
    });
    let strategy = (
        arb_request(),
        0..SECRETS.len(),
        any::<prop::sample::Index>(),
        any::<bool>(),
    );
    let mut runner = TestRunner::new(Config::with_cases(64));
    let result = runner.run(&strategy, |(mut body, which, pick, zero_width)| {
        let mut paths = Vec::new();
        string_paths(&body, &mut Vec::new(), &mut paths);
        // `model` and the tool's name and type are routing and schema, not data.
        paths.retain(|(p, _)| !matches!(p.last(), Some(Ok(k)) if k == "model" || k == "name" || k == "type" || k == "role"));
        let (path, is_key) = pick.get(&paths).clone();
        let secret = SECRETS[which];
        let text = if zero_width {
            let (a, b) = secret.split_at(secret.len() / 2);
            format!("{a}\u{200B}{b}")
        } else {
            secret.to_owned()
        };
        plant(&mut body, &path, is_key, &text);
        let probe = &secret[secret.len() - 8..];
        let before = emu.requests().len();
        let (blocked, redacted) = rt.block_on(async {
            let blocked = blocking.chat(None, &body).await;
            let blocked = (blocked.status().as_u16(), blocked.text().await.unwrap());
            let redacted = redacting.chat(None, &body).await;
            let redacted = (redacted.status().as_u16(), redacted.text().await.unwrap());
            (blocked, redacted)
        });
        prop_assert_eq!(blocked.0, 403, "{}", blocked.1);
        prop_assert!(blocked.1.contains("policy_blocked"));
        prop_assert_eq!(redacted.0, 200, "{}", redacted.1);
        let sent: Vec<String> = emu.requests()[before..]
            .iter()
            .map(|r| String::from_utf8_lossy(&r.body).into_owned())
            .collect();
        prop_assert_eq!(sent.len(), 1, "only the redacted request was forwarded");
        prop_assert!(!sent[0].contains(probe), "the secret reached the upstream: {}", sent[0]);
        Ok(())
    });
    result.unwrap();
}
