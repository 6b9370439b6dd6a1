//! The HTTP/1.1 client side of the harness: one keep-alive connection per handle, opened with
//! TCP_NODELAY, plus the small probes used to wait for a server to come up.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// One open HTTP/1.1 connection; requests on it go one at a time, like a pooled client's.
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
}

impl Connection {
    /// Connects to `addr` and completes the (trivial) HTTP/1.1 handshake.
    pub async fn open(addr: SocketAddr) -> anyhow::Result<Connection> {
        let tcp = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        // Small requests must not wait for Nagle's algorithm; every real client sets this too.
        tcp.set_nodelay(true).context("setting TCP_NODELAY")?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .context("HTTP/1.1 handshake")?;
        // The connection task drives the socket; it ends when the sender is dropped or the peer closes.
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Connection { sender })
    }

    /// True when this connection can no longer carry requests and must be replaced.
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// Sends one POST and reads the whole response body; returns the status and when the first body
    /// bytes arrived (for a stream, the first chunk: the time to first byte a user sees).
    pub async fn post(&mut self, target: &Target, body: Bytes) -> anyhow::Result<(StatusCode, Instant)> {
        self.sender.ready().await.context("waiting for the connection")?;
        let req = Request::builder()
            .method(Method::POST)
            .uri(target.path.as_str())
            .header(hyper::header::HOST, target.host.as_str())
            .header(hyper::header::CONTENT_TYPE, "application/json");
        let req = target.decorate(req);
        let req = req.body(Full::new(body)).context("building the request")?;
        let resp = self
            .sender
            .send_request(req)
            .await
            .context("sending the request")?;
        let status = resp.status();
        let mut body = resp.into_body();
        let mut first = None;
        while let Some(frame) = body.frame().await {
            let frame = frame.context("reading the response body")?;
            if first.is_none() && frame.data_ref().is_some_and(|d| !d.is_empty()) {
                first = Some(Instant::now());
            }
        }
        Ok((status, first.unwrap_or_else(Instant::now)))
    }
}

/// Where requests go: the socket address, and what the request line and `Host` header say.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: String,
    pub path: String,
    /// `Authorization` header value, e.g. a moatd virtual key (`Bearer moat-…`).
    pub auth: Option<String>,
    /// Further headers a gateway needs to route (Portkey's `x-portkey-provider`, …).
    pub headers: Vec<(&'static str, String)>,
}

impl Target {
    pub fn new(addr: SocketAddr, path: &str) -> Target {
        Target {
            addr,
            host: addr.to_string(),
            path: path.to_owned(),
            auth: None,
            headers: Vec::new(),
        }
    }

    /// Adds the target's authorization and routing headers.
    fn decorate(&self, mut req: hyper::http::request::Builder) -> hyper::http::request::Builder {
        if let Some(auth) = &self.auth {
            req = req.header(hyper::header::AUTHORIZATION, auth.as_str());
        }
        for (name, value) in &self.headers {
            req = req.header(*name, value.as_str());
        }
        req
    }

    pub fn url(&self) -> String {
        format!("http://{}{}", self.host, self.path)
    }
}

/// A chat request body for `model`, the same shape for the direct and the gateway path.
pub fn chat_body(model: &str) -> Bytes {
    let body = serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": "hello"}],
        "max_tokens": 8,
    });
    Bytes::from(body.to_string())
}

/// One request on a fresh connection; returns the status and the body (for error messages).
pub async fn probe(target: &Target, body: Option<Bytes>) -> anyhow::Result<(StatusCode, Bytes)> {
    let tcp = TcpStream::connect(target.addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let builder = Request::builder()
        .uri(target.path.as_str())
        .header(hyper::header::HOST, target.host.as_str());
    let builder = target.decorate(builder);
    let req = match body {
        Some(body) => builder
            .method(Method::POST)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))?,
        None => builder.method(Method::GET).body(Full::new(Bytes::new()))?,
    };
    let resp = sender.send_request(req).await?;
    let status = resp.status();
    let bytes = resp.into_body().collect().await?.to_bytes();
    Ok((status, bytes))
}

/// Retries `probe` until it answers 200 or `limit` passes; `alive` lets the caller give up early
/// (e.g. when the server process has exited).
pub async fn wait_ready(
    target: &Target,
    body: Option<Bytes>,
    limit: Duration,
    mut alive: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    let mut last = String::from("no attempt");
    while Instant::now() < deadline {
        alive()?;
        match probe(target, body.clone()).await {
            Ok((StatusCode::OK, _)) => return Ok(()),
            Ok((status, bytes)) => last = format!("HTTP {status}: {}", String::from_utf8_lossy(&bytes)),
            Err(e) => last = format!("{e:#}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!(
        "{} did not answer 200 within {limit:?} (last: {last})",
        target.url()
    )
}
