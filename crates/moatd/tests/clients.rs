//! The clients people run today, each driving a real moatd process in front of the testkit emulator:
//! the `openai` Python SDK (chat, `parse`, and the Responses API: whole, streamed, conversations,
//! function tools, retrieve), the `openai` npm package, LangChain's `ChatOpenAI` with and without
//! `use_responses_api`, `litellm.responses`, and the OpenAI Agents SDK in its default Responses mode
//! with a function tool. `scripts/test.sh` installs them all; without them these tests fail, they do
//! not skip.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use common::*;
use moat_testkit::{Emulator, EmulatorOptions};
use serde_json::Value;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// A strict emulator (it refuses members OpenAI does not define) behind moatd with a plain config.
async fn setup() -> (Emulator, tempfile::TempDir, Daemon) {
    let emu = Emulator::start(EmulatorOptions {
        api_key: Some("sk-emu-provider".into()),
        strict: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        &dir,
        &format!(
            "[server]\napi_keys = [\"moat-client-test\"]\n[[providers]]\nname = \"emu\"\nkind = \"openai\"\nbase_url = \"{}\"\napi_key = \"sk-emu-provider\"\nmax_retries = 0\n",
            emu.base_url()
        ),
    );
    let daemon = Daemon::start(
        &[
            "serve",
            "--config",
            path.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    (emu, dir, daemon)
}

/// Runs `program script` with the gateway's address, asserting it passes and prints `done`.
async fn run(program: &str, script: &str, daemon: &Daemon, done: &str) {
    let (program, script) = (program.to_owned(), format!("{ROOT}/{script}"));
    let url = daemon.url("/v1");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(program)
            .arg(script)
            .env("GATEWAY_URL", url)
            .env("GATEWAY_KEY", "moat-client-test")
            .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            .output()
    })
    .await
    .unwrap()
    .expect("the interpreter runs (scripts/test.sh installs the clients)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "client check failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains(done), "{stdout}\n{stderr}");
}

/// The tool result of a function-tool turn reached the upstream as a `tool` message answering the
/// call the model made.
fn tool_result_was_forwarded(emu: &Emulator) {
    let followup: Value = emu
        .requests()
        .iter()
        .filter_map(|r| r.json())
        .find(|b| {
            b["messages"]
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m["role"] == "tool"))
        })
        .expect("a tool result was forwarded");
    let messages = followup["messages"].as_array().unwrap();
    let tool = messages.iter().position(|m| m["role"] == "tool").unwrap();
    let call = &messages[tool - 1]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather", "{followup}");
    assert_eq!(messages[tool]["tool_call_id"], call["id"], "{followup}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openai_python_sdk_uses_chat_and_the_responses_api_through_moatd() {
    let (emu, _dir, daemon) = setup().await;
    run(
        "python3",
        "tests/python/responses_sdk_check.py",
        &daemon,
        "openai SDK responses checks passed",
    )
    .await;
    tool_result_was_forwarded(&emu);
    // Every request reached the strict upstream as chat completions, none as `/responses`.
    assert!(emu
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .all(|r| r.path == "/v1/chat/completions"));
    daemon.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openai_node_sdk_uses_chat_and_the_responses_api_through_moatd() {
    let (emu, _dir, daemon) = setup().await;
    run(
        "node",
        "tests/node/openai_check.mjs",
        &daemon,
        "openai node checks passed",
    )
    .await;
    tool_result_was_forwarded(&emu);
    daemon.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn langchain_litellm_and_the_agents_sdk_work_through_moatd() {
    let (emu, _dir, daemon) = setup().await;
    run(
        "python3",
        "tests/python/clients_check.py",
        &daemon,
        "client checks passed",
    )
    .await;
    // The agent's tool ran and its result went back to the model.
    tool_result_was_forwarded(&emu);
    daemon.stop();
}
