//! Upstream TLS always verifies: an untrusted certificate is refused with a reason, a provider's own
//! CA in `ca_file` is trusted, and HTTP/2 is negotiated over TLS.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use moat_testkit::{Emulator, EmulatorOptions, TestCa};
use serde_json::json;

fn chat() -> serde_json::Value {
    json!({"model": "secure/tiny", "messages": [{"role": "user", "content": "over tls"}]})
}

#[tokio::test]
async fn untrusted_certificate_is_refused_and_ca_file_trusts_it() {
    let ca = TestCa::new("moat test CA").unwrap();
    let emu = Emulator::start(EmulatorOptions {
        tls: Some(ca.issue(&["localhost"]).unwrap()),
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(emu.base_url().starts_with("https://localhost:"));

    let gw = gateway(&provider("secure", &emu.base_url())).await;
    let resp = client()
        .post(gw.url("/v1/chat/completions"))
        .json(&chat())
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(resp).await;
    assert_eq!(status, 502);
    assert_eq!(body["error"]["code"], "upstream_tls_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("certificate not trusted"),
        "{body}"
    );
    assert!(
        emu.requests().is_empty(),
        "no request crossed an unverified connection"
    );

    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.pem");
    ca.write_cert_pem(&ca_path).unwrap();
    let toml = format!(
        "{}ca_file = \"{}\"\n",
        provider("secure", &emu.base_url()),
        ca_path.display()
    );
    let gw = gateway(&toml).await;
    let resp = client()
        .post(gw.url("/v1/chat/completions"))
        .json(&chat())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "You said: over tls");
    assert_eq!(
        emu.requests()[0].version,
        http::Version::HTTP_2,
        "h2 negotiated by ALPN"
    );
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused() {
    let ca = TestCa::new("moat test CA").unwrap();
    let emu = Emulator::start(EmulatorOptions {
        tls: Some(ca.issue(&["not-localhost.example"]).unwrap()),
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.pem");
    ca.write_cert_pem(&ca_path).unwrap();
    let toml = format!(
        "{}ca_file = \"{}\"\n",
        provider("secure", &emu.base_url()),
        ca_path.display()
    );
    let gw = gateway(&toml).await;
    let resp = client()
        .post(gw.url("/v1/chat/completions"))
        .json(&chat())
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(resp).await;
    assert_eq!(status, 502);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("name mismatch"),
        "{body}"
    );
}

#[tokio::test]
async fn moatd_serves_https_with_h2_when_configured() {
    let ca = TestCa::new("moatd server CA").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    ca.issue(&["localhost", "127.0.0.1"])
        .unwrap()
        .write_pem(&cert, &key)
        .unwrap();
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let toml = format!(
        "[server]\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n{}",
        cert.display(),
        key.display(),
        provider("local", &emu.base_url())
    );
    let gw = gateway(&toml).await;
    let https = reqwest::Client::builder()
        .tls_backend_preconfigured(ca.client_config().unwrap())
        .no_proxy()
        .build()
        .unwrap();
    let url = format!("https://127.0.0.1:{}/v1/chat/completions", gw.addr.port());
    let resp = https
        .post(url)
        .json(&json!({"model": "local/tiny", "messages": [{"role": "user", "content": "over https"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "You said: over https");
    // A client that does not trust the CA is refused by its own verifier, and plain HTTP gets nothing.
    let plain = client().get(gw.url("/health")).send().await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
}
