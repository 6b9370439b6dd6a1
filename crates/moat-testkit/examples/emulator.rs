//! The upstream emulator as its own process, for benchmarks that drive real clients against it.
//!
//! ```text
//! cargo run --release -p moat-testkit --example emulator -- --listen 127.0.0.1:0 --tls-dir /tmp/emu
//! ```
//!
//! With `--tls-dir DIR` it makes a throwaway CA, writes its certificate to `DIR/ca.pem` (for
//! `SSL_CERT_FILE`, `--cacert`, `REQUESTS_CA_BUNDLE`) and serves HTTPS for `localhost` and
//! `127.0.0.1`; without it, plain HTTP. The first line on stdout is `listening on <base URL>`, so a
//! script can bind port 0 and read the port back. `--strict` refuses request members the wire does not
//! define (as strict OpenAI-compatible servers do). Runs until killed or interrupted.

use std::error::Error;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use moat_testkit::{serve, EmulatorOptions, TestCa};

fn usage() -> String {
    "usage: emulator [--listen ADDR] [--tls-dir DIR] [--strict]".to_owned()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut tls_dir: Option<PathBuf> = None;
    let mut strict = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next().ok_or_else(usage)?.parse()?,
            "--tls-dir" => tls_dir = Some(PathBuf::from(args.next().ok_or_else(usage)?)),
            // Refuse request members the wire does not define, as strict servers do.
            "--strict" => strict = true,
            _ => return Err(usage().into()),
        }
    }
    let mut opts = EmulatorOptions {
        strict,
        ..EmulatorOptions::default()
    };
    if let Some(dir) = &tls_dir {
        std::fs::create_dir_all(dir)?;
        let ca = TestCa::new("moat emulator CA")?;
        ca.write_cert_pem(&dir.join("ca.pem"))?;
        opts.tls = Some(ca.issue(&["localhost", "127.0.0.1"])?);
    }
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let port = listener.local_addr()?.port();
    let base = match tls_dir {
        Some(_) => format!("https://localhost:{port}/v1"),
        None => format!("http://127.0.0.1:{port}/v1"),
    };
    let mut out = std::io::stdout();
    writeln!(out, "listening on {base}")?;
    out.flush()?;
    serve(listener, opts, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
