//! Google Application Default Credentials, sans-IO: what the credential
//! files say, and the token requests whose answers become bearer tokens.
//!
//! The order is Google's client libraries' (the native store follows it):
//! `GOOGLE_APPLICATION_CREDENTIALS`, then gcloud's
//! `application_default_credentials.json`, then the metadata server (GCE,
//! GKE, Cloud Run). A file holds a service-account key (which signs its own
//! tokens, [`crate::auth`]) or a user's refresh token (`gcloud auth
//! application-default login`), exchanged at the OAuth token endpoint.
//! Nothing here sends a request: the caller does, and hands the answer to
//! [`parse_token`].

use std::fmt;

use http::{Request, header};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use crate::auth::{AuthError, ServiceAccountKey};

/// Google's OAuth 2.0 token endpoint, where refresh tokens are exchanged.
pub const TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// The metadata server's host name on Google Cloud; `GCE_METADATA_HOST`
/// overrides it, as in Google's libraries.
pub const METADATA_HOST: &str = "metadata.google.internal";
/// The variable overriding [`METADATA_HOST`] (`host` or `host:port`).
pub const METADATA_HOST_VARIABLE: &str = "GCE_METADATA_HOST";
/// Where gcloud keeps application default credentials, under its config
/// folder (`CLOUDSDK_CONFIG`, else `~/.config/gcloud`).
pub const GCLOUD_ADC_FILE: &str = "application_default_credentials.json";

/// What `application/x-www-form-urlencoded` leaves as it is.
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'*');

/// What an application-default-credentials file holds.
#[derive(Debug)]
pub enum AdcFile {
    /// A service-account key: signs its own tokens.
    ServiceAccount(Box<ServiceAccountKey>),
    /// A user's refresh token: exchanged for access tokens.
    AuthorizedUser(AuthorizedUser),
}

impl AdcFile {
    /// Reads a credentials file by its `type`; never quotes it in errors.
    pub fn from_json(text: &str) -> Result<Self, AuthError> {
        #[derive(Deserialize)]
        struct Kind {
            #[serde(rename = "type")]
            kind: Option<String>,
        }
        let kind: Kind = serde_json::from_str(text).map_err(|_| AuthError::KeyFile)?;
        match kind.kind.as_deref() {
            Some("authorized_user") => AuthorizedUser::from_json(text).map(Self::AuthorizedUser),
            Some("service_account") | None => {
                ServiceAccountKey::from_json(text).map(|key| Self::ServiceAccount(Box::new(key)))
            }
            Some(_) => Err(AuthError::UnsupportedFile),
        }
    }
}

/// A user's OAuth client and refresh token. `Debug` shows neither secret.
#[derive(Clone, Deserialize)]
pub struct AuthorizedUser {
    client_id: String,
    client_secret: String,
    refresh_token: String,
    #[serde(default)]
    token_uri: Option<String>,
    #[serde(default)]
    quota_project_id: Option<String>,
}

impl fmt::Debug for AuthorizedUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizedUser")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("refresh_token", &"<redacted>")
            .field("token_uri", &self.token_uri)
            .finish()
    }
}

impl AuthorizedUser {
    /// Reads an `authorized_user` file.
    pub fn from_json(text: &str) -> Result<Self, AuthError> {
        let user: Self = serde_json::from_str(text).map_err(|_| AuthError::KeyFile)?;
        if user.client_id.is_empty()
            || user.client_secret.is_empty()
            || user.refresh_token.is_empty()
        {
            return Err(AuthError::KeyFile);
        }
        Ok(user)
    }

    /// The project billed for quota, when the file names one.
    pub fn quota_project_id(&self) -> Option<&str> {
        self.quota_project_id.as_deref().filter(|p| !p.is_empty())
    }

    /// The refresh-token grant (RFC 6749 section 6) at the file's
    /// `token_uri`, else [`TOKEN_URI`].
    pub fn token_request(&self) -> Result<Request<Vec<u8>>, AuthError> {
        let form: String = [
            ("grant_type", "refresh_token"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.as_str()),
            ("refresh_token", self.refresh_token.as_str()),
        ]
        .iter()
        .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, FORM)))
        .collect::<Vec<_>>()
        .join("&");
        Request::post(self.token_uri.as_deref().unwrap_or(TOKEN_URI))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form.into_bytes())
            .map_err(|_| AuthError::TokenEndpoint)
    }
}

/// The metadata server's URL for `path` on `host` (`host[:port]`).
fn metadata_url(host: &str, path: &str) -> String {
    format!("http://{}/computeMetadata/v1/{path}", host.trim())
}

/// A GET of the metadata server, with the header it insists on.
fn metadata_request(host: &str, path: &str) -> Result<Request<Vec<u8>>, AuthError> {
    Request::get(metadata_url(host, path))
        .header("metadata-flavor", "Google")
        .body(Vec::new())
        .map_err(|_| AuthError::TokenEndpoint)
}

/// The access token of the instance's default service account.
pub fn metadata_token_request(host: &str) -> Result<Request<Vec<u8>>, AuthError> {
    metadata_request(host, "instance/service-accounts/default/token")
}

/// The project the instance runs in (a plain-text answer).
pub fn metadata_project_request(host: &str) -> Result<Request<Vec<u8>>, AuthError> {
    metadata_request(host, "project/project-id")
}

/// An access token and when it expires (Unix seconds).
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    /// The bearer token.
    pub token: String,
    /// When it stops being valid.
    pub expires_at: i64,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl AccessToken {
    /// When a token received at `now` is renewed:
    /// [`crate::auth::REFRESH_MARGIN_SECS`] before it expires, or halfway
    /// for a short-lived one.
    pub fn renew_at(&self, now: i64) -> i64 {
        let lifetime = self.expires_at.saturating_sub(now);
        self.expires_at - crate::auth::REFRESH_MARGIN_SECS.min(lifetime / 2)
    }
}

/// Reads a token endpoint's or the metadata server's answer
/// (`{"access_token": ..., "expires_in": seconds, "token_type": "Bearer"}`)
/// received at `now`. Never quotes the answer.
pub fn parse_token(status: u16, body: &[u8], now: i64) -> Result<AccessToken, AuthError> {
    #[derive(Deserialize)]
    struct Answer {
        access_token: String,
        expires_in: i64,
    }
    if !(200..300).contains(&status) {
        return Err(AuthError::TokenRefused(status));
    }
    let answer: Answer = serde_json::from_slice(body).map_err(|_| AuthError::TokenAnswer)?;
    if answer.access_token.is_empty() || answer.expires_in <= 0 {
        return Err(AuthError::TokenAnswer);
    }
    Ok(AccessToken {
        token: answer.access_token,
        expires_at: now.saturating_add(answer.expires_in),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user_file() -> String {
        json!({
            "type": "authorized_user",
            "client_id": "id.apps.googleusercontent.com",
            "client_secret": "s3cret&=",
            "refresh_token": "1//refresh",
            "quota_project_id": "demo-quota",
        })
        .to_string()
    }

    #[test]
    fn files_are_read_by_type_and_never_shown() {
        let AdcFile::AuthorizedUser(user) = AdcFile::from_json(&user_file()).unwrap() else {
            panic!("not a user file");
        };
        assert_eq!(user.quota_project_id(), Some("demo-quota"));
        let debug = format!("{user:?}");
        assert!(
            !debug.contains("s3cret") && !debug.contains("1//refresh"),
            "{debug}"
        );
        assert_eq!(
            AdcFile::from_json(r#"{"type": "external_account"}"#).unwrap_err(),
            AuthError::UnsupportedFile
        );
        assert_eq!(
            AdcFile::from_json(r#"{"type": "authorized_user", "client_id": "x"}"#).unwrap_err(),
            AuthError::KeyFile
        );
        assert_eq!(
            AdcFile::from_json("not json").unwrap_err(),
            AuthError::KeyFile
        );
    }

    #[test]
    fn the_refresh_grant_is_form_encoded() {
        let AdcFile::AuthorizedUser(user) = AdcFile::from_json(&user_file()).unwrap() else {
            panic!("not a user file");
        };
        let request = user.token_request().unwrap();
        assert_eq!(request.method(), http::Method::POST);
        assert_eq!(request.uri(), TOKEN_URI);
        assert_eq!(
            request.headers()["content-type"],
            "application/x-www-form-urlencoded"
        );
        assert_eq!(
            String::from_utf8(request.body().clone()).unwrap(),
            "grant_type=refresh_token&client_id=id.apps.googleusercontent.com\
             &client_secret=s3cret%26%3D&refresh_token=1%2F%2Frefresh"
        );
    }

    #[test]
    fn metadata_requests_carry_the_flavor_header() {
        let request = metadata_token_request("127.0.0.1:8999").unwrap();
        assert_eq!(
            request.uri(),
            "http://127.0.0.1:8999/computeMetadata/v1/instance/service-accounts/default/token"
        );
        assert_eq!(request.headers()["metadata-flavor"], "Google");
        let project = metadata_project_request(METADATA_HOST).unwrap();
        assert_eq!(
            project.uri(),
            "http://metadata.google.internal/computeMetadata/v1/project/project-id"
        );
    }

    #[test]
    fn token_answers_are_checked() {
        let body = br#"{"access_token": "ya29.x", "expires_in": 3599, "token_type": "Bearer"}"#;
        let token = parse_token(200, body, 1_000).unwrap();
        assert_eq!(token.token, "ya29.x");
        assert_eq!(token.expires_at, 4_599);
        assert_eq!(token.renew_at(1_000), 4_299);
        let short = parse_token(200, br#"{"access_token": "t", "expires_in": 8}"#, 1_000).unwrap();
        assert_eq!(short.renew_at(1_000), 1_004);
        assert!(!format!("{token:?}").contains("ya29"));
        assert_eq!(
            parse_token(400, br#"{"error": "invalid_grant"}"#, 0).unwrap_err(),
            AuthError::TokenRefused(400)
        );
        assert_eq!(
            parse_token(200, br#"{"access_token": "", "expires_in": 5}"#, 0).unwrap_err(),
            AuthError::TokenAnswer
        );
        assert_eq!(
            parse_token(200, b"<html>", 0).unwrap_err(),
            AuthError::TokenAnswer
        );
    }
}
