//! `moat audit-cache` end to end: the real binary, through a real moatd (in-process, port 0), in
//! front of an emulator that simulates a provider prefix cache (hits 5 ms, misses 40 ms to the first
//! byte) keyed by whatever partition member each request carries. Two virtual keys on different
//! teams: with moatd's partitioning off the cache is shared and the audit must say so (p < 1e-8);
//! with it on (the default) the audit must find no sharing (p > 0.01).

use std::path::{Path, PathBuf};

use moat_gateway::admin::{self, NewKey, NewTeam};
use moat_gateway::config::Config;
use moat_gateway::{gateway_secret, server, Gateway};
use moat_store::SqliteStore;
use moat_testkit::{EmulatorOptions, PrefixCacheOptions};

use crate::{run, Harness, Run};

/// 40 trials of each kind: with fully separated samples the exact p-value is 1/C(80,40) ≈ 9e-24,
/// far below the 1e-8 threshold even if a few timings overlap on a loaded machine.
const TRIALS: &str = "40";

fn cached_emulator() -> Harness {
    Harness::with(
        EmulatorOptions {
            prefix_cache: Some(PrefixCacheOptions::default()),
            ..EmulatorOptions::default()
        },
        false,
    )
}

/// Starts moatd on the harness runtime with the emulator as provider `emu` (extra provider lines
/// appended), makes two teams with one key each, and writes the keys to 0600 files.
fn moatd(h: &Harness, extra: &str, tag: &str) -> (String, PathBuf, PathBuf) {
    let data = h.path(&format!("moatd-{tag}"));
    std::fs::create_dir_all(&data).unwrap();
    let toml = format!(
        "[store]\nurl = \"sqlite://{}\"\nsecret_file = \"{}\"\n\n[audit]\nenabled = false\n\n\
         [[providers]]\nname = \"emu\"\nkind = \"openai\"\nbase_url = \"{}\"\napi_key = \"{}\"\n{extra}",
        data.join("moatd.db").display(),
        data.join("secret").display(),
        h.emu.base_url(),
        crate::KEY,
    );
    let config = Config::from_toml(&toml, "test").unwrap();
    let store = SqliteStore::open(&config.store.url).unwrap();
    let secret = gateway_secret(&config).unwrap();
    let mut files = Vec::new();
    for team in ["alpha", "beta"] {
        let new_team = NewTeam {
            name: team.into(),
            ..Default::default()
        };
        admin::create_team(&store, &new_team, 0).unwrap();
        let new_key = NewKey {
            name: format!("{team}-key"),
            team: Some(team.into()),
            ..Default::default()
        };
        let issued = admin::create_key(&store, &secret, &new_key, 0).unwrap();
        let file = data.join(format!("{team}.key"));
        write_private(&file, &issued.key);
        files.push(file);
    }
    drop(store);
    let gateway = Gateway::open(&config).unwrap();
    let (listener, addr) = h.rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        (listener, addr)
    });
    h.rt.spawn(async move {
        let _ = server::serve(listener, gateway, std::future::pending()).await;
    });
    let key_b = files.pop().unwrap();
    let key_a = files.pop().unwrap();
    (format!("http://{addr}/v1"), key_a, key_b)
}

fn write_private(path: &Path, text: &str) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn audit(h: &Harness, base: &str, key_a: &Path, key_b: &Path, tag: &str) -> Run {
    let mut cmd = h.bare();
    cmd.current_dir(h.path("home"));
    let csv = h.path(&format!("{tag}.csv"));
    let svg = h.path(&format!("{tag}.svg"));
    run(
        cmd,
        &[
            "--base-url",
            base,
            "audit-cache",
            "-m",
            "emu/tiny",
            "--trials",
            TRIALS,
            "--prompt-tokens",
            "200",
            "--key-a-file",
            key_a.to_str().unwrap(),
            "--key-b-file",
            key_b.to_str().unwrap(),
            "--csv",
            csv.to_str().unwrap(),
            "--svg",
            svg.to_str().unwrap(),
        ],
        None,
    )
}

/// The p-value printed on the KS line.
fn p_value(out: &Run) -> f64 {
    let line = out.stdout.lines().find(|l| l.contains("Kolmogorov"));
    assert!(line.is_some(), "no KS line:\n{}\n{}", out.stdout, out.stderr);
    let p = line
        .unwrap()
        .split("p = ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    p.parse().unwrap()
}

#[test]
fn shared_cache_behind_a_gateway_without_partitioning_is_detected() {
    let h = cached_emulator();
    let (base, a, b) = moatd(&h, "cache_partition = \"none\"\n", "off");
    let out = audit(&h, &base, &a, &b, "off");
    eprintln!("{}", out.stdout);
    assert_eq!(out.code, 3, "exit 3 = shared\n{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("verdict: shared"), "{}", out.stdout);
    let p = p_value(&out);
    assert!(p < 1e-8, "p = {p}");
    assert!(
        out.stdout.contains("reported cached_tokens > 0 on"),
        "the metadata check: {}",
        out.stdout
    );
    let csv = std::fs::read_to_string(h.path("off.csv")).unwrap();
    assert_eq!(csv.lines().count(), 81, "header + 80 samples");
    assert_eq!(csv.lines().filter(|l| l.contains(",hit,")).count(), 40);
    let svg = std::fs::read_to_string(h.path("off.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("miss trials (n=40)"));
    // The emulator saw no partition member: moatd added none.
    let chats = h.chats();
    assert_eq!(chats.len(), 160);
    assert!(chats.iter().all(|c| c.get("cache_salt").is_none()));
}

#[test]
fn partitioned_gateway_shows_no_sharing() {
    let h = cached_emulator();
    let (base, a, b) = moatd(&h, "", "on");
    let mut out = audit(&h, &base, &a, &b, "on");
    // Under the null hypothesis the p-value is uniform, so one run in a hundred lands at p <= 0.01
    // by chance ("inconclusive", exit 4). A second, independent run makes that 1 in 10 000; a shared
    // cache would give p < 1e-8 every time, which no rerun can hide.
    if out.code == 4 {
        out = audit(&h, &base, &a, &b, "on-again");
    }
    eprintln!("{}", out.stdout);
    assert_eq!(out.code, 0, "exit 0 = isolated\n{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("verdict: isolated"), "{}", out.stdout);
    assert!(p_value(&out) > 0.01);
    assert!(
        !out.stdout.contains("reported cached_tokens > 0"),
        "{}",
        out.stdout
    );
    let salts: std::collections::HashSet<String> = h
        .chats()
        .iter()
        .map(|c| c["cache_salt"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(salts.len(), 2, "one partition per team");
}

#[test]
fn keys_never_come_from_argv_and_bad_key_files_are_refused() {
    let h = cached_emulator();
    let base = h.emu.base_url();
    // Cross-key audit without key B: usage error, nothing sent.
    let out = run(
        h.bare(),
        &["--base-url", &base, "audit-cache", "-m", "tiny", "--trials", "2"],
        None,
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("MOAT_AUDIT_KEY_B"), "{}", out.stderr);
    // A key file others can read is refused, like ssh refuses such a private key.
    let loose = h.path("loose.key");
    std::fs::write(&loose, "sk-b").unwrap();
    let out = run(
        h.bare(),
        &[
            "--base-url",
            &base,
            "audit-cache",
            "-m",
            "tiny",
            "--key-b-file",
            loose.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("chmod 600"), "{}", out.stderr);
    assert!(h.chats().is_empty());
    // Same key twice at the cross level is a mistake; --level key is the way to audit one key.
    let mut cmd = h.bare();
    cmd.env("MOAT_AUDIT_KEY_A", crate::KEY)
        .env("MOAT_AUDIT_KEY_B", crate::KEY);
    let out = run(cmd, &["--base-url", &base, "audit-cache", "-m", "tiny"], None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--level key"), "{}", out.stderr);
}

#[test]
fn per_key_level_finds_a_keys_own_cache_directly_at_the_provider() {
    // Straight at the emulator (no gateway), one key: its own repeated prefixes hit.
    let h = cached_emulator();
    let mut cmd = h.bare();
    cmd.env("MOAT_AUDIT_KEY_A", crate::KEY);
    let csv = h.path("key.csv");
    let svg = h.path("key.svg");
    let out = run(
        cmd,
        &[
            "--base-url",
            &h.emu.base_url(),
            "audit-cache",
            "-m",
            "tiny",
            "--level",
            "key",
            "--trials",
            "20",
            "--prompt-tokens",
            "100",
            "--csv",
            csv.to_str().unwrap(),
            "--svg",
            svg.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("this key's own requests share a prompt cache"),
        "{}",
        out.stdout
    );
}
