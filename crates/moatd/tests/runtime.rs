//! The two ways moatd schedules its work, through the real binary: one event loop per core (the
//! default: `SO_REUSEPORT` listeners, an upstream pool per core) and one shared work-stealing
//! runtime. Both answer every request of a concurrent burst, streamed and whole.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use moat_testkit::{Emulator, EmulatorOptions};
use serde_json::{json, Value};

async fn burst_through(args: &[&str]) -> String {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("moatd.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[providers]]\nname = \"emu\"\nkind = \"openai\"\nbase_url = \"{}\"\n",
            emu.base_url()
        ),
    )
    .unwrap();
    let mut all = vec![
        "serve",
        "--config",
        cfg.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ];
    all.extend_from_slice(args);
    let daemon = Daemon::start(&all, &[]);
    let url = daemon.url("/v1/chat/completions");
    // Separate clients, so the connections (and so the cores serving them) differ.
    let requests: Vec<_> = (0..40)
        .map(|i| {
            let url = url.clone();
            tokio::spawn(async move {
                let stream = i % 2 == 0;
                let body = json!({"model": "emu/tiny", "stream": stream, "max_tokens": 8,
                              "messages": [{"role": "user", "content": format!("hello {i}")}]});
                let resp = client().post(&url).json(&body).send().await.unwrap();
                let status = resp.status();
                let text = resp.text().await.unwrap();
                assert_eq!(status, 200, "{text}");
                if stream {
                    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
                } else {
                    let v: Value = serde_json::from_str(&text).unwrap();
                    assert_eq!(v["object"], "chat.completion", "{text}");
                }
            })
        })
        .collect();
    for r in requests {
        r.await.unwrap();
    }
    assert_eq!(emu.completed_streams(), 20);
    daemon.stop()
}

#[tokio::test(flavor = "multi_thread")]
async fn one_event_loop_per_core_answers_a_concurrent_burst() {
    let log = burst_through(&["--threads", "3"]).await;
    assert!(log.contains("one event loop per core"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shared_runtime_answers_a_concurrent_burst() {
    let log = burst_through(&["--runtime", "shared", "--threads", "2"]).await;
    assert!(!log.contains("one event loop per core"), "{log}");
}
