//! `POST /v1/responses` through the real request path, bridged onto an OpenAI-compatible upstream (the
//! testkit emulator): whole and streamed answers, conversations continued with `previous_response_id`
//! right after the previous turn ends, tenant isolation of stored turns, `store: false`, and admission
//! over the replayed history (privacy and budget).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/mod.rs"]
mod common;
mod wires;

use std::sync::Arc;

use common::*;
use moat_gateway::admin::{self, LimitSpec, NewKey, NewTeam};
use moat_store::{SqliteStore, Store};
use moat_testkit::{Emulator, EmulatorOptions};
use serde_json::{json, Value};

pub(crate) async fn post(gw: &TestGateway, key: Option<&str>, body: &Value) -> reqwest::Response {
    let req = client().post(gw.url("/v1/responses")).json(body);
    match key {
        Some(k) => req.bearer_auth(k),
        None => req,
    }
    .send()
    .await
    .unwrap()
}

pub(crate) async fn get(gw: &TestGateway, key: Option<&str>, path: &str) -> reqwest::Response {
    let req = client().get(gw.url(path));
    match key {
        Some(k) => req.bearer_auth(k),
        None => req,
    }
    .send()
    .await
    .unwrap()
}

/// The messages the upstream received in its last chat request.
fn last_messages(emu: &Emulator) -> Vec<Value> {
    let body = emu.requests().last().unwrap().json().unwrap();
    body["messages"].as_array().unwrap().clone()
}

/// (event name, data) of an SSE body.
pub(crate) fn named_events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .filter_map(|e| {
            let name = e.lines().find_map(|l| l.strip_prefix("event: "))?;
            let data = e.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((name.to_owned(), serde_json::from_str(data).unwrap()))
        })
        .collect()
}

#[tokio::test]
async fn a_conversation_continues_right_after_each_turn_streamed_or_not() {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let gw = gateway(&provider("emu", &emu.base_url())).await;

    let first = post(
        &gw,
        None,
        &json!({"model": "emu/tiny", "instructions": "Be brief.", "input": "hello"}),
    )
    .await;
    assert_eq!(first.status(), 200);
    assert!(first.headers().contains_key("x-request-id"));
    let first: Value = first.json().await.unwrap();
    let id = first["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("resp_"), "{first}");
    assert_eq!(first["object"], "response");
    assert_eq!(first["status"], "completed");
    assert_eq!(first["model"], "emu/tiny");
    assert_eq!(first["output"][0]["type"], "message");
    assert_eq!(first["output"][0]["content"][0]["text"], "You said: hello");
    assert!(first["usage"]["input_tokens"].as_u64().unwrap() > 0, "{first}");
    assert_eq!(
        last_messages(&emu),
        [
            json!({"role": "system", "content": "Be brief."}),
            json!({"role": "user", "content": "hello"})
        ]
    );

    // Streamed, continuing the first turn at once.
    let resp = post(
        &gw,
        None,
        &json!({"model": "emu/tiny", "input": "again", "previous_response_id": id, "stream": true}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let events = named_events(&resp.text().await.unwrap());
    assert_eq!(events.first().unwrap().0, "response.created");
    assert_eq!(events.last().unwrap().0, "response.completed");
    let second = events.last().unwrap().1["response"].clone();
    let second_id = second["id"].as_str().unwrap().to_owned();
    assert!(events
        .iter()
        .filter_map(|(_, d)| d.get("response"))
        .all(|r| r["id"] == second_id.as_str()));
    assert_eq!(second["previous_response_id"], id.as_str());
    assert_eq!(second["output"][0]["content"][0]["text"], "You said: again");
    // Instructions are not carried over; the first turn's input and output are.
    let sent = last_messages(&emu);
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert_eq!(sent[0], json!({"role": "user", "content": "hello"}));
    assert_eq!(
        sent[1],
        json!({"role": "assistant", "content": "You said: hello"})
    );
    assert_eq!(sent[2], json!({"role": "user", "content": "again"}));

    // The streamed turn is continuable the moment its stream ended.
    let third: Value = post(
        &gw,
        None,
        &json!({"model": "emu/tiny", "input": "third", "previous_response_id": second_id}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(third["status"], "completed", "{third}");
    assert_eq!(last_messages(&emu).len(), 5);

    // Retrieval, input items (newest first by default), deletion.
    let got: Value = get(&gw, None, &format!("/v1/responses/{second_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got, second);
    let items: Value = get(
        &gw,
        None,
        &format!("/api/v1/responses/{second_id}/input_items?order=asc&limit=2"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(items["object"], "list");
    assert_eq!(items["data"].as_array().unwrap().len(), 2);
    assert_eq!(items["data"][0]["content"][0]["text"], "hello");
    assert_eq!(items["data"][1]["role"], "assistant");
    assert_eq!(items["has_more"], true);
    let deleted = client()
        .delete(gw.url(&format!("/v1/responses/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    let (status, body) = error_of(get(&gw, None, &format!("/v1/responses/{id}")).await).await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = error_of(
        post(
            &gw,
            None,
            &json!({"model": "emu/tiny", "input": "x", "previous_response_id": id}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn function_tools_round_trip_across_turns() {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let gw = gateway(&provider("emu", &emu.base_url())).await;
    let tools = json!([{"type": "function", "name": "get_weather", "description": "Weather in a city",
                        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    let first: Value = post(
        &gw,
        None,
        &json!({"model": "emu/tiny", "input": "weather in Oslo?", "tools": tools,
                "emulate": {"tool_call": {"name": "get_weather", "arguments": {"city": "Oslo"}}}}),
    )
    .await
    .json()
    .await
    .unwrap();
    let call = first["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "function_call")
        .unwrap()
        .clone();
    assert_eq!(call["name"], "get_weather", "{first}");
    let sent = emu.requests().last().unwrap().json().unwrap();
    assert_eq!(sent["tools"][0]["function"]["name"], "get_weather");
    let second = post(
        &gw,
        None,
        &json!({"model": "emu/tiny", "previous_response_id": first["id"], "tools": tools,
                "input": [{"type": "function_call_output", "call_id": call["call_id"], "output": "rainy"}]}),
    )
    .await;
    assert_eq!(second.status(), 200);
    let sent = last_messages(&emu);
    assert_eq!(sent[1]["tool_calls"][0]["id"], call["call_id"]);
    assert_eq!(
        sent[2],
        json!({"role": "tool", "content": "rainy", "tool_call_id": call["call_id"]})
    );
}

pub(crate) fn key(store: &dyn Store, name: &str, team: Option<&str>, budget: Option<&str>) -> String {
    let new = NewKey {
        name: name.into(),
        team: team.map(str::to_owned),
        limits: LimitSpec {
            budget: budget.map(str::to_owned),
            ..Default::default()
        },
        ..Default::default()
    };
    admin::create_key(store, &secret(), &new, moat_gateway::ledger::now())
        .unwrap()
        .key
}

#[tokio::test]
async fn stored_turns_belong_to_their_tenant_and_store_false_keeps_nothing() {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_memory().unwrap());
    let (a, b) = (
        key(store.as_ref(), "a", None, None),
        key(store.as_ref(), "b", None, None),
    );
    let gw = gateway_with_store(&provider("emu", &emu.base_url()), store.clone()).await;
    let turn: Value = post(&gw, Some(&a), &json!({"model": "emu/tiny", "input": "mine"}))
        .await
        .json()
        .await
        .unwrap();
    let id = turn["id"].as_str().unwrap();
    assert_eq!(
        get(&gw, Some(&a), &format!("/v1/responses/{id}")).await.status(),
        200
    );
    for path in [
        format!("/v1/responses/{id}"),
        format!("/v1/responses/{id}/input_items"),
    ] {
        let (status, body) = error_of(get(&gw, Some(&b), &path).await).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    let before = emu.requests().len();
    let (status, _) = error_of(
        post(
            &gw,
            Some(&b),
            &json!({"model": "emu/tiny", "input": "x", "previous_response_id": id}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(emu.requests().len(), before, "nothing went upstream");
    let deleted = client()
        .delete(gw.url(&format!("/v1/responses/{id}")))
        .bearer_auth(&b)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 404);
    assert_eq!(get(&gw, None, &format!("/v1/responses/{id}")).await.status(), 401);

    let unkept: Value = post(
        &gw,
        Some(&a),
        &json!({"model": "emu/tiny", "input": "x", "store": false}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(unkept["store"], false);
    let unkept_id = unkept["id"].as_str().unwrap();
    assert_eq!(
        get(&gw, Some(&a), &format!("/v1/responses/{unkept_id}"))
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn replayed_history_is_privacy_scanned_and_reserved() {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_memory().unwrap());
    admin::create_team(
        store.as_ref(),
        &NewTeam {
            name: "t".into(),
            limits: LimitSpec::default(),
        },
        0,
    )
    .unwrap();
    let rich = key(store.as_ref(), "rich", Some("t"), None);
    let poor = key(store.as_ref(), "poor", Some("t"), Some("0.1/day"));
    let toml = format!(
        "{}local = true\n{}[providers.prices]\n\"*\" = [100.0, 0.0]\n",
        provider("local", &emu.base_url()),
        provider("cloud", &emu.base_url())
    );
    let gw = gateway_with_store(&toml, store).await;

    // A secret said to the local model stays in the conversation: continuing it on a cloud model is
    // refused (secrets default to local_only), though the new input is harmless.
    let local: Value = post(
        &gw,
        Some(&rich),
        &json!({"model": "local/tiny", "input": "my key is AKIAZ7QW3RT5YU6IJ2PL"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let before = emu.requests().len();
    let (status, body) = error_of(
        post(
            &gw,
            Some(&rich),
            &json!({"model": "cloud/tiny", "input": "and now?", "previous_response_id": local["id"]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "policy_local_only");
    assert_eq!(emu.requests().len(), before);
    assert_eq!(
        post(
            &gw,
            Some(&rich),
            &json!({"model": "cloud/tiny", "input": "and now?"})
        )
        .await
        .status(),
        200
    );

    // A long conversation (same team, so the same tenant) is reserved in full: at $100 per million
    // input tokens, $0.10 covers ~3,000 bytes, which the replayed 6,000 do not fit.
    let long: Value = post(
        &gw,
        Some(&rich),
        &json!({"model": "cloud/tiny", "input": "word ".repeat(1200)}),
    )
    .await
    .json()
    .await
    .unwrap();
    let (status, body) = error_of(
        post(
            &gw,
            Some(&poor),
            &json!({"model": "cloud/tiny", "input": "hi", "previous_response_id": long["id"]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 402, "{body}");
    assert_eq!(
        post(&gw, Some(&poor), &json!({"model": "cloud/tiny", "input": "hi"}))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn refusals_come_back_in_openai_error_shape() {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let gw = gateway(&provider("emu", &emu.base_url())).await;
    for (body, word) in [
        (
            json!({"model": "emu/tiny", "input": "x", "tools": [{"type": "web_search"}]}),
            "web_search",
        ),
        (
            json!({"model": "emu/tiny", "input": "x", "background": true}),
            "background",
        ),
        (json!({"model": "emu/tiny"}), "input"),
        (json!({"model": "emu/tiny", "input": 5}), "invalid request"),
    ] {
        let (status, err) = error_of(post(&gw, None, &body).await).await;
        assert_eq!(status, 400, "{body}");
        assert!(err["error"]["message"].as_str().unwrap().contains(word), "{err}");
    }
    assert!(emu.requests().is_empty());
}

#[tokio::test]
async fn a_conversation_past_its_size_limit_is_not_continued() {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let toml = format!(
        "[responses]\nmax_conversation_bytes = 2000\n{}",
        provider("emu", &emu.base_url())
    );
    let gw = gateway(&toml).await;
    let small: Value = post(&gw, None, &json!({"model": "emu/tiny", "input": "short"}))
        .await
        .json()
        .await
        .unwrap();
    let ok = post(
        &gw,
        None,
        &json!({"model": "emu/tiny", "input": "x", "previous_response_id": small["id"]}),
    )
    .await;
    assert_eq!(ok.status(), 200);
    let big: Value = post(
        &gw,
        None,
        &json!({"model": "emu/tiny", "input": "word ".repeat(500)}),
    )
    .await
    .json()
    .await
    .unwrap();
    let before = emu.requests().len();
    let (status, body) = error_of(
        post(
            &gw,
            None,
            &json!({"model": "emu/tiny", "input": "x", "previous_response_id": big["id"]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("max_conversation_bytes"));
    assert_eq!(emu.requests().len(), before);
    // Listing bounds are checked too.
    let path = format!(
        "/v1/responses/{}/input_items?limit=0",
        small["id"].as_str().unwrap()
    );
    assert_eq!(get(&gw, None, &path).await.status(), 400);
}
