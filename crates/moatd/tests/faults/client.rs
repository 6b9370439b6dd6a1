//! Hostile clients: never reading (over HTTP/1.1 and over HTTP/2), reading slowly, leaving mid-stream
//! or before the answer, and never finishing their request. Each is cut off (or served, when merely
//! slow) within the configured client time-outs, and what it held is given back.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{chat, within, Case, World, PROVIDER_TIMEOUT, SLACK, WRITE_TIMEOUT};

/// Writes a raw HTTP/1.1 POST of `body` with `key` and returns the connection.
async fn raw_post(addr: &str, key: &str, body: &Value) -> TcpStream {
    let body = body.to_string();
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body.as_bytes()).await.unwrap();
    s
}

/// Reads `s` to its end; the number of bytes, or an error if it is still open after `SLACK`.
async fn drain(mut s: TcpStream, what: &str) -> Result<u64, String> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    let read_all = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return total,
                Ok(n) => total += n as u64,
            }
        }
    };
    tokio::time::timeout(SLACK, read_all)
        .await
        .map_err(|_| format!("{what}: connection still open"))
}

fn flood(gib: u64) -> Value {
    chat(
        "emu/tiny",
        true,
        json!({"flood": "events", "flood_bytes": gib << 30}),
    )
}

pub async fn cases(world: &World) -> Vec<Case> {
    let addr = world.daemon.addr.clone();
    let url = world.url("/v1/chat/completions");
    let mut cases: Vec<Case> = Vec::new();

    // Asks for a gigabyte and reads none of it: cut off after the write time-out. Draining the socket
    // afterwards finds an end after what the kernel buffers held, not a gigabyte.
    let (a, key) = (addr.clone(), world.key("never reads").await);
    cases.push((
        "never reads (HTTP/1.1)",
        Box::pin(async move {
            let s = raw_post(&a, &key, &flood(1)).await;
            tokio::time::sleep(WRITE_TIMEOUT * 4).await;
            let got = drain(s, "never reads").await?;
            (got < 64 << 20)
                .then_some(())
                .ok_or(format!("{got} bytes still came after the write time-out"))
        }),
    ));

    // The same over HTTP/2, where the stall is a closed flow-control window on one stream.
    let (a, key) = (addr.clone(), world.key("never reads h2").await);
    cases.push((
        "never reads (HTTP/2 window)",
        Box::pin(async move {
            let tcp = TcpStream::connect(&a).await.unwrap();
            let (mut send, conn) = hyper::client::conn::http2::handshake(
                hyper_util::rt::TokioExecutor::new(),
                hyper_util::rt::TokioIo::new(tcp),
            )
            .await
            .map_err(|e| e.to_string())?;
            let conn = tokio::spawn(conn);
            let req = http::Request::post(format!("http://{a}/v1/chat/completions"))
                .header("authorization", format!("Bearer {key}"))
                .header("content-type", "application/json")
                .body(http_body_util::Full::new(bytes::Bytes::from(
                    flood(1).to_string(),
                )))
                .unwrap();
            let resp = send.send_request(req).await.map_err(|e| e.to_string())?;
            if resp.status() != 200 {
                return Err(format!("status {}", resp.status()));
            }
            // Hold the response without reading its body; moatd must close the connection.
            let ended = within(WRITE_TIMEOUT, "h2 connection", conn).await;
            drop(resp);
            ended.map(|_| ())
        }),
    ));

    // Reads a little at a time, steadily: slow is served (each read finds data), never cut off.
    let (http, u, key) = (world.http.clone(), url.clone(), world.key("reads slowly").await);
    cases.push((
        "reads slowly",
        Box::pin(async move {
            let mut resp = http
                .post(u)
                .bearer_auth(key)
                .json(&flood(1))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let mut total = 0usize;
            for _ in 0..60 {
                let chunk = within(WRITE_TIMEOUT, "slow read", resp.chunk())
                    .await?
                    .map_err(|e| format!("cut off while reading steadily: {e}"))?
                    .ok_or("stream ended early")?;
                total += chunk.len();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (total > 0).then_some(()).ok_or("no data".to_owned())
        }),
    ));

    // Leaves mid-stream: the stream is dropped after its first chunk; the hold must come back.
    let (http, u, key) = (
        world.http.clone(),
        url.clone(),
        world.key("leaves mid-stream").await,
    );
    cases.push((
        "disconnects mid-stream",
        Box::pin(async move {
            let body = chat("emu/tiny", true, json!({"chunks": 200, "chunk_delay_ms": 100}));
            let mut resp = http
                .post(u)
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            within(PROVIDER_TIMEOUT, "first chunk", resp.chunk())
                .await?
                .map_err(|e| e.to_string())?;
            drop(resp);
            Ok(())
        }),
    ));

    // Leaves before the answer, while the provider is still silent.
    let (a, key) = (addr.clone(), world.key("leaves early").await);
    cases.push((
        "disconnects before the answer",
        Box::pin(async move {
            let s = raw_post(&a, &key, &chat("emu/tiny", true, json!({"hang": true}))).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            drop(s);
            Ok(())
        }),
    ));

    // Announces a body and never sends it: 408 after the body time-out.
    let (a, key) = (addr.clone(), world.key("never sends the body").await);
    cases.push((
        "never sends the body",
        Box::pin(async move {
            let mut s = TcpStream::connect(&a).await.unwrap();
            let head = format!(
                "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Length: 1000\r\n\r\n{{"
            );
            s.write_all(head.as_bytes()).await.unwrap();
            let mut answer = vec![0u8; 12];
            within(Duration::from_secs(2), "408", s.read_exact(&mut answer))
                .await?
                .map_err(|e| e.to_string())?;
            (answer == b"HTTP/1.1 408").then_some(()).ok_or(format!("{:?}", String::from_utf8_lossy(&answer)))
        }),
    ));

    // Connects and sends nothing at all: closed by the header deadline.
    let a = addr.clone();
    cases.push((
        "never sends a request",
        Box::pin(async move {
            let s = TcpStream::connect(&a).await.unwrap();
            within(
                Duration::from_secs(2),
                "silent connection",
                drain(s, "silent connection"),
            )
            .await??;
            Ok(())
        }),
    ));
    cases
}
