//! The admin console in a real browser: headless Chromium (Debian's `chromium`) driven by
//! `playwright-core` logs in with an admin key, creates a key, uses it through the API, sees its spend
//! in the chart, revokes it and signs out, with the Content-Security-Policy locked to `'self'` and no
//! script error. Every change it made is an audit record naming the admin key.
//!
//! `scripts/test.sh` installs Chromium (apt) and the npm packages (in `tests/node`); without them this
//! test fails, it does not skip. `MOAT_CONSOLE_SCREENSHOTS=docs/console` keeps the screenshots there.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;
use moat_testkit::{Emulator, EmulatorOptions};
use serde_json::{json, Value};

const ADMIN_KEY: &str = "console-admin-test-key-4411";

/// `tests/node`, where `scripts/test.sh` installs the npm packages the browser and SSO tests use.
pub fn node_dir() -> PathBuf {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/node"));
    assert!(
        dir.join("node_modules/playwright-core").exists() && dir.join("node_modules/oidc-provider").exists(),
        "npm packages missing in {}: run scripts/test.sh (it runs `npm ci` there)",
        dir.display()
    );
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_manages_keys_and_sees_spend_in_the_console() {
    let node = node_dir();
    let chromium = std::env::var("MOAT_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "{chromium} missing: scripts/test.sh installs Debian's chromium"
    );
    let models =
        json!([{"id": "tiny", "object": "model", "pricing": {"prompt": "0.001", "completion": "0.002"}}]);
    let emu = Emulator::start(EmulatorOptions {
        models: Some(models),
        ..Default::default()
    })
    .await
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let cfg = write_config(
        &data,
        &format!(
            "[server]\nadmin_keys = [\"{ADMIN_KEY}\"]\n[[providers]]\nname = \"emu\"\nkind = \"openai\"\nbase_url = \"{}\"\nhealth_check = false\n",
            emu.base_url()
        ),
    );
    let cfg = cfg.to_str().unwrap();
    let (_, err, ok) = moatd_cmd(
        data.path(),
        &["teams", "create", "--config", cfg, "--name", "research"],
        None,
    );
    assert!(ok, "{err}");
    let daemon = Daemon::start_in(
        data.path(),
        &["serve", "--config", cfg, "--listen", "127.0.0.1:0"],
        &[],
    );

    // The page is served with a CSP that allows this origin's scripts only.
    let page = client().get(daemon.url("/ui")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "no inline script or style"
    );

    let shots = match std::env::var("MOAT_CONSOLE_SCREENSHOTS") {
        Ok(dir) => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join(dir),
        Err(_) => data.path().join("shots"),
    };
    std::fs::create_dir_all(&shots).unwrap();
    let out = tokio::task::spawn_blocking({
        let url = daemon.url("");
        let shots = shots.clone();
        move || {
            Command::new("node")
                .arg("console_check.mjs")
                .current_dir(&node)
                .env("MOAT_URL", url)
                .env("ADMIN_KEY", ADMIN_KEY)
                .env("SCREENSHOT_DIR", shots)
                .env("CHROMIUM", chromium)
                .output()
        }
    })
    .await
    .unwrap()
    .expect("node runs (scripts/test.sh needs node and npm)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "browser check failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("console checks passed"), "{stdout}");
    for name in [
        "login",
        "usage",
        "keys",
        "teams",
        "providers",
        "requests",
        "audit",
        "usage-phone",
        "keys-phone",
    ] {
        assert!(shots.join(format!("{name}.png")).exists(), "screenshot {name}");
    }
    daemon.stop();

    // Every change made in the console is an audit record naming who made it.
    let (export, err, ok) = moatd_cmd(data.path(), &["audit", "export", "--config", cfg], None);
    assert!(ok, "{err}");
    let actions: Vec<Value> = export
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| {
            v["record"]["kind"] == "admin"
                || v["record"]["Admin"].is_object()
                || v["record"]["action"].is_string()
        })
        .collect();
    let find = |action: &str| {
        actions
            .iter()
            .find(|v| v.to_string().contains(&format!("\"{action}\"")))
            .unwrap_or_else(|| panic!("no {action} record in:\n{export}"))
            .to_string()
    };
    for action in [
        "console.login",
        "key.create",
        "key.revoke",
        "audit.verify",
        "console.logout",
    ] {
        assert!(
            find(action).contains("admin-key:"),
            "{action} names the admin key"
        );
    }
    assert!(
        !export.contains(ADMIN_KEY),
        "the admin key itself is never recorded"
    );
}
