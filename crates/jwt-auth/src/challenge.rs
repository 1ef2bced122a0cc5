//! What a refused request is told (RFC 6750 3): the status and the
//! `WWW-Authenticate: Bearer` challenge.

use crate::TokenError;

/// Why a request is not authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// No bearer token at all (no header, or another scheme).
    Missing,
    /// The `Authorization` header is not one `Bearer <token>`.
    InvalidRequest(&'static str),
    /// A token was sent and is not acceptable.
    InvalidToken(TokenError),
}

/// A refused request: 401 with a challenge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.detail())]
pub struct AuthError {
    /// What went wrong.
    pub challenge: Challenge,
}

impl AuthError {
    pub(crate) fn new(challenge: Challenge) -> Self {
        Self { challenge }
    }

    /// The `WWW-Authenticate` value: the bare challenge when no token was
    /// sent, and an `error` code when one was (RFC 6750 3.1).
    pub fn www_authenticate(&self) -> String {
        match &self.challenge {
            Challenge::Missing => r#"Bearer realm="items""#.to_owned(),
            Challenge::InvalidRequest(_) => {
                r#"Bearer realm="items", error="invalid_request""#.to_owned()
            }
            Challenge::InvalidToken(why) => {
                format!(r#"Bearer realm="items", error="invalid_token", error_description="{why}""#)
            }
        }
    }

    /// A sentence for the problem's `detail`: what to do next.
    pub fn detail(&self) -> String {
        match &self.challenge {
            Challenge::Missing => {
                "this route needs a bearer token: send `Authorization: Bearer <JWT>`".to_owned()
            }
            Challenge::InvalidRequest(why) => {
                format!("{why}; send exactly one `Authorization: Bearer <JWT>` header")
            }
            Challenge::InvalidToken(why) => format!("{why}; get a new token and retry"),
        }
    }
}

/// The `WWW-Authenticate` value of a 403 for a valid token without the
/// right (RFC 6750 3.1 `insufficient_scope`).
pub fn insufficient_scope(scope: &str) -> String {
    format!(r#"Bearer realm="items", error="insufficient_scope", scope="{scope}""#)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_challenge_says_error_only_when_a_token_was_sent() {
        let missing = AuthError::new(Challenge::Missing);
        assert_eq!(missing.www_authenticate(), r#"Bearer realm="items""#);
        let expired = AuthError::new(Challenge::InvalidToken(TokenError::Expired));
        assert_eq!(
            expired.www_authenticate(),
            r#"Bearer realm="items", error="invalid_token", error_description="the token has expired""#
        );
        assert!(expired.detail().contains("get a new token"));
        assert_eq!(
            insufficient_scope("items:admin"),
            r#"Bearer realm="items", error="insufficient_scope", scope="items:admin""#
        );
    }
}
