//! Access tokens fetched over HTTP, for credentials that cannot sign their
//! own: a user's refresh token (gcloud's application default credentials)
//! exchanged at Google's token endpoint, or the instance's service account
//! at the metadata server. The requests and answers are
//! `firestore_protocol::adc`'s; this module sends them and renews the
//! token before it expires, one fetch at a time.
//!
//! Tokens never reach a log or a message.

use std::time::{Duration, SystemTime};

use firestore_protocol::adc::{self, AccessToken, AuthorizedUser};
use firestore_protocol::{AuthError, Credentials, Session};
use item_store::StoreError;
use tokio::sync::Mutex;

/// Limit for one token request: the metadata server answers at once, and
/// a token endpoint that takes longer is not going to help.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Where tokens come from.
#[derive(Debug)]
pub(crate) enum Fetch {
    /// A user's refresh token.
    User(Box<AuthorizedUser>),
    /// The metadata server at `host[:port]`.
    Metadata(String),
}

/// Fetches tokens and hands them to a [`Session`].
#[derive(Debug)]
pub(crate) struct TokenFetcher {
    fetch: Fetch,
    http: reqwest::Client,
    /// When the current token is due for renewal (Unix seconds); `None`
    /// before the first.
    renew_at: Mutex<Option<i64>>,
}

/// Credentials that refuse to be used: the session's until the first token
/// arrives, so that nothing is ever sent without one.
pub(crate) fn no_token_yet() -> Credentials {
    let none = AccessToken {
        token: "none".into(),
        expires_at: 0,
    };
    Credentials::access_token(&none).expect("a plain token is a valid header")
}

impl TokenFetcher {
    pub(crate) fn new(fetch: Fetch, http: reqwest::Client) -> Self {
        Self {
            fetch,
            http,
            renew_at: Mutex::new(None),
        }
    }

    /// Gives `session` a token valid for a while yet, fetching one when
    /// the current one is due.
    pub(crate) async fn ensure_fresh(&self, session: &Session) -> Result<(), StoreError> {
        let now = firestore_protocol::auth::unix_seconds(SystemTime::now());
        let mut renew_at = self.renew_at.lock().await;
        if renew_at.is_some_and(|at| now < at) {
            return Ok(());
        }
        let request = match &self.fetch {
            Fetch::User(user) => user.token_request(),
            Fetch::Metadata(host) => adc::metadata_token_request(host),
        }
        .map_err(unauthorized)?;
        let (status, body) = self.send(request).await?;
        let token = adc::parse_token(status, &body, now).map_err(|e| {
            tracing::warn!(error = %e, source = self.source(), "no Google access token");
            unauthorized(e)
        })?;
        let credentials = Credentials::access_token(&token).map_err(unauthorized)?;
        session.replace_credentials(credentials);
        *renew_at = Some(token.renew_at(now));
        tracing::info!(
            source = self.source(),
            expires_in_s = token.expires_at.saturating_sub(now),
            "Google access token"
        );
        Ok(())
    }

    /// The project the instance runs in, when tokens come from the
    /// metadata server.
    pub(crate) async fn project_id(&self) -> Result<Option<String>, StoreError> {
        let Fetch::Metadata(host) = &self.fetch else {
            return Ok(None);
        };
        let request = adc::metadata_project_request(host).map_err(unauthorized)?;
        let (status, body) = self.send(request).await?;
        let project = String::from_utf8_lossy(&body).trim().to_string();
        Ok(((200..300).contains(&status) && !project.is_empty()).then_some(project))
    }

    fn source(&self) -> &'static str {
        match self.fetch {
            Fetch::User(_) => "authorized_user",
            Fetch::Metadata(_) => "metadata server",
        }
    }

    /// Sends a token request; a server that cannot be reached is
    /// `unavailable` (the client may retry), not a credentials problem.
    async fn send(&self, request: http::Request<Vec<u8>>) -> Result<(u16, Vec<u8>), StoreError> {
        let (parts, body) = request.into_parts();
        let answer = self
            .http
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body)
            .timeout(TOKEN_TIMEOUT)
            .send()
            .await;
        let unreachable = |e: reqwest::Error| {
            tracing::warn!(error = %e, source = self.source(), "cannot reach the Google token source");
            StoreError::Unavailable(format!(
                "the Google {} could not be reached for an access token",
                self.source()
            ))
        };
        let response = answer.map_err(unreachable)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(unreachable)?;
        Ok((status, body.to_vec()))
    }
}

fn unauthorized(e: AuthError) -> StoreError {
    StoreError::Unauthorized(e.to_string())
}
