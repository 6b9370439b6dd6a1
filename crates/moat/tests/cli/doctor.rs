//! `moat doctor`: the TLS chain, key source, and the spend-limit warning (loud without a limit, silent
//! with a daily one).

use moat_testkit::{EmulatorOptions, TestCa};
use serde_json::json;

use crate::{run, Harness, KEY};

#[test]
fn warns_loudly_for_a_key_without_a_limit() {
    let h = Harness::tls();
    let out = run(h.moat(), &["doctor"], None);
    out.ok();
    let s = &out.stdout;
    assert!(s.contains(&format!("endpoint  {}", h.emu.base_url())), "{s}");
    assert!(s.contains("tls       TLSv1_3, TLS13_"), "{s}");
    assert!(s.contains("chain     0: CN=localhost"), "{s}");
    assert!(s.contains("issued by CN=moat test CA"), "{s}");
    assert!(s.contains("certificate verified"), "{s}");
    assert!(s.contains("+ 1 from"), "{s}");
    assert!(
        s.contains("key       from environment variable MOAT_API_KEY"),
        "{s}"
    );
    assert!(s.contains("limit     no spend limit"), "{s}");
    assert!(s.contains("WARNING: this key has NO SPEND LIMIT"), "{s}");
    assert!(!s.contains(KEY), "doctor never prints the key");
    assert!(h.requests().iter().any(|r| r.path == "/v1/key"));
}

#[test]
fn is_quiet_for_a_key_with_a_daily_limit() {
    let opts = EmulatorOptions {
        key_report: Some(
            json!({"label": "sk-or-v1-abc...", "limit": 10.0, "limit_reset": "daily", "limit_remaining": 9.5, "usage_daily": 0.5}),
        ),
        ..EmulatorOptions::default()
    };
    let h = Harness::with(opts, true);
    let out = run(h.moat(), &["doctor"], None);
    out.ok();
    assert!(
        out.stdout
            .contains("limit     limit $10.0000 per day, $9.5000 left"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("WARNING"), "{}", out.stdout);
}

#[test]
fn shows_the_chain_and_fails_for_an_untrusted_server() {
    let h = Harness::tls();
    let other = TestCa::new("some other CA").unwrap();
    let other_file = h.path("other-ca.pem");
    other.write_cert_pem(&other_file).unwrap();
    let mut cmd = h.bare();
    cmd.env("MOAT_API_KEY", KEY)
        .env("SSL_CERT_FILE", &other_file)
        .args(["--base-url", &h.emu.base_url()]);
    let out = run(cmd, &["doctor"], None);
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("roots from SSL_CERT_FILE="), "{}", out.stdout);
    assert!(out.stdout.contains("issued by CN=moat test CA"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("PROBLEM: certificate not trusted (unknown issuer)"),
        "{}",
        out.stdout
    );
}

#[test]
fn reports_the_key_file_and_its_mode() {
    let h = Harness::tls();
    run(h.bare(), &["login"], Some(KEY)).ok();
    let mut cmd = h.bare();
    cmd.args(["--base-url", &h.emu.base_url(), "--cacert"])
        .arg(&h.ca_file);
    let out = run(cmd, &["doctor"], None);
    out.ok();
    assert!(
        out.stdout.contains("moat/keys/default (mode 0600)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("OS keyring disabled by MOAT_KEYRING"),
        "{}",
        out.stdout
    );
}
