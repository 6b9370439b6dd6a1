//! The real `openai` Python SDK against moatd: the same answers as from the upstream directly,
//! streamed and not, with unknown fields preserved, and errors raised as the SDK's own exceptions.
//! The SDK is installed by the test command (`scripts/test.sh`); without it this test fails, it does
//! not skip.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use common::*;
use moat_testkit::{Emulator, EmulatorOptions};

#[tokio::test(flavor = "multi_thread")]
async fn openai_python_sdk_round_trips_through_moatd() {
    let emu = Emulator::start(EmulatorOptions {
        api_key: Some("sk-emu-provider".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        &dir,
        &format!(
            "[server]\napi_keys = [\"moat-sdk-test\"]\n[[providers]]\nname = \"emu\"\nkind = \"openai\"\nbase_url = \"{}\"\napi_key = \"sk-emu-provider\"\nmax_retries = 0\n",
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
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/python/openai_sdk_check.py"
    );
    let python = std::env::var("MOAT_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = tokio::task::spawn_blocking({
        let gateway = daemon.url("/v1");
        let direct = emu.base_url();
        move || {
            Command::new(python)
                .arg(script)
                .env("DIRECT_URL", direct)
                .env("DIRECT_KEY", "sk-emu-provider")
                .env("GATEWAY_URL", gateway)
                .env("GATEWAY_KEY", "moat-sdk-test")
                .output()
        }
    })
    .await
    .unwrap()
    .expect("python3 runs (scripts/test.sh installs the openai SDK)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "SDK check failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("openai SDK checks passed"), "{stdout}");
    daemon.stop();
}
