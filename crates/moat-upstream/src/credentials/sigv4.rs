//! AWS Signature Version 4 over each Bedrock request, computed by the `aws-sigv4` crate (never by
//! hand): the keys come from an [`AwsCredentialSource`], cached while they are valid.

use std::sync::Arc;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use futures_util::future::BoxFuture;
use http::{HeaderName, HeaderValue};

use super::aws::KeyCache;
use super::{AwsCredentialSource, CredentialError, RequestAuth, SignInput, TokenClient};

/// Signs requests for one AWS service in one region.
#[derive(Debug)]
pub struct SigV4 {
    source: AwsCredentialSource,
    region: String,
    /// The signing name: `bedrock` for Bedrock Runtime.
    service: String,
    client: TokenClient,
    keys: KeyCache,
}

impl SigV4 {
    pub fn new(source: AwsCredentialSource, region: &str, service: &str, client: TokenClient) -> Arc<SigV4> {
        Arc::new(SigV4 {
            source,
            region: region.to_owned(),
            service: service.to_owned(),
            client,
            keys: KeyCache::default(),
        })
    }

    async fn sign(&self, request: SignInput<'_>) -> Result<Vec<(HeaderName, HeaderValue)>, CredentialError> {
        let keys = self.keys.get(&self.source, &self.client).await?;
        sign_with(&keys, &self.region, &self.service, SystemTime::now(), &request)
    }
}

/// The signature headers (`authorization`, `x-amz-date`, and `x-amz-security-token` for temporary
/// keys) for `request` at `time`. The host header is signed as the client will send it (with the
/// port when it is not the scheme's default).
pub fn sign_with(
    keys: &super::AwsCredentials,
    region: &str,
    service: &str,
    time: SystemTime,
    request: &SignInput<'_>,
) -> Result<Vec<(HeaderName, HeaderValue)>, CredentialError> {
    let identity: Identity = Credentials::new(
        keys.access_key_id.clone(),
        keys.secret_access_key.clone(),
        keys.session_token.clone(),
        keys.expires,
        "moatd",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| CredentialError(format!("SigV4: {e}")))?
        .into();
    let host = match (request.url.host_str(), request.url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        (None, _) => return Err(CredentialError("SigV4: the URL has no host".into())),
    };
    let mut headers: Vec<(&str, &str)> = vec![("host", host.as_str())];
    for (name, value) in request.headers {
        if let Ok(v) = value.to_str() {
            headers.push((name.as_str(), v));
        }
    }
    let signable = SignableRequest::new(
        request.method,
        request.url.as_str(),
        headers.into_iter(),
        SignableBody::Bytes(request.body),
    )
    .map_err(|e| CredentialError(format!("SigV4: {e}")))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| CredentialError(format!("SigV4: {e}")))?
        .into_parts();
    let (signed, _query) = instructions.into_parts();
    signed
        .into_iter()
        .map(|h| {
            let name = HeaderName::from_bytes(h.name().as_bytes())
                .map_err(|_| CredentialError("SigV4: a signature header name is invalid".into()))?;
            let mut value = HeaderValue::from_str(h.value())
                .map_err(|_| CredentialError("SigV4: a signature header is not a valid header".into()))?;
            value.set_sensitive(h.sensitive() || name == http::header::AUTHORIZATION);
            Ok((name, value))
        })
        .collect()
}

impl RequestAuth for SigV4 {
    fn authorize<'a>(
        &'a self,
        request: SignInput<'a>,
    ) -> BoxFuture<'a, Result<Vec<(HeaderName, HeaderValue)>, CredentialError>> {
        Box::pin(self.sign(request))
    }

    fn describe(&self) -> String {
        format!(
            "{}; SigV4 for `{}` in {}",
            self.source.describe(),
            self.service,
            self.region
        )
    }
}
