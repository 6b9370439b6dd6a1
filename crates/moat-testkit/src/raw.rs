//! A provider that misbehaves below HTTP, where the emulator (a real HTTP server) cannot: it accepts
//! a connection, reads the request head, then stays silent, answers with bytes that are not HTTP,
//! resets the connection, or sends a response head one byte at a time and never finishes it.
//!
//! ```no_run
//! use moat_testkit::{RawScript, RawUpstream};
//! # async fn demo() -> Result<(), moat_testkit::Error> {
//! let silent = RawUpstream::start(RawScript::Silent).await?;
//! // Point a provider's base_url at `silent.base_url()`: its requests get no answer at all.
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::Error;

/// What the raw upstream does with every connection once it has read a request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawScript {
    /// Never answers; keeps the connection open.
    Silent,
    /// Answers with this many pseudo-random bytes (no status line), then closes.
    Garbage(usize),
    /// Resets the connection (TCP RST) without a byte.
    Reset,
    /// Sends `HTTP/1.1 200 OK\r\n` and then header bytes one every `Duration`, never ending the head.
    SlowHead(Duration),
}

/// A running raw upstream on `127.0.0.1`; stops when dropped.
pub struct RawUpstream {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl RawUpstream {
    pub async fn start(script: RawScript) -> Result<RawUpstream, Error> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| Error::io("binding the raw upstream", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io("reading the bound address", e))?;
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(play(stream, script.clone()));
            }
        });
        Ok(RawUpstream { addr, accepted, task })
    }

    /// The OpenAI-style base URL, ending in `/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for RawUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads until the end of the request head (the body, if any, is left unread).
async fn read_head(stream: &mut TcpStream) -> bool {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
        if seen.len() > 1 << 20 {
            return false;
        }
    }
    true
}

async fn play(mut stream: TcpStream, script: RawScript) {
    if !read_head(&mut stream).await {
        return;
    }
    match script {
        RawScript::Silent => {
            // Hold the connection until the peer closes it.
            let mut buf = [0u8; 4096];
            while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
        }
        RawScript::Garbage(len) => {
            let mut state = 0x2545_F491_4F6C_DD1Du64;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state >> 32) as u8
                })
                .collect();
            let _ = stream.write_all(&bytes).await;
            let _ = stream.shutdown().await;
        }
        RawScript::Reset => {
            #[expect(deprecated, reason = "a zero linger resets at once on drop; it never blocks")]
            let _ = stream.set_linger(Some(Duration::ZERO));
            drop(stream);
        }
        RawScript::SlowHead(every) => {
            if stream.write_all(b"HTTP/1.1 200 OK\r\n").await.is_err() {
                return;
            }
            loop {
                tokio::time::sleep(every).await;
                if stream.write_all(b"x").await.is_err() {
                    return;
                }
            }
        }
    }
}
