//! Where the native store's AWS credentials come from: static keys, or
//! the AWS SDKs' default chain, cached and renewed before they expire.
//!
//! The chain is aws-config's, the same code the AWS SDKs run: environment
//! variables, the shared config and credentials files with profiles
//! (`AWS_PROFILE`, `role_arn` with `source_profile`, `credential_process`,
//! `web_identity_token_file`), web identity tokens (EKS IRSA:
//! `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`), container credentials
//! (ECS, EKS Pod Identity: `AWS_CONTAINER_CREDENTIALS_*`) and the EC2
//! instance metadata service (IMDSv2). It runs over the same hyper and
//! rustls (ring) stack as reqwest, so no second TLS library is built.
//! Only the signing keys come from here: signing stays `aws-sigv4`'s, in
//! `dynamodb-protocol`, shared with the adapter component.
//!
//! Credentials are never logged: the log says where they came from and
//! when they expire.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::BehaviorVersion;
use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_config::provider_config::ProviderConfig;
use aws_credential_types::provider::ProvideCredentials;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use dynamodb_protocol::Credentials;
use item_store::StoreError;
use tokio::sync::Mutex;

/// Credentials are renewed this long before they expire (at most half
/// their lifetime), so that none expires on its way to DynamoDB; the AWS
/// SDKs use the same five minutes.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// The store's credentials.
#[derive(Clone, Debug)]
pub(crate) enum CredentialSource {
    /// Keys given in the environment or in code, used as they are (their
    /// session token, if any, is the caller's to renew).
    Fixed,
    /// The AWS SDKs' default chain, shared by the store's clones.
    Chain(Arc<CachedChain>),
}

impl CredentialSource {
    /// The credentials to sign with now: `None` for [`Self::Fixed`] (the
    /// protocol already holds them).
    pub(crate) async fn current(&self) -> Result<Option<Credentials>, StoreError> {
        match self {
            Self::Fixed => Ok(None),
            Self::Chain(chain) => chain.current(SystemTime::now()).await.map(Some),
        }
    }
}

/// The default chain with the credentials it gave last. `Debug` shows
/// neither.
pub(crate) struct CachedChain {
    provider: DefaultCredentialsChain,
    cached: Mutex<Option<Cached>>,
}

impl std::fmt::Debug for CachedChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CachedChain(the AWS SDKs' default credential chain)")
    }
}

/// Credentials and when to stop using them.
struct Cached {
    credentials: Credentials,
    renew_at: Option<SystemTime>,
}

/// aws-config's HTTP client, on our TLS stack.
fn http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

impl CachedChain {
    /// The chain, for `region` (the region of STS calls).
    pub(crate) async fn new(region: &str) -> Self {
        let config = ProviderConfig::default()
            .with_http_client(http_client())
            .with_region(Some(aws_config::Region::new(region.to_string())));
        let provider = DefaultCredentialsChain::builder()
            .configure(config)
            .build()
            .await;
        Self {
            provider,
            cached: Mutex::new(None),
        }
    }

    /// The cached credentials until their renewal time, else new ones.
    /// One caller at a time asks the chain; the others wait for its answer.
    pub(crate) async fn current(&self, now: SystemTime) -> Result<Credentials, StoreError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref()
            && c.renew_at.is_none_or(|at| now < at)
        {
            return Ok(c.credentials.clone());
        }
        let fresh = self.provider.provide_credentials().await.map_err(|e| {
            // aws-config's errors name the provider and the cause, never a
            // secret; the client gets only that credentials are missing.
            tracing::warn!(error = %e, "no AWS credentials from the default chain");
            StoreError::Unauthorized(
                "the service has no AWS credentials (see its log); set them in the environment, \
                 a profile, a web identity token, or run where container or instance \
                 credentials are available"
                    .into(),
            )
        })?;
        let credentials = Credentials::new(
            fresh.access_key_id(),
            fresh.secret_access_key(),
            fresh.session_token().map(str::to_owned),
        )
        .map_err(|_| StoreError::Unauthorized("the AWS credentials found are empty".into()))?;
        let renew_at = fresh.expiry().map(|expiry| renewal_time(now, expiry));
        tracing::info!(
            expires_in_s = fresh
                .expiry()
                .and_then(|e| e.duration_since(now).ok())
                .map(|d| d.as_secs()),
            "AWS credentials from the default chain"
        );
        *cached = Some(Cached {
            credentials: credentials.clone(),
            renew_at,
        });
        Ok(credentials)
    }
}

/// When credentials fetched at `now` and expiring at `expiry` are renewed:
/// [`REFRESH_MARGIN`] before they expire, or halfway for short-lived ones.
fn renewal_time(now: SystemTime, expiry: SystemTime) -> SystemTime {
    let lifetime = expiry.duration_since(now).unwrap_or_default();
    expiry - REFRESH_MARGIN.min(lifetime / 2)
}

/// The region as the AWS SDKs find it when `AWS_REGION` and
/// `AWS_DEFAULT_REGION` are unset: the profile's `region`, then the
/// instance metadata service.
pub(crate) async fn default_region() -> Option<String> {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client())
        .load()
        .await
        .region()
        .map(|r| r.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_renewed_before_they_expire() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let hour = now + Duration::from_secs(3600);
        assert_eq!(renewal_time(now, hour), hour - REFRESH_MARGIN);
        let short = now + Duration::from_secs(10);
        assert_eq!(renewal_time(now, short), now + Duration::from_secs(5));
        assert_eq!(
            renewal_time(now, now - Duration::from_secs(1)),
            now - Duration::from_secs(1)
        );
    }
}
