//! Keys and tokens for the authentication cases: one JWKS with an RSA key
//! (generated per test process), a P-256 key (RFC 7515 A.3's published
//! example key) and an HS256 secret (random per process), and tokens minted
//! with `jsonwebtoken` as an identity provider would.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::RngCore;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};

/// The issuer and audience the servers of the authentication cases accept.
pub const ISSUER: &str = "https://issuer.conformance.test";
pub const AUDIENCE: &str = "edge-items-conformance";
/// The scope that acts on every user's items.
pub const ADMIN_SCOPE: &str = "items:admin";

/// RFC 7515 A.3's P-256 key pair (a published example, not a secret).
const EC_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
const EC_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
const EC_D: &str = "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI";

/// The signing side of the test identity provider.
pub struct Issuer {
    rsa: EncodingKey,
    rsa_n: Vec<u8>,
    rsa_e: Vec<u8>,
    ec: EncodingKey,
    hmac: Vec<u8>,
}

/// The process's identity provider (an RSA key takes a moment to make).
pub fn issuer() -> &'static Issuer {
    static ISSUER: OnceLock<Issuer> = OnceLock::new();
    ISSUER.get_or_init(|| {
        let mut rng = rsa::rand_core::OsRng;
        let private = rsa::RsaPrivateKey::new(&mut rng, 2048).expect("an RSA key");
        let der = private.to_pkcs1_der().expect("PKCS#1 DER");
        let mut hmac = vec![0u8; 32];
        rand::rng().fill_bytes(&mut hmac);
        Issuer {
            rsa: EncodingKey::from_rsa_der(der.as_bytes()),
            rsa_n: private.n().to_bytes_be(),
            rsa_e: private.e().to_bytes_be(),
            ec: EncodingKey::from_ec_der(&p256_pkcs8()),
            hmac,
        }
    })
}

/// RFC 7515 A.3's private key as PKCS#8 DER (RFC 5915 inside RFC 5208):
/// the fixed P-256 prefix, `d`, and the uncompressed public point.
fn p256_pkcs8() -> Vec<u8> {
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).expect("base64url");
    let mut der =
        hex_bytes("308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b0201010420");
    der.extend(decode(EC_D));
    der.extend(hex_bytes("a14403420004"));
    der.extend(decode(EC_X));
    der.extend(decode(EC_Y));
    der
}

fn hex_bytes(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Issuer {
    /// The JWKS document the servers are configured with.
    pub fn jwks(&self) -> String {
        json!({"keys": [
            {"kty": "RSA", "kid": "rs", "use": "sig", "alg": "RS256",
             "n": URL_SAFE_NO_PAD.encode(&self.rsa_n), "e": URL_SAFE_NO_PAD.encode(&self.rsa_e)},
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": EC_X, "y": EC_Y},
            {"kty": "oct", "kid": "hs", "alg": "HS256", "k": URL_SAFE_NO_PAD.encode(&self.hmac)},
        ]})
        .to_string()
    }

    /// The component settings of a server that requires these tokens, as
    /// `--env` arguments.
    pub fn server_args(&self) -> Vec<String> {
        [
            ("ITEMS_AUTH", "jwt".to_string()),
            ("ITEMS_JWT_JWKS", self.jwks()),
            ("ITEMS_JWT_ISSUER", ISSUER.to_string()),
            ("ITEMS_JWT_AUDIENCE", AUDIENCE.to_string()),
        ]
        .into_iter()
        .flat_map(|(name, value)| ["--env".to_string(), format!("{name}={value}")])
        .collect()
    }

    /// Valid claims for `subject`, for 10 minutes.
    pub fn claims(&self, subject: &str) -> Value {
        json!({"iss": ISSUER, "aud": AUDIENCE, "sub": subject, "iat": now(), "exp": now() + 600})
    }

    /// A token for `subject` (HS256).
    pub fn token(&self, subject: &str) -> String {
        self.sign(Algorithm::HS256, "hs", &self.claims(subject))
    }

    /// A token for `subject` with the admin scope (RS256).
    pub fn admin_token(&self, subject: &str) -> String {
        let mut claims = self.claims(subject);
        claims["scope"] = json!(format!("items:read {ADMIN_SCOPE}"));
        self.sign(Algorithm::RS256, "rs", &claims)
    }

    /// `claims` signed with `algorithm` by the key with `kid`.
    pub fn sign(&self, algorithm: Algorithm, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(algorithm);
        header.kid = Some(kid.to_owned());
        let key = match algorithm {
            Algorithm::RS256 => &self.rsa,
            Algorithm::ES256 => &self.ec,
            _ => &EncodingKey::from_secret(&self.hmac).expect("the secret"),
        };
        jsonwebtoken::encode(&header, claims, key).expect("a token")
    }

    /// `claims` signed with HS256 using `secret` as the key.
    pub fn sign_hmac_with(&self, kid: &str, secret: &[u8], claims: &Value) -> String {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kid.to_owned());
        let key = EncodingKey::from_secret(secret).expect("a secret");
        jsonwebtoken::encode(&header, claims, &key).expect("a token")
    }

    /// The RSA public key's modulus: what an attacker would use as an HMAC
    /// secret in an algorithm-confusion attack.
    pub fn rsa_public_bytes(&self) -> &[u8] {
        &self.rsa_n
    }

    /// Secret material whose appearance in a log or response is a leak.
    pub fn secrets(&self) -> Vec<String> {
        vec![URL_SAFE_NO_PAD.encode(&self.hmac), EC_D.to_string()]
    }
}

/// An unsigned token (`alg: none`) with these claims.
pub fn unsigned(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT","kid":"hs"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}
