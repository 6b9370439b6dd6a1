//! The enterprise clouds' official SDKs against moat-testkit's emulators of them (and, once moatd
//! speaks those wires, through moatd): the openai SDK's `AzureOpenAI`, boto3's `bedrock-runtime`
//! (whose SigV4 signatures the emulator verifies) and `google-genai` (API key and Vertex AI with a
//! service account). The SDKs are installed by `scripts/test.sh`; without them these tests fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use moat_testkit::cloud::{service_account_json, AwsAccount, EntraApp};
use moat_testkit::{Emulator, EmulatorOptions};

pub const AWS_KEY: &str = "AKIDEMULATOR0001";
pub const AWS_SECRET: &str = "emulator/secret/key";
pub const REGION: &str = "eu-central-1";
pub const SA_EMAIL: &str = "moat-test@moat-test.iam.gserviceaccount.com";

/// An emulator that accepts every cloud's credentials used by these tests.
pub async fn cloud_emulator() -> Emulator {
    Emulator::start(EmulatorOptions {
        api_key: Some("emu-key".into()),
        entra: Some(EntraApp {
            tenant_id: "tenant-1".into(),
            client_id: "client-1".into(),
            secret: "entra-secret".into(),
        }),
        google_account: Some(SA_EMAIL.into()),
        aws: Some(AwsAccount {
            access_key_id: AWS_KEY.into(),
            secret_access_key: AWS_SECRET.into(),
            region: REGION.into(),
            web_identity: Some((
                "arn:aws:iam::123456789012:role/moat".into(),
                "web-identity-jwt".into(),
            )),
        }),
        ..EmulatorOptions::default()
    })
    .await
    .unwrap()
}

async fn run_script(name: &str, env: Vec<(&'static str, String)>, done_marker: &str) {
    let script = format!("{}/../../tests/python/{name}", env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var("MOAT_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .envs(env)
            // boto3 must use only the keys the script gives it, never the machine's.
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN")
            .output()
    })
    .await
    .unwrap()
    .expect("python3 runs (scripts/test.sh installs the SDKs)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "SDK check failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains(done_marker), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn each_clouds_official_sdk_accepts_its_emulator() {
    let emu = cloud_emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let sa = dir.path().join("sa.json");
    std::fs::write(
        &sa,
        service_account_json(SA_EMAIL, &format!("{}/token", emu.origin())),
    )
    .unwrap();
    run_script(
        "cloud_emulator_check.py",
        vec![
            ("EMU_ROOT", emu.origin()),
            ("EMU_KEY", "emu-key".into()),
            ("AZURE_TENANT", "tenant-1".into()),
            ("AZURE_CLIENT", "client-1".into()),
            ("AZURE_SECRET", "entra-secret".into()),
            ("AWS_KEY_EMU", AWS_KEY.into()),
            ("AWS_SECRET_EMU", AWS_SECRET.into()),
            ("AWS_REGION_EMU", REGION.into()),
            ("GOOGLE_SA_FILE", sa.display().to_string()),
        ],
        "cloud emulator checks passed",
    )
    .await;
    // The Vertex call was authorised by a token google-auth obtained with a JWT the emulator
    // verified, and the Entra token by client credentials.
    assert!(emu.tokens_issued() >= 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openai_sdk_through_moatd_reaches_every_cloud_with_its_own_credentials() {
    let emu = cloud_emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let sa = dir.path().join("sa.json");
    std::fs::write(
        &sa,
        service_account_json(SA_EMAIL, &format!("{}/token", emu.origin())),
    )
    .unwrap();
    let root = emu.origin();
    let config = format!(
        "[server]\napi_keys = [\"moat-cloud-test\"]\n\
         [[providers]]\nname = \"azure\"\nkind = \"azure\"\nbase_url = \"{root}\"\nmax_retries = 0\n\
         entra = {{ tenant_id = \"tenant-1\", client_id = \"client-1\", client_secret = \"${{ENTRA_SECRET}}\", authority = \"{root}\" }}\n\
         [[providers]]\nname = \"aws\"\nkind = \"bedrock\"\nregion = \"{REGION}\"\nbase_url = \"{root}\"\nmax_retries = 0\n\
         [[providers]]\nname = \"vertex\"\nkind = \"gemini\"\nproject = \"moat-test\"\nregion = \"us-central1\"\n\
         base_url = \"{root}/v1/projects/moat-test/locations/us-central1/publishers/google\"\n\
         service_account_file = \"{}\"\nmax_retries = 0\n",
        sa.display()
    );
    let path = dir.path().join("moatd.toml");
    std::fs::write(&path, &config).unwrap();
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_moatd"))
        .args(["check-config", path.to_str().unwrap()])
        .env("ENTRA_SECRET", "entra-secret")
        .env("AWS_ACCESS_KEY_ID", AWS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .output()
        .unwrap();
    let explained = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{explained}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        explained.contains("Entra ID client credentials") && explained.contains("SigV4 for `bedrock`"),
        "{explained}"
    );
    assert!(
        explained.contains("Google service account")
            && !explained.contains("entra-secret")
            && !explained.contains(AWS_SECRET),
        "{explained}"
    );
    let daemon = common::Daemon::start(
        &[
            "serve",
            "--config",
            path.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[
            ("ENTRA_SECRET", "entra-secret"),
            ("AWS_ACCESS_KEY_ID", AWS_KEY),
            ("AWS_SECRET_ACCESS_KEY", AWS_SECRET),
        ],
    );
    run_script(
        "cloud_through_moatd_check.py",
        vec![
            ("GATEWAY_ROOT", daemon.url("")),
            ("GATEWAY_KEY", "moat-cloud-test".into()),
            ("EMU_ROOT", emu.origin()),
        ],
        "cloud through moatd checks passed",
    )
    .await;
    // Every Bedrock request was signed (the emulator refuses unsigned ones), and tokens were fetched
    // once per provider and reused.
    let converse = emu
        .requests()
        .iter()
        .filter(|r| r.path.contains("/converse"))
        .count();
    assert!(converse >= 5);
    assert_eq!(
        emu.tokens_issued(),
        2,
        "one Entra token and one Google token, cached"
    );
}
