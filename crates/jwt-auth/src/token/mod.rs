//! One token: its header, signature and claims.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::Value as Json;

use crate::keys::KeySet;
use crate::settings::ADMIN_SCOPE;

/// Why a token is refused. The messages are safe to show the client: they
/// name the failed check, never the token or a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url parts with JSON header and claims.
    #[error("the token is not a signed JWT (header.payload.signature)")]
    Malformed,
    /// `alg` is not RS256, ES256 or HS256 (`none` included).
    #[error("the token's algorithm is not accepted (RS256, ES256 or HS256)")]
    UnsupportedAlgorithm,
    /// The header has `crit`, which RFC 7515 says to refuse when not understood.
    #[error("the token has critical header parameters this service does not understand")]
    Critical,
    /// No key matches the token's `kid`.
    #[error("no configured key has the token's `kid`")]
    UnknownKey,
    /// The key found is bound to another algorithm (no algorithm confusion).
    #[error("the token's algorithm does not match its key")]
    AlgorithmMismatch,
    /// The signature does not verify.
    #[error("the token's signature is not valid")]
    BadSignature,
    /// No `exp`: tokens that never expire are refused.
    #[error("the token has no `exp` (expiry) claim")]
    NoExpiry,
    /// Past `exp`, beyond the leeway.
    #[error("the token has expired")]
    Expired,
    /// Before `nbf`, beyond the leeway.
    #[error("the token is not valid yet (`nbf`)")]
    NotYetValid,
    /// `iss` is not the configured issuer.
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    /// `aud` does not include the configured audience.
    #[error("the token is meant for another audience")]
    WrongAudience,
    /// No `sub`, so no user to own or see items.
    #[error("the token has no `sub` (subject) claim")]
    NoSubject,
}

/// Who is calling: the token's subject and whether it may act on every
/// user's items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    subject: Option<String>,
    admin: bool,
}

impl Caller {
    /// The caller when authentication is off: no subject, every right.
    pub fn anonymous_admin() -> Self {
        Self {
            subject: None,
            admin: true,
        }
    }

    /// A caller with `subject` that holds [`ADMIN_SCOPE`] or not.
    pub fn user(subject: impl Into<String>, admin: bool) -> Self {
        Self {
            subject: Some(subject.into()),
            admin,
        }
    }

    /// The token's `sub`; `None` when authentication is off.
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    /// Whether the caller sees and changes every user's items.
    pub fn is_admin(&self) -> bool {
        self.admin
    }

    /// The user whose items this caller is limited to: `None` for an
    /// administrator.
    pub fn owner(&self) -> Option<&str> {
        if self.admin { None } else { self.subject() }
    }
}

/// Checks tokens against the configured keys, issuer and audience.
#[derive(Debug)]
pub struct JwtValidator {
    keys: KeySet,
    issuer: String,
    audience: String,
    leeway: i64,
}

impl JwtValidator {
    /// A validator for tokens signed by `keys`, issued by `issuer` for
    /// `audience`, with `leeway` seconds of clock skew on `exp` and `nbf`.
    pub fn new(keys: KeySet, issuer: String, audience: String, leeway: u64) -> Self {
        Self {
            keys,
            issuer,
            audience,
            leeway: i64::try_from(leeway).unwrap_or(i64::MAX),
        }
    }

    /// The caller `token` speaks for, at `now` (seconds since the epoch).
    pub fn validate(&self, token: &str, now: i64) -> Result<Caller, TokenError> {
        let claims = self.verify(token)?;
        self.check_claims(&claims, now)
    }

    /// The claims of `token` if its signature is valid under the key its
    /// header names, with exactly that key's algorithm.
    pub(crate) fn verify(&self, token: &str) -> Result<Json, TokenError> {
        let header = raw_header(token)?;
        let algorithm = match header.get("alg").and_then(Json::as_str) {
            Some("RS256") => Algorithm::RS256,
            Some("ES256") => Algorithm::ES256,
            Some("HS256") => Algorithm::HS256,
            _ => return Err(TokenError::UnsupportedAlgorithm),
        };
        // RFC 7515 4.1.11: unknown critical parameters make a token
        // invalid, and this service understands none (`b64` included).
        if header.get("crit").is_some() {
            return Err(TokenError::Critical);
        }
        let kid = match header.get("kid") {
            None => None,
            Some(Json::String(kid)) => Some(kid.as_str()),
            Some(_) => return Err(TokenError::Malformed),
        };
        let key = self.keys.select(kid, algorithm)?;
        let mut validation = Validation::new(key.algorithm);
        // The claims are checked below against the caller's clock.
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        match jsonwebtoken::decode::<Json>(token, &key.key, &validation) {
            Ok(data) => Ok(data.claims),
            Err(e) => Err(match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenError::BadSignature,
                jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => TokenError::AlgorithmMismatch,
                jsonwebtoken::errors::ErrorKind::InvalidEcdsaKey
                | jsonwebtoken::errors::ErrorKind::InvalidRsaKey(_) => TokenError::BadSignature,
                _ => TokenError::Malformed,
            }),
        }
    }

    /// `exp`, `nbf`, `iss`, `aud` and `sub` (RFC 7519 4.1).
    fn check_claims(&self, claims: &Json, now: i64) -> Result<Caller, TokenError> {
        let now = now as f64;
        let leeway = self.leeway as f64;
        let expiry = numeric_date(claims.get("exp")).ok_or(TokenError::NoExpiry)?;
        if now > expiry + leeway {
            return Err(TokenError::Expired);
        }
        if let Some(not_before) = claims.get("nbf") {
            let not_before = numeric_date(Some(not_before)).ok_or(TokenError::Malformed)?;
            if now + leeway < not_before {
                return Err(TokenError::NotYetValid);
            }
        }
        if claims.get("iss").and_then(Json::as_str) != Some(self.issuer.as_str()) {
            return Err(TokenError::WrongIssuer);
        }
        let audience_matches = match claims.get("aud") {
            Some(Json::String(aud)) => *aud == self.audience,
            Some(Json::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(&self.audience)),
            _ => false,
        };
        if !audience_matches {
            return Err(TokenError::WrongAudience);
        }
        let subject = claims
            .get("sub")
            .and_then(Json::as_str)
            .filter(|s| !s.is_empty())
            .ok_or(TokenError::NoSubject)?;
        Ok(Caller::user(
            subject,
            scopes(claims).any(|s| s == ADMIN_SCOPE),
        ))
    }
}

/// A NumericDate (RFC 7519 2): seconds since the epoch, possibly with a
/// fraction.
fn numeric_date(value: Option<&Json>) -> Option<f64> {
    value.and_then(Json::as_f64).filter(|n| n.is_finite())
}

/// The granted scopes: OAuth's space-separated `scope` (RFC 8693 4.2),
/// or the `scp` list some identity providers send instead.
fn scopes(claims: &Json) -> impl Iterator<Item = &str> {
    let from_scope = claims
        .get("scope")
        .and_then(Json::as_str)
        .into_iter()
        .flat_map(str::split_whitespace);
    let from_scp: Box<dyn Iterator<Item = &str>> = match claims.get("scp") {
        Some(Json::String(s)) => Box::new(s.split_whitespace()),
        Some(Json::Array(list)) => Box::new(list.iter().filter_map(Json::as_str)),
        _ => Box::new(std::iter::empty()),
    };
    from_scope.chain(from_scp)
}

/// The JOSE header of a compact JWS, as JSON.
fn raw_header(token: &str) -> Result<Json, TokenError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| TokenError::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(json @ Json::Object(_)) => Ok(json),
        _ => Err(TokenError::Malformed),
    }
}

#[cfg(test)]
mod tests;
