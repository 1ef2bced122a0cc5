//! The settings, read from the component's environment (our host's
//! `--env`, `wasmtime serve --env`, Spin variables or `environment`).

use crate::keys::KeySet;
use crate::token::{Caller, JwtValidator};
use crate::{AuthError, Challenge};

/// `none` (anyone may call; for loopback and tests) or `jwt`.
pub const AUTH: &str = "ITEMS_AUTH";
/// The JWKS document (RFC 7517) whose keys sign accepted tokens.
pub const JWKS: &str = "ITEMS_JWT_JWKS";
/// The `iss` every token must carry.
pub const ISSUER: &str = "ITEMS_JWT_ISSUER";
/// The `aud` every token must carry (this service's identifier).
pub const AUDIENCE: &str = "ITEMS_JWT_AUDIENCE";
/// Clock skew allowed on `exp` and `nbf`, in seconds.
pub const LEEWAY: &str = "ITEMS_JWT_LEEWAY_SECONDS";
/// The default of [`LEEWAY`]: enough for clocks that are not in sync,
/// short against replay of an expired token.
pub const DEFAULT_LEEWAY_SECONDS: u64 = 30;
/// The OAuth scope that sees and changes every user's items.
pub const ADMIN_SCOPE: &str = "items:admin";

/// Why the settings cannot be used. Each message names the setting to fix
/// and never quotes a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// [`AUTH`] is neither `none` nor `jwt`; carries what it was.
    #[error("{AUTH} must be `none` or `jwt`, not `{0}`")]
    UnknownMode(String),
    /// JWT mode without this required setting (names the variable).
    #[error("{AUTH}=jwt needs {0}")]
    Missing(&'static str),
    /// The JWKS document cannot be parsed or holds no usable key.
    #[error("{JWKS} is not usable: {0}")]
    Jwks(String),
    /// [`LEEWAY`] is not whole seconds from 0 to 300.
    #[error("{LEEWAY} must be a number of seconds from 0 to 300")]
    Leeway,
}

/// Who may call, as configured.
#[derive(Debug)]
pub enum Authenticator {
    /// `ITEMS_AUTH=none` or unset: every caller acts as an administrator.
    Open,
    /// `ITEMS_AUTH=jwt`: a valid bearer token is required.
    Jwt(JwtValidator),
}

impl Authenticator {
    /// From `lookup` (a variable's value, `None` when unset or blank).
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mode = lookup(AUTH).map(|m| m.trim().to_ascii_lowercase());
        match mode.as_deref() {
            None | Some("none") => Ok(Authenticator::Open),
            Some("jwt") => {
                let jwks = lookup(JWKS).ok_or(ConfigError::Missing(JWKS))?;
                let issuer = lookup(ISSUER).ok_or(ConfigError::Missing(ISSUER))?;
                let audience = lookup(AUDIENCE).ok_or(ConfigError::Missing(AUDIENCE))?;
                let leeway = match lookup(LEEWAY) {
                    None => DEFAULT_LEEWAY_SECONDS,
                    Some(text) => text
                        .trim()
                        .parse::<u64>()
                        .ok()
                        .filter(|s| *s <= 300)
                        .ok_or(ConfigError::Leeway)?,
                };
                let keys = KeySet::from_json(&jwks).map_err(ConfigError::Jwks)?;
                Ok(Authenticator::Jwt(JwtValidator::new(
                    keys, issuer, audience, leeway,
                )))
            }
            Some(other) => Err(ConfigError::UnknownMode(other.to_owned())),
        }
    }

    /// Whether a token is required.
    pub fn is_required(&self) -> bool {
        matches!(self, Authenticator::Jwt(_))
    }

    /// The caller of a request with this `Authorization` header (all of
    /// its values: more than one is malformed), at `now` (seconds since
    /// the Unix epoch).
    pub fn authenticate(&self, authorization: &[&str], now: i64) -> Result<Caller, AuthError> {
        let validator = match self {
            Authenticator::Open => return Ok(Caller::anonymous_admin()),
            Authenticator::Jwt(validator) => validator,
        };
        let token = match authorization {
            [] => return Err(AuthError::new(Challenge::Missing)),
            [one] => bearer_token(one)?,
            _ => {
                return Err(AuthError::new(Challenge::InvalidRequest(
                    "more than one Authorization header",
                )));
            }
        };
        validator
            .validate(token, now)
            .map_err(|e| AuthError::new(Challenge::InvalidToken(e)))
    }
}

/// The token of `Bearer <token>` (the scheme is case-insensitive, RFC 9110).
fn bearer_token(header: &str) -> Result<&str, AuthError> {
    let header = header.trim();
    let (scheme, token) = header.split_once(' ').unwrap_or((header, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        // Another scheme (Basic, ...) is no attempt at a bearer token.
        return Err(AuthError::new(Challenge::Missing));
    }
    let token = token.trim();
    if token.is_empty() || token.contains(char::is_whitespace) {
        return Err(AuthError::new(Challenge::InvalidRequest(
            "the Authorization header is not `Bearer <token>`",
        )));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    const JWKS_ONE_OCT: &str =
        r#"{"keys":[{"kty":"oct","kid":"k1","k":"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"}]}"#;

    #[test]
    fn unset_or_none_is_open() {
        assert!(matches!(
            Authenticator::from_env(env(&[])),
            Ok(Authenticator::Open)
        ));
        let open = Authenticator::from_env(env(&[(AUTH, "None")])).unwrap();
        let caller = open.authenticate(&[], 0).unwrap();
        assert!(caller.is_admin());
        assert_eq!(caller.subject(), None);
    }

    #[test]
    fn jwt_needs_every_setting_and_names_the_missing_one() {
        let missing = Authenticator::from_env(env(&[(AUTH, "jwt")])).unwrap_err();
        assert_eq!(missing, ConfigError::Missing(JWKS));
        assert!(missing.to_string().contains("ITEMS_JWT_JWKS"));
        let missing = Authenticator::from_env(env(&[(AUTH, "jwt"), (JWKS, JWKS_ONE_OCT)]));
        assert_eq!(missing.unwrap_err(), ConfigError::Missing(ISSUER));
        let missing = Authenticator::from_env(env(&[
            (AUTH, "jwt"),
            (JWKS, JWKS_ONE_OCT),
            (ISSUER, "https://issuer.example"),
        ]));
        assert_eq!(missing.unwrap_err(), ConfigError::Missing(AUDIENCE));
        let unknown = Authenticator::from_env(env(&[(AUTH, "basic")])).unwrap_err();
        assert!(unknown.to_string().contains("ITEMS_AUTH"));
    }

    #[test]
    fn a_broken_jwks_or_leeway_is_refused_without_quoting_keys() {
        let full = |jwks: &'static str, leeway: &'static str| {
            Authenticator::from_env(move |name: &str| match name {
                AUTH => Some("jwt".into()),
                JWKS => Some(jwks.into()),
                ISSUER => Some("iss".into()),
                AUDIENCE => Some("aud".into()),
                LEEWAY => Some(leeway.into()).filter(|l: &String| !l.is_empty()),
                _ => None,
            })
        };
        let error = full("{not json", "").unwrap_err();
        assert!(matches!(error, ConfigError::Jwks(_)), "{error}");
        let error = full(r#"{"keys":[]}"#, "").unwrap_err();
        assert!(error.to_string().contains("no key"), "{error}");
        let error = full(JWKS_ONE_OCT, "a day").unwrap_err();
        assert_eq!(error, ConfigError::Leeway);
        let secret_in_error = full(
            r#"{"keys":[{"kty":"oct","kid":"k1","k":"!!not-base64url!!"}]}"#,
            "",
        )
        .unwrap_err();
        assert!(!secret_in_error.to_string().contains("not-base64url"));
        assert!(full(JWKS_ONE_OCT, "10").unwrap().is_required());
    }

    #[test]
    fn the_header_must_be_one_bearer_token() {
        let auth = Authenticator::from_env(env(&[
            (AUTH, "jwt"),
            (JWKS, JWKS_ONE_OCT),
            (ISSUER, "iss"),
            (AUDIENCE, "aud"),
        ]))
        .unwrap();
        let challenge = |header: &[&str]| auth.authenticate(header, 0).unwrap_err().challenge;
        assert_eq!(challenge(&[]), Challenge::Missing);
        assert_eq!(challenge(&["Basic dXNlcjpwYXNz"]), Challenge::Missing);
        assert!(matches!(
            challenge(&["Bearer"]),
            Challenge::InvalidRequest(_)
        ));
        assert!(matches!(
            challenge(&["Bearer a b"]),
            Challenge::InvalidRequest(_)
        ));
        assert!(matches!(
            challenge(&["Bearer a", "Bearer b"]),
            Challenge::InvalidRequest(_)
        ));
        assert!(matches!(
            challenge(&["bearer not.a.jwt"]),
            Challenge::InvalidToken(_)
        ));
    }
}
