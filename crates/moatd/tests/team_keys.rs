//! A team's own provider key through the real binary: `moatd teams set-key` reads it from stdin,
//! stores it sealed, and the running gateway sends the team's requests with it. Plus the
//! `check-config` warning for a remote provider without a cache partition.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use moat_testkit::{Emulator, EmulatorOptions};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn teams_set_key_is_used_for_that_teams_requests() {
    let emu = Emulator::start(EmulatorOptions {
        api_key: Some("sk-team-OWN-55".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let cfg = data.path().join("moatd.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[providers]]\nname = \"emu\"\nkind = \"openai\"\nbase_url = \"{}\"\nmax_retries = 0\n",
            emu.base_url()
        ),
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap();
    let (_, err, ok) = moatd_cmd(
        data.path(),
        &["teams", "create", "--config", cfg, "--name", "red"],
        None,
    );
    assert!(ok, "{err}");
    let (key, err, ok) = moatd_cmd(
        data.path(),
        &["keys", "create", "--config", cfg, "--name", "r", "--team", "red"],
        None,
    );
    assert!(ok, "{err}");
    let key = key.trim().to_string();
    let daemon = Daemon::start_in(
        data.path(),
        &["serve", "--config", cfg, "--listen", "127.0.0.1:0"],
        &[("MOAT_LOG", "trace")],
    );
    let ask = || {
        client()
            .post(daemon.url("/v1/chat/completions"))
            .bearer_auth(&key)
            .json(&json!({"model": "emu/tiny", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
    };
    assert_eq!(
        ask().await.unwrap().status(),
        401,
        "no key yet: the provider refuses"
    );

    let (_, err, ok) = moatd_cmd(
        data.path(),
        &["teams", "set-key", "--config", cfg, "red", "emu"],
        Some("sk-team-OWN-55\n"),
    );
    assert!(ok, "{err}");
    assert!(!err.contains("sk-team-OWN-55"), "{err}");
    assert_eq!(ask().await.unwrap().status(), 200, "picked up without a restart");
    let db = std::fs::read(data.path().join("moat/moatd.db")).unwrap();
    let needle = b"sk-team-OWN-55";
    assert!(
        !db.windows(needle.len()).any(|w| w == needle),
        "stored in the clear"
    );

    let (_, err, ok) = moatd_cmd(
        data.path(),
        &["teams", "set-key", "--config", cfg, "nope", "emu"],
        Some("k\n"),
    );
    assert!(!ok && err.contains("not found"), "{err}");
    let (_, err, ok) = moatd_cmd(
        data.path(),
        &["teams", "set-key", "--config", cfg, "red", "emu"],
        Some(""),
    );
    assert!(!ok && err.contains("no key"), "{err}");

    let (_, err, ok) = moatd_cmd(
        data.path(),
        &["teams", "remove-key", "--config", cfg, "red", "emu"],
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(ask().await.unwrap().status(), 401);
    let log = daemon.stop();
    assert!(!log.contains("OWN-55"), "log leaked the team's key");
}

#[test]
fn check_config_warns_about_a_remote_provider_without_a_partition() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        &dir,
        "[[providers]]\nname = \"cloud\"\nkind = \"openai\"\nbase_url = \"https://api.example.com/v1\"\ncache_partition = \"none\"\n",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_moatd"))
        .args(["check-config", path.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("warning: provider `cloud`: cache_partition = \"none\""),
        "{stdout}"
    );
    assert!(stdout.contains("cache partition: none"), "{stdout}");
}
