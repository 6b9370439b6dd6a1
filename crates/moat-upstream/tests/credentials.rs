//! Per-request credentials against the testkit's emulated identity services and clouds: Entra ID
//! client credentials (secret and federated token file), a Google service account's JWT exchange,
//! AWS keys from the environment and from a web identity (STS), each signing or authorising real
//! requests the emulator checks; tokens are cached and refreshed once they near expiry.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use moat_testkit::cloud::{service_account_json, AwsAccount, EntraApp};
use moat_testkit::{Emulator, EmulatorOptions};
use moat_upstream::credentials::{
    AwsCredentialSource, EntraCredentials, EntraSecret, OAuth, RequestAuth, ServiceAccount, SigV4,
    TokenClient,
};
use moat_upstream::{Upstream, UpstreamError, UpstreamSettings};

const CHAT: &str = r#"{"messages":[{"role":"user","content":"hi"}]}"#;

async fn emulator(token_lifetime_secs: u64) -> Emulator {
    Emulator::start(EmulatorOptions {
        entra: Some(EntraApp {
            tenant_id: "t1".into(),
            client_id: "c1".into(),
            secret: "s3cret-entra".into(),
        }),
        google_account: Some("sa@p.iam.gserviceaccount.com".into()),
        aws: Some(AwsAccount {
            access_key_id: "AKIDTEST".into(),
            secret_access_key: "aws-s3cret".into(),
            region: "us-east-1".into(),
            web_identity: Some(("arn:aws:iam::1:role/r".into(), "oidc-token".into())),
        }),
        token_lifetime_secs: Some(token_lifetime_secs),
        ..EmulatorOptions::default()
    })
    .await
    .unwrap()
}

fn upstream(base: String, auth: Arc<dyn RequestAuth>) -> Upstream {
    let mut s = UpstreamSettings::new("cloud", base);
    s.request_auth = Some(auth);
    s.retry.max_retries = 0;
    Upstream::new(s).unwrap()
}

async fn post(up: &Upstream, path: &str, body: &str) -> Result<u16, UpstreamError> {
    up.send(path, Some(Bytes::from(body.to_owned())), false, &HeaderMap::new())
        .await
        .map(|r| r.status().as_u16())
}

const AZURE_CHAT: &str = "/deployments/d/chat/completions?api-version=2024-10-21";

#[tokio::test]
async fn entra_tokens_authorise_azure_requests_and_are_cached_until_near_expiry() {
    let emu = emulator(1).await;
    let entra = EntraCredentials::new(
        "t1".into(),
        "c1".into(),
        EntraSecret::ClientSecret("s3cret-entra".into()),
        Some(emu.origin()),
    )
    .with_client(TokenClient::new(None).unwrap());
    let auth = OAuth::new(entra);
    assert!(!auth.describe().contains("s3cret"), "{}", auth.describe());
    let up = upstream(format!("{}/openai", emu.origin()), auth);
    assert_eq!(post(&up, AZURE_CHAT, CHAT).await.unwrap(), 200);
    assert_eq!(post(&up, AZURE_CHAT, CHAT).await.unwrap(), 200);
    assert_eq!(emu.tokens_issued(), 1, "the token is reused while fresh");
    // A one-second token is replaced once most of its life is gone.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(post(&up, AZURE_CHAT, CHAT).await.unwrap(), 200);
    assert_eq!(emu.tokens_issued(), 2);
}

#[tokio::test]
async fn a_refused_client_secret_is_a_credential_error_that_names_no_secret() {
    let emu = emulator(3600).await;
    let entra = EntraCredentials::new(
        "t1".into(),
        "c1".into(),
        EntraSecret::ClientSecret("wrong-secret-value".into()),
        Some(emu.origin()),
    );
    let up = upstream(format!("{}/openai", emu.origin()), OAuth::new(entra));
    let err = post(&up, AZURE_CHAT, CHAT).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, UpstreamError::Credential { .. }), "{text}");
    assert!(
        text.contains("invalid_client") && !text.contains("wrong-secret-value"),
        "{text}"
    );
}

#[tokio::test]
async fn entra_federated_token_file_and_environment() {
    let emu = emulator(3600).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "s3cret-entra\n").unwrap();
    let env: HashMap<&str, String> = HashMap::from([
        ("AZURE_TENANT_ID", "t1".into()),
        ("AZURE_CLIENT_ID", "c1".into()),
        ("AZURE_FEDERATED_TOKEN_FILE", file.display().to_string()),
        ("AZURE_AUTHORITY_HOST", emu.origin()),
    ]);
    let entra = EntraCredentials::from_env(|k| env.get(k).cloned()).unwrap();
    assert!(entra.secret == EntraSecret::FederatedTokenFile(file.clone()));
    let auth = OAuth::new(entra);
    assert!(auth.describe().contains("environment"), "{}", auth.describe());
    let up = upstream(format!("{}/openai", emu.origin()), auth);
    assert_eq!(post(&up, AZURE_CHAT, CHAT).await.unwrap(), 200);
    assert!(EntraCredentials::from_env(|_| None).is_none());
}

#[tokio::test]
async fn a_service_account_jwt_is_exchanged_for_a_vertex_token() {
    let emu = emulator(3600).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sa.json");
    std::fs::write(
        &path,
        service_account_json("sa@p.iam.gserviceaccount.com", &format!("{}/token", emu.origin())),
    )
    .unwrap();
    let sa = ServiceAccount::from_file(&path).unwrap();
    let auth = OAuth::new(sa);
    let described = auth.describe();
    assert!(described.contains("sa@p.iam.gserviceaccount.com") && !described.contains("PRIVATE KEY"));
    let up = upstream(emu.origin(), auth);
    let body = r#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}"#;
    let path = "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-test:generateContent";
    assert_eq!(post(&up, path, body).await.unwrap(), 200);
    assert_eq!(post(&up, path, body).await.unwrap(), 200);
    assert_eq!(emu.tokens_issued(), 1);
    // A key file that is not one is refused at load, naming the file and never its content.
    std::fs::write(dir.path().join("bad.json"), r#"{"type":"service_account","client_email":"x","private_key":"not a key","token_uri":"http://x/token"}"#).unwrap();
    let err = ServiceAccount::from_file(&dir.path().join("bad.json"))
        .unwrap_err()
        .0;
    assert!(err.contains("private_key") && !err.contains("not a key"), "{err}");
}

const CONVERSE: &str = "/model/anthropic.claude-test-v1%3A0/converse";
const CONVERSE_BODY: &str = r#"{"messages":[{"role":"user","content":[{"text":"hi"}]}]}"#;

fn env(pairs: Vec<(&'static str, String)>) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<&str, String> = pairs.into_iter().collect();
    move |k| map.get(k).cloned()
}

#[tokio::test]
async fn sigv4_signatures_from_environment_keys_are_accepted_and_bad_ones_refused() {
    let emu = emulator(3600).await;
    let source = AwsCredentialSource::detect(
        env(vec![
            ("AWS_ACCESS_KEY_ID", "AKIDTEST".into()),
            ("AWS_SECRET_ACCESS_KEY", "aws-s3cret".into()),
        ]),
        None,
        None,
        "us-east-1",
    )
    .unwrap();
    let signer = SigV4::new(source, "us-east-1", "bedrock", TokenClient::new(None).unwrap());
    assert!(!signer.describe().contains("aws-s3cret"));
    let up = upstream(emu.origin(), signer);
    assert_eq!(post(&up, CONVERSE, CONVERSE_BODY).await.unwrap(), 200);
    let wrong = AwsCredentialSource::detect(
        env(vec![
            ("AWS_ACCESS_KEY_ID", "AKIDTEST".into()),
            ("AWS_SECRET_ACCESS_KEY", "not-the-secret".into()),
        ]),
        None,
        None,
        "us-east-1",
    )
    .unwrap();
    let up = upstream(
        emu.origin(),
        SigV4::new(wrong, "us-east-1", "bedrock", TokenClient::new(None).unwrap()),
    );
    match post(&up, CONVERSE, CONVERSE_BODY).await {
        Err(UpstreamError::Status {
            status: 403, body, ..
        }) => {
            assert!(String::from_utf8_lossy(&body).contains("signature"))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_web_identity_is_exchanged_at_sts_for_temporary_keys() {
    let emu = emulator(3600).await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "oidc-token").unwrap();
    let source = AwsCredentialSource::detect(
        env(vec![
            ("AWS_WEB_IDENTITY_TOKEN_FILE", token.display().to_string()),
            ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r".into()),
            ("AWS_ENDPOINT_URL_STS", format!("{}/", emu.origin())),
        ]),
        None,
        None,
        "us-east-1",
    )
    .unwrap();
    let up = upstream(
        emu.origin(),
        SigV4::new(source, "us-east-1", "bedrock", TokenClient::new(None).unwrap()),
    );
    assert_eq!(post(&up, CONVERSE, CONVERSE_BODY).await.unwrap(), 200);
    assert_eq!(post(&up, CONVERSE, CONVERSE_BODY).await.unwrap(), 200);
    assert_eq!(
        emu.tokens_issued(),
        1,
        "temporary keys are reused until they near expiry"
    );
    let signed = emu
        .requests()
        .into_iter()
        .rfind(|r| r.path.ends_with("/converse"))
        .unwrap();
    assert!(signed.headers.contains_key("x-amz-security-token"));
}

/// A token endpoint that answers every connection with `response` (or never, when `None`).
async fn raw_server(response: Option<Vec<u8>>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let response = response.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                match response {
                    Some(r) => {
                        let _ = s.write_all(&r).await;
                    }
                    None => std::future::pending::<()>().await,
                }
            });
        }
    });
    format!("http://{addr}")
}

fn entra_at(authority: String) -> Arc<dyn RequestAuth> {
    OAuth::new(EntraCredentials::new(
        "t1".into(),
        "c1".into(),
        EntraSecret::ClientSecret("s".into()),
        Some(authority),
    ))
}

#[tokio::test]
async fn an_oversized_token_answer_is_refused() {
    let body = format!(
        "{{\"access_token\":\"{}\",\"expires_in\":3600}}",
        "x".repeat(70_000)
    );
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let authority = raw_server(Some(response.into_bytes())).await;
    let up = upstream("http://127.0.0.1:9/openai".into(), entra_at(authority));
    let err = post(&up, AZURE_CHAT, CHAT).await.unwrap_err().to_string();
    assert!(err.contains("larger than 65536 bytes"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_token_endpoint_that_never_answers_times_out() {
    let authority = raw_server(None).await;
    let up = upstream("http://127.0.0.1:9/openai".into(), entra_at(authority));
    let err = post(&up, AZURE_CHAT, CHAT).await.unwrap_err().to_string();
    assert!(err.contains("timed out"), "{err}");
}
