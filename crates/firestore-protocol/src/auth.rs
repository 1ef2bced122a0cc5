//! Google credentials, sans-IO: a service-account key signs its own access
//! token (a self-signed JWT, RS256), which Google APIs accept as a bearer
//! token without a round trip to the token endpoint. The time is passed in,
//! so the cache is testable and works the same inside a component.
//!
//! The signer is the pure-Rust `rsa` crate (`ring` does not build for
//! wasm32-wasip2 here). No `Debug` output, error or message ever holds the
//! private key or a token.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderValue, Request, header};
use rsa::RsaPrivateKey;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use serde::Deserialize;
use serde_json::json;
use sha2::Sha256;

/// The audience of a self-signed JWT for Firestore.
pub const FIRESTORE_AUDIENCE: &str = "https://firestore.googleapis.com/";
/// How long a signed token is valid (Google's maximum).
pub const TOKEN_LIFETIME_SECS: i64 = 3600;
/// A cached token is replaced this long before it expires, so that a token
/// never expires on its way to the server.
pub const REFRESH_MARGIN_SECS: i64 = 300;

/// `now` as Unix seconds, the clock of tokens and their expiry (0 before
/// 1970, saturating far in the future).
pub fn unix_seconds(now: std::time::SystemTime) -> i64 {
    now.duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Why credentials could not be used. Messages never quote the key file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Not JSON, or a required field is missing.
    #[error(
        "the service-account key is not a JSON key file with client_email, private_key and private_key_id"
    )]
    KeyFile,
    /// `private_key` is not an RSA key in PKCS#8 or PKCS#1 PEM.
    #[error("the private_key of the service-account key is not an RSA private key in PEM form")]
    PrivateKey,
    /// Signing failed, or the token made no valid header value.
    #[error("could not sign a token with the service-account key")]
    Signing,
    /// A credentials file of a kind not supported here (e.g.
    /// `external_account`, workload identity federation).
    #[error(
        "the credentials file is neither a service_account key nor an authorized_user file (from `gcloud auth application-default login`)"
    )]
    UnsupportedFile,
    /// A token request could not be built (a malformed `token_uri` or
    /// metadata host).
    #[error("the token endpoint or metadata server address is not a valid URL")]
    TokenEndpoint,
    /// The token endpoint or metadata server refused (its HTTP status).
    #[error("the Google token endpoint or metadata server refused the request (HTTP {0})")]
    TokenRefused(u16),
    /// The answer was not a token.
    #[error("the Google token endpoint or metadata server gave no access token")]
    TokenAnswer,
    /// A fetched access token expired before a new one came (the native
    /// store renews them well before).
    #[error("the Google access token expired")]
    Expired,
}

#[derive(Deserialize)]
struct KeyFile {
    client_email: String,
    private_key: String,
    private_key_id: String,
    #[serde(default)]
    project_id: Option<String>,
}

/// A service-account key (the JSON file Google hands out).
#[derive(Clone)]
pub struct ServiceAccountKey {
    client_email: String,
    private_key_id: String,
    project_id: Option<String>,
    signer: SigningKey<Sha256>,
}

impl fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("private_key_id", &self.private_key_id)
            .field("project_id", &self.project_id)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

impl ServiceAccountKey {
    /// Reads the JSON key file's text.
    pub fn from_json(text: &str) -> Result<Self, AuthError> {
        // serde's messages may quote the input: they are not passed on.
        let file: KeyFile = serde_json::from_str(text).map_err(|_| AuthError::KeyFile)?;
        let key = RsaPrivateKey::from_pkcs8_pem(&file.private_key)
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(&file.private_key))
            .map_err(|_| AuthError::PrivateKey)?;
        Ok(Self {
            client_email: file.client_email,
            private_key_id: file.private_key_id,
            project_id: file.project_id.filter(|p| !p.is_empty()),
            signer: SigningKey::new(key),
        })
    }

    /// The service account the key belongs to: `iss` and `sub` of the
    /// tokens it signs.
    pub fn client_email(&self) -> &str {
        &self.client_email
    }

    /// The project the key belongs to, the default project to use.
    pub fn project_id(&self) -> Option<&str> {
        self.project_id.as_deref()
    }

    /// A token for `audience`, valid from `now` (Unix seconds) for an hour:
    /// header `{"alg":"RS256","typ":"JWT","kid":<private_key_id>}`, claims
    /// `iss = sub = client_email`, `aud`, `iat`, `exp`.
    pub fn self_signed_jwt(&self, audience: &str, now: i64) -> Result<String, AuthError> {
        let header = json!({ "alg": "RS256", "typ": "JWT", "kid": self.private_key_id });
        let claims = json!({
            "iss": self.client_email,
            "sub": self.client_email,
            "aud": audience,
            "iat": now,
            "exp": now + TOKEN_LIFETIME_SECS,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .signer
            .try_sign(signing_input.as_bytes())
            .map_err(|_| AuthError::Signing)?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        ))
    }
}

/// A signed token and when it stops being valid.
#[derive(Clone)]
struct Cached {
    header: HeaderValue,
    expires_at: i64,
}

/// Where the bearer token comes from.
#[derive(Clone)]
enum Source {
    /// The emulator.
    Emulator,
    /// Signed here with a service-account key.
    ServiceAccount(Box<ServiceAccountKey>),
    /// Fetched by the caller (a refresh token's exchange, the metadata
    /// server) and handed over with its expiry.
    Fetched,
}

/// Where the bearer token comes from, with the current token.
#[derive(Clone)]
pub struct Credentials {
    source: Source,
    cached: Option<Cached>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let token = self.cached.as_ref().map(|_| "<redacted>");
        match &self.source {
            Source::Emulator => f.write_str("Credentials::Emulator"),
            Source::ServiceAccount(key) => f
                .debug_struct("Credentials::ServiceAccount")
                .field("key", key)
                .field("token", &token)
                .finish(),
            Source::Fetched => f
                .debug_struct("Credentials::AccessToken")
                .field("token", &token)
                .finish(),
        }
    }
}

impl Credentials {
    /// The emulator's: `Bearer owner`, which also passes its security rules.
    pub fn emulator() -> Self {
        Self {
            source: Source::Emulator,
            cached: None,
        }
    }

    /// Production's: self-signed JWTs from `key` (no token exchange), made
    /// when first needed and renewed before they expire.
    pub fn service_account(key: ServiceAccountKey) -> Self {
        Self {
            source: Source::ServiceAccount(Box::new(key)),
            cached: None,
        }
    }

    /// An access token fetched elsewhere ([`crate::adc`]), valid until
    /// `expires_at` (Unix seconds); whoever fetched it replaces it before.
    pub fn access_token(token: &crate::adc::AccessToken) -> Result<Self, AuthError> {
        let mut header = HeaderValue::try_from(format!("Bearer {}", token.token))
            .map_err(|_| AuthError::TokenAnswer)?;
        header.set_sensitive(true);
        Ok(Self {
            source: Source::Fetched,
            cached: Some(Cached {
                header,
                expires_at: token.expires_at,
            }),
        })
    }

    /// The `authorization` header value at `now` (Unix seconds): the cached
    /// token until [`REFRESH_MARGIN_SECS`] before it expires, then a new one
    /// (a fetched token is used until it expires: renewing it is its
    /// fetcher's job).
    pub fn authorization(&mut self, now: i64) -> Result<HeaderValue, AuthError> {
        let key = match &self.source {
            Source::Emulator => return Ok(HeaderValue::from_static("Bearer owner")),
            Source::Fetched => {
                return match &self.cached {
                    Some(cached) if now < cached.expires_at => Ok(cached.header.clone()),
                    _ => Err(AuthError::Expired),
                };
            }
            Source::ServiceAccount(key) => key,
        };
        if let Some(cached) = &self.cached
            && now < cached.expires_at - REFRESH_MARGIN_SECS
        {
            return Ok(cached.header.clone());
        }
        let jwt = key.self_signed_jwt(FIRESTORE_AUDIENCE, now)?;
        let mut header =
            HeaderValue::try_from(format!("Bearer {jwt}")).map_err(|_| AuthError::Signing)?;
        header.set_sensitive(true);
        self.cached = Some(Cached {
            header: header.clone(),
            expires_at: now + TOKEN_LIFETIME_SECS,
        });
        Ok(header)
    }

    /// Sets the `authorization` header of a request.
    pub fn authorize(&mut self, request: &mut Request<Vec<u8>>, now: i64) -> Result<(), AuthError> {
        let value = self.authorization(now)?;
        request.headers_mut().insert(header::AUTHORIZATION, value);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    use rsa::signature::Verifier;
    use serde_json::Value as Json;

    /// A throwaway 2048-bit key made for this test run only.
    fn key_file() -> (String, RsaPrivateKey) {
        let key = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("keygen");
        let pem = key.to_pkcs8_pem(LineEnding::LF).expect("pem");
        let file = json!({
            "type": "service_account",
            "project_id": "demo-project",
            "private_key_id": "key-id-1",
            "private_key": pem.as_str(),
            "client_email": "svc@demo-project.iam.gserviceaccount.com",
        });
        (file.to_string(), key)
    }

    fn part(token: &str, i: usize) -> Json {
        let bytes = URL_SAFE_NO_PAD
            .decode(token.split('.').nth(i).unwrap())
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn jwt_is_well_formed_and_verifies() {
        let (file, private) = key_file();
        let key = ServiceAccountKey::from_json(&file).unwrap();
        assert_eq!(key.project_id(), Some("demo-project"));
        let token = key
            .self_signed_jwt(FIRESTORE_AUDIENCE, 1_700_000_000)
            .unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        }));
        assert_eq!(
            part(&token, 0),
            json!({"alg": "RS256", "typ": "JWT", "kid": "key-id-1"})
        );
        assert_eq!(
            part(&token, 1),
            json!({
                "iss": "svc@demo-project.iam.gserviceaccount.com",
                "sub": "svc@demo-project.iam.gserviceaccount.com",
                "aud": "https://firestore.googleapis.com/",
                "iat": 1_700_000_000,
                "exp": 1_700_003_600,
            })
        );
        let verifier = VerifyingKey::<Sha256>::new(private.to_public_key());
        let signature =
            Signature::try_from(URL_SAFE_NO_PAD.decode(parts[2]).unwrap().as_slice()).unwrap();
        let signed = format!("{}.{}", parts[0], parts[1]);
        verifier.verify(signed.as_bytes(), &signature).unwrap();
        assert!(verifier.verify(b"tampered", &signature).is_err());

        // The cache: the same token until 5 minutes before expiry.
        let mut credentials = Credentials::service_account(key);
        let first = credentials.authorization(1_000).unwrap();
        assert!(first.is_sensitive());
        assert_eq!(credentials.authorization(1_000 + 3_299).unwrap(), first);
        let renewed = credentials.authorization(1_000 + 3_300).unwrap();
        assert_ne!(renewed, first);
        assert_eq!(credentials.authorization(1_000 + 3_301).unwrap(), renewed);

        // Debug output holds neither the key nor the token.
        let debug = format!("{credentials:?}");
        assert!(
            !debug.contains("PRIVATE KEY") && !debug.contains("eyJ"),
            "{debug}"
        );
        let mut request = Request::new(Vec::new());
        credentials.authorize(&mut request, 5_000).unwrap();
        let debug = format!("{request:?}");
        assert!(!debug.contains("eyJ"), "{debug}");
    }

    #[test]
    fn emulator_is_owner() {
        let mut request = Request::new(Vec::new());
        Credentials::emulator().authorize(&mut request, 0).unwrap();
        assert_eq!(request.headers()["authorization"], "Bearer owner");
    }

    #[test]
    fn bad_key_files_are_refused_without_quoting_them() {
        assert_eq!(
            ServiceAccountKey::from_json("{\"private_key\": 5}").err(),
            Some(AuthError::KeyFile)
        );
        let file = json!({
            "client_email": "a@b", "private_key_id": "k",
            "private_key": "-----BEGIN PRIVATE KEY-----\nnot a key SECRET\n-----END PRIVATE KEY-----\n",
        });
        let error = ServiceAccountKey::from_json(&file.to_string()).unwrap_err();
        assert_eq!(error, AuthError::PrivateKey);
        assert!(!error.to_string().contains("SECRET"));
    }
}
