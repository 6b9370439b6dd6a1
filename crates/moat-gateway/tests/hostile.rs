//! Hostile clients cannot hold the gateway: silent or half-open connections are closed by one
//! deadline that starts at the accept (TLS handshake included), idle HTTP/2 connections too, admin
//! routes refuse before they read a body (and read it within the same limits as the API), and
//! `/metrics` is not open to the network. Every bound here is a configured time-out plus generous
//! slack, never a performance threshold.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Far above every configured time-out in this file: a failure means "never", not "slow".
const SLACK: Duration = Duration::from_secs(20);

/// Reads until the peer closes (or errs); panics if it is still open after `SLACK`.
async fn closed_by_peer<S: tokio::io::AsyncRead + Unpin>(mut s: S, what: &str) {
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(SLACK, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "{what}: still open after {SLACK:?}");
}

/// Reads an HTTP/1.1 response head and returns its status code.
async fn status_of<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> u16 {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            other => panic!("connection ended before a response head: {other:?}, got {head:?}"),
        }
    }
    let text = String::from_utf8_lossy(&head);
    text.split(' ').nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_connections_cannot_lock_others_out() {
    let gw = gateway("[server]\nmax_connections = 20\nheader_read_timeout_ms = 500\n").await;
    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(TcpStream::connect(gw.addr).await.unwrap());
    }
    // One more that sends half a request head and stops.
    let mut half = TcpStream::connect(gw.addr).await.unwrap();
    half.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // Every slot is held by a connection that sends nothing; the header deadline frees them.
    let health = tokio::time::timeout(SLACK, client().get(gw.url("/health")).send())
        .await
        .expect("/health answered while 20 silent connections were open")
        .unwrap();
    assert_eq!(health.status(), 200);
    for s in silent {
        closed_by_peer(s, "silent connection").await;
    }
    closed_by_peer(half, "half a request head").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_header_deadline_covers_the_tls_handshake_and_what_follows_it() {
    let ca = moat_testkit::TestCa::new("moatd server CA").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    ca.issue(&["localhost"]).unwrap().write_pem(&cert, &key).unwrap();
    let gw = gateway(&format!(
        "[server]\nheader_read_timeout_ms = 500\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n",
        cert.display(),
        key.display()
    ))
    .await;
    // No ClientHello at all.
    closed_by_peer(TcpStream::connect(gw.addr).await.unwrap(), "no handshake").await;
    // A finished handshake, then nothing.
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(ca.client_config().unwrap()));
    let tcp = TcpStream::connect(gw.addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.expect("handshake");
    closed_by_peer(tls, "silent after the handshake").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_http2_connection_is_closed() {
    let gw = gateway("[server]\nheader_read_timeout_ms = 500\n").await;
    let tcp = TcpStream::connect(gw.addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .unwrap();
    let conn = tokio::spawn(conn);
    let req = http::Request::get(gw.url("/health"))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    drop(resp);
    // The client keeps the connection (and answers pings); moatd closes it once idle.
    let ended = tokio::time::timeout(SLACK, conn).await;
    assert!(ended.is_ok(), "idle HTTP/2 connection still open after {SLACK:?}");
}

/// Starts `POST path` announcing a 1 MB body and sends it one byte every 100 ms until the server
/// closes the connection; returns the half to read the answer from.
async fn dribbling_post(gw: &TestGateway, path: &str, auth: Option<&str>) -> tokio::net::tcp::OwnedReadHalf {
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    let auth = auth
        .map(|k| format!("Authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{{"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let (read, mut write) = s.into_split();
    tokio::spawn(async move {
        while write.write_all(b" ").await.is_ok() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    read
}

#[tokio::test(flavor = "multi_thread")]
async fn unauthenticated_admin_requests_are_refused_before_their_body_is_read() {
    let gw = gateway(
        "[server]\nadmin_keys = [\"adm\"]\napi_keys = [\"k\"]\nmax_connections = 20\nbody_read_timeout_ms = 1000\n",
    )
    .await;
    let mut pending = Vec::new();
    for path in [
        "/admin/keys",
        "/admin/teams",
        "/admin/keys/x/limits",
        "/admin/teams/t/provider-keys/p",
    ] {
        for _ in 0..5 {
            pending.push((path, dribbling_post(&gw, path, None).await));
        }
    }
    for (path, mut read) in pending {
        let status = tokio::time::timeout(SLACK, status_of(&mut read))
            .await
            .unwrap_or_else(|_| panic!("{path}: no answer while the body dribbles"));
        // PUT-only routes answer 405 to a POST; either way nothing waited for the body.
        assert!(status == 401 || status == 405, "{path}: {status}");
    }
    let health = tokio::time::timeout(SLACK, client().get(gw.url("/health")).send())
        .await
        .expect("/health answered")
        .unwrap();
    assert_eq!(health.status(), 200);
    // With the admin key, the body is read within the same time limit as the API's: 408, not a hang.
    let mut read = dribbling_post(&gw, "/admin/keys", Some("adm")).await;
    let status = tokio::time::timeout(SLACK, status_of(&mut read))
        .await
        .expect("admin body timed out");
    assert_eq!(status, 408);
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_need_an_admin_key_beyond_loopback() {
    // Beyond loopback without admin keys: refused with the fix, never open.
    let gw = gateway("listen = \"0.0.0.0:7400\"\n[server]\napi_keys = [\"k\"]\nplaintext = true\n").await;
    let (status, body) = error_of(client().get(gw.url("/metrics")).send().await.unwrap()).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "admin_key_required");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("server.admin_keys"));
    // With admin keys: only an admin key reads them.
    let gw = gateway(
        "listen = \"0.0.0.0:7400\"\n[server]\napi_keys = [\"k\"]\nadmin_keys = [\"adm\"]\nplaintext = true\n",
    )
    .await;
    for key in [None, Some("k")] {
        let req = client().get(gw.url("/metrics"));
        let req = match key {
            Some(k) => req.bearer_auth(k),
            None => req,
        };
        assert_eq!(req.send().await.unwrap().status(), 401, "{key:?}");
    }
    let ok = client()
        .get(gw.url("/metrics"))
        .bearer_auth("adm")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    // On loopback with no admin keys, as before: open to the local machine.
    let gw = gateway("").await;
    assert_eq!(
        client().get(gw.url("/metrics")).send().await.unwrap().status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bearer_scheme_is_case_insensitive() {
    let emu = moat_testkit::Emulator::start(Default::default()).await.unwrap();
    let gw = gateway(&format!(
        "[server]\napi_keys = [\"k-static\"]\n{}",
        provider("emu", &emu.base_url())
    ))
    .await;
    let chat = serde_json::json!({"model": "emu/tiny", "messages": [{"role": "user", "content": "hi"}]});
    for scheme in ["Bearer", "bearer", "BEARER", "BeArEr"] {
        let r = client()
            .post(gw.url("/v1/chat/completions"))
            .header("authorization", format!("{scheme} k-static"))
            .json(&chat)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{scheme}");
    }
    let r = client()
        .post(gw.url("/v1/chat/completions"))
        .header("authorization", "Basic k-static")
        .json(&chat)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_whole_answer_past_max_response_bytes_is_a_502() {
    let emu = moat_testkit::Emulator::start(Default::default()).await.unwrap();
    let gw = gateway(&format!(
        "{}max_response_bytes = 100000\n",
        provider("emu", &emu.base_url())
    ))
    .await;
    let chat = serde_json::json!({"model": "emu/tiny", "messages": [{"role": "user", "content": "hi"}],
                                  "emulate": {"content": "x".repeat(200_000)}});
    let resp = client()
        .post(gw.url("/v1/chat/completions"))
        .json(&chat)
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(resp).await;
    assert_eq!(status, 502);
    assert_eq!(body["error"]["code"], "upstream_response_too_large");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_event_past_max_event_bytes_ends_with_an_error_event() {
    let emu = moat_testkit::Emulator::start(Default::default()).await.unwrap();
    let gw = gateway(&format!(
        "[server]\nmax_event_bytes = 4096\n{}",
        provider("emu", &emu.base_url())
    ))
    .await;
    let chat = |emulate: serde_json::Value| {
        serde_json::json!({"model": "emu/tiny", "stream": true, "messages": [{"role": "user", "content": "hi"}],
                           "emulate": emulate})
    };
    // Events under the bound pass, however many there are.
    let ok = gw
        .chat(None, &chat(serde_json::json!({"chunks": 50})))
        .await
        .text()
        .await
        .unwrap();
    assert!(ok.ends_with("data: [DONE]\n\n"), "{ok}");
    // One that never ends is cut at the bound with a clean error event.
    let body = gw
        .chat(
            None,
            &chat(serde_json::json!({"flood": "lines", "flood_bytes": 10_000_000})),
        )
        .await
        .text()
        .await
        .unwrap();
    let last = data_events(&body).pop().unwrap();
    let v: serde_json::Value = serde_json::from_str(&last).unwrap();
    assert_eq!(v["error"]["code"], "upstream_event_too_large", "{last}");
    assert!(
        body.len() < 4096,
        "nothing of the endless event went out: {} bytes",
        body.len()
    );
    eventually(SLACK, || emu.cancelled_streams() == 1).await;
    assert_eq!(
        emu.cancelled_streams(),
        1,
        "the provider's stream was dropped, not read to its end"
    );
}
