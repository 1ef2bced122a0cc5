//! Bearer-token authentication (RFC 6750) with JSON Web Tokens (RFC 7519,
//! signed per RFC 7515), for the api component: the same `.wasm` enforces
//! it under our host, `wasmtime serve` and Spin, so the rules live in this
//! IO-free crate and the component only hands it the `Authorization`
//! header, its environment and the clock.
//!
//! - [`Authenticator::from_env`]: the settings ([`AUTH`], [`JWKS`],
//!   [`ISSUER`], [`AUDIENCE`], [`LEEWAY`]); a bad setting is a
//!   [`ConfigError`] naming it, never an open door.
//! - [`Authenticator::authenticate`]: a request's `Authorization` header to
//!   a [`Caller`] (its `sub` and whether it holds [`ADMIN_SCOPE`]), or an
//!   [`AuthError`] that says which challenge to answer with.
//!
//! Keys come from a JWKS document (RFC 7517) and are chosen by `kid`:
//! RSA keys verify `RS256`, P-256 keys `ES256`, `oct` keys `HS256`. A token
//! must name exactly its key's algorithm, so `alg: none` and algorithm
//! confusion (an RSA public key used as an HMAC secret) are refused. The
//! signatures are checked by `jsonwebtoken` on RustCrypto (rsa, p256,
//! hmac), not by hand-written primitives; the claims (`exp`, `nbf`, `iss`,
//! `aud`, `sub`) are checked here, against a clock the caller passes in.

mod challenge;
mod keys;
mod settings;
mod token;

pub use challenge::{AuthError, Challenge, insufficient_scope};
pub use keys::KeySet;
pub use settings::{
    ADMIN_SCOPE, AUDIENCE, AUTH, Authenticator, ConfigError, DEFAULT_LEEWAY_SECONDS, ISSUER, JWKS,
    LEEWAY,
};
pub use token::{Caller, JwtValidator, TokenError};
