//! Who is calling: the bearer token of an items request checked with
//! `jwt-auth`, under the settings in the component's environment
//! (`ITEMS_AUTH`, `ITEMS_JWT_*`), read once per instance. A bad setting
//! fails every items request with a 500 naming it; it never opens the API.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use jwt_auth::{AuthError, Authenticator, ConfigError};

pub use jwt_auth::Caller;

use crate::http::Request;
use crate::problem::{Kind, Problem};

/// The configured authenticator, or why there is none.
fn authenticator() -> &'static Result<Authenticator, ConfigError> {
    static AUTHENTICATOR: OnceLock<Result<Authenticator, ConfigError>> = OnceLock::new();
    AUTHENTICATOR.get_or_init(|| {
        Authenticator::from_env(|name| {
            std::env::var(name)
                .ok()
                .filter(|value| !value.trim().is_empty())
        })
    })
}

/// The caller of `request`, or the problem to answer instead.
pub fn caller(request: &Request) -> Result<Caller, Problem> {
    let authenticator = authenticator().as_ref().map_err(misconfigured)?;
    let headers = request.header_values("authorization");
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    authenticator
        .authenticate(&headers, now())
        .map_err(unauthenticated)
}

/// Seconds since the epoch by the runtime's wall clock.
fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// 500: the service cannot decide who may call. The setting is named, its
/// value is not (it may hold a secret); the operator's log gets the same.
pub fn misconfigured(error: &ConfigError) -> Problem {
    eprintln!("api: authentication is misconfigured: {error}");
    Problem::new(
        Kind::AuthMisconfigured,
        format!(
            "the service's authentication settings are invalid ({error}); the operator must fix them"
        ),
    )
}

/// 401 with the challenge RFC 6750 prescribes.
pub fn unauthenticated(error: AuthError) -> Problem {
    Problem::new(Kind::Unauthenticated, error.detail()).with_challenge(error.www_authenticate())
}

/// 403 for a valid token that lacks the right: what was refused, and the
/// scope that would allow it.
pub fn forbidden(what: impl Into<String>) -> Problem {
    Problem::new(Kind::Forbidden, what)
        .with_challenge(jwt_auth::insufficient_scope(jwt_auth::ADMIN_SCOPE))
}
