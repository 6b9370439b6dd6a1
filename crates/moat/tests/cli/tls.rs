//! TLS and proxies: an untrusted CA and a wrong name are refused with exit 1 and a one-line reason,
//! nothing is sent; `HTTPS_PROXY` is used (a CONNECT proxy in the test sees the tunnel) unless
//! `NO_PROXY` names the host.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use moat_testkit::{EmulatorOptions, TestCa};

use crate::{run, Harness, KEY};

#[test]
fn an_untrusted_ca_is_refused() {
    let h = Harness::tls();
    let other = TestCa::new("some other CA").unwrap();
    let other_file = h.path("other-ca.pem");
    other.write_cert_pem(&other_file).unwrap();
    let mut cmd = h.bare();
    cmd.env("MOAT_API_KEY", KEY)
        .env("SSL_CERT_FILE", &other_file)
        .args(["--base-url", &h.emu.base_url()]);
    let out = run(cmd, &["-m", "tiny", "hi"], None);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr
            .starts_with("moat: TLS error talking to localhost: certificate not trusted (unknown issuer)"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout, "");
    assert!(h.requests().is_empty(), "no request reaches an unverified server");
    // The same server is fine once its CA is trusted through SSL_CERT_FILE.
    let mut cmd = h.bare();
    cmd.env("MOAT_API_KEY", KEY)
        .env("SSL_CERT_FILE", &h.ca_file)
        .args(["--base-url", &h.emu.base_url()]);
    run(cmd, &["-m", "tiny", "hi"], None).ok();
}

#[test]
fn a_certificate_for_another_name_is_refused() {
    let ca = TestCa::new("moat test CA").unwrap();
    let opts = EmulatorOptions {
        tls: Some(ca.issue(&["other.example"]).unwrap()),
        ..EmulatorOptions::default()
    };
    let h = Harness::with(opts, true);
    let ca_file = h.path("right-ca.pem");
    ca.write_cert_pem(&ca_file).unwrap();
    let mut cmd = h.bare();
    cmd.env("MOAT_API_KEY", KEY)
        .args(["--base-url", &h.emu.base_url(), "--cacert"])
        .arg(&ca_file);
    let out = run(cmd, &["-m", "tiny", "hi"], None);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("certificate name mismatch (not valid for localhost)"),
        "{}",
        out.stderr
    );
}

/// A minimal HTTP CONNECT proxy on port 0 that records each tunnel's target.
fn connect_proxy() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let log = log.clone();
            std::thread::spawn(move || tunnel(client, &log));
        }
    });
    (url, seen)
}

fn tunnel(client: TcpStream, log: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut request_line = String::new();
    reader.read_line(&mut request_line).unwrap();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap() == 0 || header == "\r\n" {
            break;
        }
    }
    let target = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    log.lock().unwrap().push(request_line.trim().to_owned());
    let upstream = TcpStream::connect(target.replace("localhost", "127.0.0.1")).unwrap();
    let mut client_w = client.try_clone().unwrap();
    client_w
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .unwrap();
    let mut up_r = upstream.try_clone().unwrap();
    let mut up_w = upstream;
    let down = std::thread::spawn(move || {
        let _ = std::io::copy(&mut up_r, &mut client_w);
    });
    let _ = std::io::copy(&mut reader, &mut up_w);
    let _ = up_w.shutdown(std::net::Shutdown::Write);
    let _ = down.join();
}

#[test]
fn https_proxy_is_used_unless_no_proxy_names_the_host() {
    let h = Harness::tls();
    let (proxy, seen) = connect_proxy();
    let mut cmd = h.moat();
    cmd.env("HTTPS_PROXY", &proxy);
    let out = run(cmd, &["-m", "tiny", "via proxy"], None);
    out.ok();
    assert_eq!(out.stdout, "You said: via proxy\n");
    let port = h.emu.addr().port();
    assert_eq!(
        *seen.lock().unwrap(),
        [format!("CONNECT localhost:{port} HTTP/1.1")]
    );

    let mut cmd = h.moat();
    cmd.env("HTTPS_PROXY", &proxy)
        .env("NO_PROXY", "example.com,localhost");
    run(cmd, &["-m", "tiny", "direct"], None).ok();
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "NO_PROXY=localhost bypasses the proxy"
    );

    let mut cmd = h.moat();
    cmd.env("ALL_PROXY", &proxy);
    run(cmd, &["-m", "tiny", "all"], None).ok();
    assert_eq!(seen.lock().unwrap().len(), 2, "ALL_PROXY is honoured too");
}
