//! The verification keys: a JWKS document (RFC 7517), each usable key bound
//! to the one algorithm it may verify.

use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey};

/// The shortest HS256 secret RFC 7518 (3.2) allows: the hash's size.
const MIN_HMAC_SECRET_BYTES: usize = 32;

/// One key and the only algorithm it verifies.
pub(crate) struct VerificationKey {
    pub kid: Option<String>,
    pub algorithm: Algorithm,
    pub key: DecodingKey,
}

/// The keys of a JWKS document that can verify `RS256`, `ES256` or `HS256`
/// tokens. Keys for encryption or other algorithms are left out (an
/// identity provider's JWKS often lists them too).
pub struct KeySet {
    pub(crate) keys: Vec<VerificationKey>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Key ids and algorithms only: an `oct` key is a secret.
        let keys: Vec<_> = self
            .keys
            .iter()
            .map(|k| (k.kid.as_deref(), k.algorithm))
            .collect();
        f.debug_struct("KeySet").field("keys", &keys).finish()
    }
}

impl KeySet {
    /// Parses a JWKS document. Errors say what is wrong and where, never
    /// quoting key material.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let set: JwkSet = serde_json::from_str(text).map_err(|e| {
            format!(
                "not a JWKS document (JSON with a `keys` array of JWKs): {} at line {} column {}",
                match e.classify() {
                    serde_json::error::Category::Syntax | serde_json::error::Category::Eof =>
                        "malformed JSON",
                    _ => "unexpected content",
                },
                e.line(),
                e.column()
            )
        })?;
        let mut keys = Vec::new();
        for (index, jwk) in set.keys.iter().enumerate() {
            let name = jwk
                .common
                .key_id
                .as_deref()
                .map_or_else(|| format!("key #{index}"), |kid| format!("key `{kid}`"));
            if let Some(key) = usable(jwk, &name)? {
                keys.push(key);
            }
        }
        if keys.is_empty() {
            return Err("no key usable for RS256, ES256 or HS256 (RSA, P-256 EC or oct keys with `use` absent or `sig`)".into());
        }
        Ok(Self { keys })
    }

    /// The key that verifies a token whose header names `kid` and
    /// `algorithm`.
    pub(crate) fn select(
        &self,
        kid: Option<&str>,
        algorithm: Algorithm,
    ) -> Result<&VerificationKey, crate::TokenError> {
        let candidates: Vec<&VerificationKey> = match kid {
            Some(kid) => self
                .keys
                .iter()
                .filter(|k| k.kid.as_deref() == Some(kid))
                .collect(),
            // Without a `kid`, only a set of one key is unambiguous.
            None if self.keys.len() == 1 => self.keys.iter().collect(),
            None => return Err(crate::TokenError::UnknownKey),
        };
        if candidates.is_empty() {
            return Err(crate::TokenError::UnknownKey);
        }
        candidates
            .into_iter()
            .find(|k| k.algorithm == algorithm)
            .ok_or(crate::TokenError::AlgorithmMismatch)
    }
}

/// The key `jwk` describes, if it is one this service verifies with.
fn usable(jwk: &Jwk, name: &str) -> Result<Option<VerificationKey>, String> {
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return Ok(None);
    }
    let declared = jwk.common.key_algorithm;
    let algorithm = match (&jwk.algorithm, declared) {
        (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
        (AlgorithmParameters::EllipticCurve(params), None | Some(KeyAlgorithm::ES256))
            if params.curve == EllipticCurve::P256 =>
        {
            Algorithm::ES256
        }
        (AlgorithmParameters::OctetKey(_), None | Some(KeyAlgorithm::HS256)) => Algorithm::HS256,
        _ => return Ok(None),
    };
    let key = DecodingKey::from_jwk(jwk)
        .map_err(|_| format!("{name} is not a valid {} key", family(algorithm)))?;
    if algorithm == Algorithm::HS256 {
        let secret = key
            .try_get_as_bytes()
            .map_err(|_| format!("{name} is not a valid oct key"))?;
        if secret.len() < MIN_HMAC_SECRET_BYTES {
            return Err(format!(
                "{name} is an HS256 secret of {} bytes; RFC 7518 requires at least {MIN_HMAC_SECRET_BYTES}",
                secret.len()
            ));
        }
    }
    Ok(Some(VerificationKey {
        kid: jwk.common.key_id.clone(),
        algorithm,
        key,
    }))
}

fn family(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::RS256 => "RSA",
        Algorithm::ES256 => "P-256 EC",
        _ => "oct",
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// RFC 7515 A.2's RSA key, public half.
    pub(crate) const RFC7515_RSA: &str = r#"{"kty":"RSA","kid":"rsa1","n":"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ","e":"AQAB"}"#;
    /// RFC 7515 A.3's P-256 key, public half.
    pub(crate) const RFC7515_EC: &str = r#"{"kty":"EC","kid":"ec1","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;
    /// RFC 7515 A.1's HMAC key.
    pub(crate) const RFC7515_OCT: &str = r#"{"kty":"oct","kid":"hs1","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}"#;

    fn set(keys: &[&str]) -> Result<KeySet, String> {
        KeySet::from_json(&format!(r#"{{"keys":[{}]}}"#, keys.join(",")))
    }

    #[test]
    fn each_key_type_gets_its_one_algorithm() {
        let keys = set(&[RFC7515_RSA, RFC7515_EC, RFC7515_OCT]).unwrap();
        let algorithms: Vec<_> = keys.keys.iter().map(|k| k.algorithm).collect();
        assert_eq!(
            algorithms,
            [Algorithm::RS256, Algorithm::ES256, Algorithm::HS256]
        );
        assert!(keys.select(Some("rsa1"), Algorithm::RS256).is_ok());
        // An RSA public key never verifies an HMAC token (RFC 8725 3.1).
        assert!(matches!(
            keys.select(Some("rsa1"), Algorithm::HS256),
            Err(crate::TokenError::AlgorithmMismatch)
        ));
        assert!(matches!(
            keys.select(Some("nope"), Algorithm::RS256),
            Err(crate::TokenError::UnknownKey)
        ));
        assert!(matches!(
            keys.select(None, Algorithm::RS256),
            Err(crate::TokenError::UnknownKey)
        ));
        let single = set(&[RFC7515_RSA]).unwrap();
        assert!(single.select(None, Algorithm::RS256).is_ok());
        let debug = format!("{keys:?}");
        assert!(debug.contains("hs1") && !debug.contains("AyM1"), "{debug}");
    }

    #[test]
    fn keys_for_other_uses_and_algorithms_are_left_out() {
        let encryption = RFC7515_RSA.replace(r#""kty":"RSA""#, r#""kty":"RSA","use":"enc""#);
        let rs512 = RFC7515_RSA.replace(r#""kty":"RSA""#, r#""kty":"RSA","alg":"RS512""#);
        let p384 = r#"{"kty":"EC","crv":"P-384","x":"AAAA","y":"AAAA"}"#;
        let keys = set(&[&encryption, &rs512, p384, RFC7515_EC]).unwrap();
        assert_eq!(keys.keys.len(), 1);
        let error = set(&[&encryption]).unwrap_err();
        assert!(error.contains("no key usable"), "{error}");
    }

    #[test]
    fn short_secrets_and_broken_documents_are_refused_without_their_content() {
        let short = r#"{"kty":"oct","kid":"short","k":"c2hvcnQ"}"#;
        let error = set(&[short]).unwrap_err();
        assert!(
            error.contains("`short`") && error.contains("at least 32"),
            "{error}"
        );
        let error = KeySet::from_json(r#"{"keys":[{"kty":"oct","k":987654321}]}"#).unwrap_err();
        assert!(!error.contains("987654321"), "{error}");
        let error = KeySet::from_json(r#"{"keys":"k-material"}"#).unwrap_err();
        assert!(
            error.contains("not a JWKS document") && !error.contains("k-material"),
            "{error}"
        );
        let error = KeySet::from_json("{").unwrap_err();
        assert!(error.contains("malformed JSON"), "{error}");
    }
}
