//! Keys: `moat login` from stdin into a 0600 file (no keyring here: MOAT_KEYRING=off), a key file that
//! others can read is refused, and a profile's key_command.

use std::os::unix::fs::PermissionsExt;

use crate::{run, Harness, KEY};

fn no_key_moat(h: &Harness) -> std::process::Command {
    let mut cmd = h.bare();
    cmd.args(["--base-url", &h.emu.base_url(), "--cacert"])
        .arg(&h.ca_file);
    cmd
}

#[test]
fn login_from_stdin_stores_a_0600_file_that_is_then_used() {
    let h = Harness::tls();
    let out = run(h.bare(), &["login"], Some(&format!("  {KEY}\n")));
    out.ok();
    assert!(out.stdout.contains("key file"), "{}", out.stdout);
    assert!(
        !out.stdout.contains(KEY) && !out.stderr.contains(KEY),
        "the key is never echoed"
    );
    let file = h.path("config").join("moat").join("keys").join("default");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), KEY);
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let dir = file.parent().unwrap();
    assert_eq!(
        std::fs::metadata(dir).unwrap().permissions().mode() & 0o777,
        0o700
    );

    let out = run(no_key_moat(&h), &["-m", "tiny", "hi"], None);
    out.ok();
    assert_eq!(
        h.requests()[0].headers["authorization"],
        format!("Bearer {KEY}").as_str()
    );
}

#[test]
fn login_per_profile_and_empty_key_refused() {
    let h = Harness::tls();
    h.config("[profiles.work]\nmodel = \"tiny\"\n");
    run(h.bare(), &["login", "--profile", "work"], Some("sk-work\n")).ok();
    assert!(h.path("config").join("moat/keys/work").exists());
    let out = run(h.bare(), &["login"], Some("\n"));
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("empty"), "{}", out.stderr);
    let out = run(h.bare(), &["login", "--profile", "nope"], Some("k\n"));
    assert_eq!(out.code, 2, "{}", out.stderr);
}

#[test]
fn a_key_file_readable_by_others_is_refused() {
    let h = Harness::tls();
    let dir = h.path("config").join("moat").join("keys");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("default");
    std::fs::write(&file, KEY).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = run(no_key_moat(&h), &["-m", "tiny", "hi"], None);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("permissions 0644") && out.stderr.contains("chmod 600"),
        "{}",
        out.stderr
    );
    assert!(h.requests().is_empty(), "nothing is sent with a refused key");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    run(no_key_moat(&h), &["-m", "tiny", "hi"], None).ok();
}

#[test]
fn key_command_supplies_the_key() {
    let h = Harness::tls();
    h.config(&format!("[profiles.default]\nkey_command = \"echo {KEY}\"\n"));
    run(no_key_moat(&h), &["-m", "tiny", "hi"], None).ok();
    assert_eq!(
        h.requests()[0].headers["authorization"],
        format!("Bearer {KEY}").as_str()
    );
}

#[test]
fn without_a_reachable_keyring_login_falls_back_to_the_file() {
    let h = Harness::tls();
    let mut cmd = h.bare();
    // The keyring is allowed, but there is no D-Bus session to find it on (as on a headless server).
    cmd.env_remove("MOAT_KEYRING").env(
        "DBUS_SESSION_BUS_ADDRESS",
        format!("unix:path={}", h.path("no-bus").display()),
    );
    let out = run(cmd, &["login"], Some(KEY));
    out.ok();
    assert!(
        out.stdout.contains("no OS keyring was reachable"),
        "{}",
        out.stdout
    );
    let file = h.path("config").join("moat/keys/default");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
}
