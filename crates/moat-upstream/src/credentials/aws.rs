//! AWS credentials for Bedrock, from the three places AWS's own tools look:
//!
//! 1. the environment: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`;
//! 2. a web-identity token file (`AWS_WEB_IDENTITY_TOKEN_FILE` with `AWS_ROLE_ARN`, as EKS mounts
//!    it), exchanged at STS (`AssumeRoleWithWebIdentity`) for temporary keys, refreshed before they
//!    expire; the token file is re-read at each exchange, since it rotates;
//! 3. a profile in the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, else
//!    `~/.aws/credentials`) or the config file (`AWS_CONFIG_FILE`, else `~/.aws/config`), named by
//!    the provider's `profile`, else `AWS_PROFILE`, else `default`.
//!
//! A configured `profile` skips the environment. STS is `https://sts.{region}.amazonaws.com` unless
//! `AWS_ENDPOINT_URL_STS` (or `AWS_ENDPOINT_URL`) says otherwise.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::entra::read_trimmed;
use super::{CredentialError, TokenClient};

/// One set of keys.
#[derive(Clone)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    /// When temporary keys stop working (`None` for long-term keys).
    pub expires: Option<SystemTime>,
}

impl fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// Where the keys come from.
#[derive(Debug, Clone)]
pub enum AwsCredentialSource {
    /// Read from the environment at start.
    Environment(AwsCredentials),
    /// Static keys of a profile, read at start.
    Profile {
        file: PathBuf,
        profile: String,
        credentials: AwsCredentials,
    },
    /// Temporary keys from STS for a web-identity token.
    WebIdentity {
        token_file: PathBuf,
        role_arn: String,
        session_name: String,
        sts_endpoint: String,
    },
}

impl AwsCredentialSource {
    /// Finds the credentials as AWS's tools do, through `var` (the process environment in moatd, a
    /// map in tests) and `home` (the user's home directory). `profile` is the provider's configured
    /// profile, which skips the environment.
    pub fn detect(
        var: impl Fn(&str) -> Option<String>,
        home: Option<&Path>,
        profile: Option<&str>,
        region: &str,
    ) -> Result<AwsCredentialSource, CredentialError> {
        let var = |k: &str| var(k).filter(|v| !v.is_empty());
        if profile.is_none() {
            if let (Some(id), Some(secret)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
                return Ok(AwsCredentialSource::Environment(AwsCredentials {
                    access_key_id: id,
                    secret_access_key: secret,
                    session_token: var("AWS_SESSION_TOKEN"),
                    expires: None,
                }));
            }
            if let (Some(token_file), Some(role_arn)) =
                (var("AWS_WEB_IDENTITY_TOKEN_FILE"), var("AWS_ROLE_ARN"))
            {
                let sts_endpoint = var("AWS_ENDPOINT_URL_STS")
                    .or_else(|| var("AWS_ENDPOINT_URL"))
                    .unwrap_or_else(|| format!("https://sts.{region}.amazonaws.com"));
                return Ok(AwsCredentialSource::WebIdentity {
                    token_file: PathBuf::from(token_file),
                    role_arn,
                    session_name: var("AWS_ROLE_SESSION_NAME").unwrap_or_else(|| "moatd".to_owned()),
                    sts_endpoint,
                });
            }
        }
        let name = profile
            .map(str::to_owned)
            .or_else(|| var("AWS_PROFILE"))
            .unwrap_or_else(|| "default".to_owned());
        let aws_dir = home.map(|h| h.join(".aws"));
        let files = [
            (
                var("AWS_SHARED_CREDENTIALS_FILE")
                    .map(PathBuf::from)
                    .or_else(|| aws_dir.as_ref().map(|d| d.join("credentials"))),
                name.clone(),
            ),
            (
                var("AWS_CONFIG_FILE")
                    .map(PathBuf::from)
                    .or_else(|| aws_dir.as_ref().map(|d| d.join("config"))),
                // The config file names profiles `[profile x]`, except `[default]`.
                if name == "default" {
                    name.clone()
                } else {
                    format!("profile {name}")
                },
            ),
        ];
        for (file, section) in files {
            let Some(file) = file else { continue };
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            if let Some(credentials) = profile_keys(&text, &section) {
                return Ok(AwsCredentialSource::Profile {
                    file,
                    profile: name,
                    credentials,
                });
            }
        }
        Err(CredentialError(format!(
            "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or \
             AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN, or give profile `{name}` keys in ~/.aws/credentials"
        )))
    }

    /// Where the keys come from, for `check-config` (key ids are not secret; secrets never shown).
    pub fn describe(&self) -> String {
        match self {
            AwsCredentialSource::Environment(c) => format!(
                "AWS keys from the environment (AWS_ACCESS_KEY_ID {}{})",
                c.access_key_id,
                if c.session_token.is_some() {
                    ", with a session token"
                } else {
                    ""
                }
            ),
            AwsCredentialSource::Profile {
                file,
                profile,
                credentials,
            } => format!(
                "AWS keys of profile `{profile}` in {} (access key {})",
                file.display(),
                credentials.access_key_id
            ),
            AwsCredentialSource::WebIdentity {
                token_file,
                role_arn,
                sts_endpoint,
                ..
            } => format!(
                "AWS web identity: role {role_arn} assumed with the token in {}, at {sts_endpoint}",
                token_file.display()
            ),
        }
    }

    /// Keys now: the static ones, or fresh temporary ones from STS.
    pub(crate) async fn resolve(&self, client: &TokenClient) -> Result<AwsCredentials, CredentialError> {
        match self {
            AwsCredentialSource::Environment(c) => Ok(c.clone()),
            AwsCredentialSource::Profile { credentials, .. } => Ok(credentials.clone()),
            AwsCredentialSource::WebIdentity {
                token_file,
                role_arn,
                session_name,
                sts_endpoint,
            } => {
                let token = read_trimmed(token_file)?;
                let body = client
                    .post_form(
                        sts_endpoint,
                        &[
                            ("Action", "AssumeRoleWithWebIdentity"),
                            ("Version", "2011-06-15"),
                            ("RoleArn", role_arn),
                            ("RoleSessionName", session_name),
                            ("WebIdentityToken", &token),
                        ],
                    )
                    .await?;
                sts_credentials(&String::from_utf8_lossy(&body))
            }
        }
    }
}

/// The static keys of `[section]` in an INI-style AWS file.
fn profile_keys(text: &str, section: &str) -> Option<AwsCredentials> {
    let mut in_section = false;
    let (mut id, mut secret, mut token) = (None, None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_section = name.trim() == section;
            continue;
        }
        if !in_section {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim().to_owned();
            match k.trim() {
                "aws_access_key_id" => id = Some(v),
                "aws_secret_access_key" => secret = Some(v),
                "aws_session_token" => token = Some(v),
                _ => {}
            }
        }
    }
    Some(AwsCredentials {
        access_key_id: id.filter(|s| !s.is_empty())?,
        secret_access_key: secret.filter(|s| !s.is_empty())?,
        session_token: token.filter(|s| !s.is_empty()),
        expires: None,
    })
}

/// The text of the first `<tag>…</tag>` in an STS answer (its XML is flat and machine-written; the
/// four members read here never contain markup).
fn xml_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(xml[start..end].trim())
}

/// Keys from an `AssumeRoleWithWebIdentity` answer.
fn sts_credentials(xml: &str) -> Result<AwsCredentials, CredentialError> {
    let get = |tag: &str| {
        xml_text(xml, tag)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| CredentialError(format!("STS answer has no {tag}")))
    };
    let expires = xml_text(xml, "Expiration")
        .and_then(moat_translate::unix_seconds)
        .map(|s| UNIX_EPOCH + Duration::from_secs(s));
    Ok(AwsCredentials {
        access_key_id: get("AccessKeyId")?,
        secret_access_key: get("SecretAccessKey")?,
        session_token: Some(get("SessionToken")?),
        expires,
    })
}

/// Keys cached until shortly before they expire.
#[derive(Debug, Default)]
pub(crate) struct KeyCache {
    keys: tokio::sync::Mutex<Option<(AwsCredentials, Option<Instant>)>>,
}

impl KeyCache {
    pub(crate) async fn get(
        &self,
        source: &AwsCredentialSource,
        client: &TokenClient,
    ) -> Result<AwsCredentials, CredentialError> {
        let mut slot = self.keys.lock().await;
        let now = Instant::now();
        if let Some((keys, refresh_at)) = slot.as_ref() {
            if refresh_at.is_none_or(|r| now < r) {
                return Ok(keys.clone());
            }
        }
        let keys = source.resolve(client).await?;
        let refresh_at = keys.expires.map(|e| {
            let left = e.duration_since(SystemTime::now()).unwrap_or_default();
            now + left.saturating_sub(super::REFRESH_MARGIN.min(left / 2))
        });
        *slot = Some((keys.clone(), refresh_at));
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn the_environment_comes_first_unless_a_profile_is_configured() {
        let e = env(&[
            ("AWS_ACCESS_KEY_ID", "AKIDENV"),
            ("AWS_SECRET_ACCESS_KEY", "s3cr3t"),
            ("AWS_SESSION_TOKEN", "tok"),
        ]);
        let src = AwsCredentialSource::detect(&e, None, None, "us-east-1").unwrap();
        let d = src.describe();
        assert!(
            d.contains("AKIDENV") && d.contains("session token") && !d.contains("s3cr3t"),
            "{d}"
        );
        let err = AwsCredentialSource::detect(&e, None, Some("prod"), "us-east-1").unwrap_err();
        assert!(err.0.contains("profile `prod`"), "{err}");
    }

    #[test]
    fn profiles_are_read_from_the_credentials_and_config_files() {
        let dir = tempfile::tempdir().unwrap();
        let aws = dir.path().join(".aws");
        std::fs::create_dir(&aws).unwrap();
        std::fs::write(aws.join("credentials"), "[default]\naws_access_key_id = AKIDDEF\naws_secret_access_key = x\n\n[prod]\n# comment\naws_access_key_id=AKIDPROD\naws_secret_access_key=y\naws_session_token=z\n").unwrap();
        std::fs::write(
            aws.join("config"),
            "[profile staging]\naws_access_key_id = AKIDSTG\naws_secret_access_key = w\n",
        )
        .unwrap();
        let none = env(&[]);
        let d = AwsCredentialSource::detect(&none, Some(dir.path()), None, "eu-west-1")
            .unwrap()
            .describe();
        assert!(d.contains("`default`") && d.contains("AKIDDEF"), "{d}");
        let prod = env(&[("AWS_PROFILE", "prod")]);
        let src = AwsCredentialSource::detect(&prod, Some(dir.path()), None, "eu-west-1").unwrap();
        match &src {
            AwsCredentialSource::Profile { credentials, .. } => {
                assert_eq!(credentials.session_token.as_deref(), Some("z"))
            }
            other => panic!("{other:?}"),
        }
        let d = AwsCredentialSource::detect(&none, Some(dir.path()), Some("staging"), "eu-west-1")
            .unwrap()
            .describe();
        assert!(d.contains("AKIDSTG"), "{d}");
        assert!(AwsCredentialSource::detect(&none, Some(dir.path()), Some("missing"), "eu-west-1").is_err());
    }

    #[test]
    fn web_identity_and_sts_answers() {
        let e = env(&[
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token"),
            ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r"),
        ]);
        match AwsCredentialSource::detect(&e, None, None, "us-west-2").unwrap() {
            AwsCredentialSource::WebIdentity {
                sts_endpoint,
                session_name,
                ..
            } => {
                assert_eq!(sts_endpoint, "https://sts.us-west-2.amazonaws.com");
                assert_eq!(session_name, "moatd");
            }
            other => panic!("{other:?}"),
        }
        let xml = "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>ASIATEMP</AccessKeyId><SecretAccessKey>sk</SecretAccessKey><SessionToken>st</SessionToken><Expiration>2030-01-01T00:00:00Z</Expiration></Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>";
        let c = sts_credentials(xml).unwrap();
        assert_eq!(
            (c.access_key_id.as_str(), c.session_token.as_deref()),
            ("ASIATEMP", Some("st"))
        );
        assert_eq!(c.expires, Some(UNIX_EPOCH + Duration::from_secs(1_893_456_000)));
        assert!(sts_credentials("<Error><Code>AccessDenied</Code></Error>").is_err());
    }
}
