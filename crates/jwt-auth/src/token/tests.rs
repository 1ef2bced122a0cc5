//! The validator with the example vectors of RFC 7515 (appendix A) for the
//! signatures, and tokens minted here for the claims.

use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

use super::*;

/// RFC 7515 A.1: HS256 (its header carries a CRLF).
const RFC7515_A1: &str = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
/// RFC 7515 A.2: RS256.
const RFC7515_A2: &str = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";
/// RFC 7515 A.3: ES256.
const RFC7515_A3: &str = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";

fn validator(jwk: &str) -> JwtValidator {
    let keys = KeySet::from_json(&format!(r#"{{"keys":[{jwk}]}}"#)).expect("the key set");
    JwtValidator::new(
        keys,
        "https://issuer.example".into(),
        "items-api".into(),
        30,
    )
}

/// Flips one character of the signature.
fn tampered(token: &str) -> String {
    let mut token = token.to_owned();
    let last = token.pop().expect("a token");
    token.push(if last == 'A' { 'B' } else { 'A' });
    token
}

#[test]
fn the_rfc_7515_examples_verify_and_tampering_does_not() {
    for (jwk, token) in [
        (crate::keys::tests::RFC7515_OCT, RFC7515_A1),
        (crate::keys::tests::RFC7515_RSA, RFC7515_A2),
        (crate::keys::tests::RFC7515_EC, RFC7515_A3),
    ] {
        let validator = validator(jwk);
        let claims = validator.verify(token).expect("the RFC example verifies");
        assert_eq!(claims["iss"], "joe");
        assert_eq!(claims["http://example.com/is_root"], true);
        assert_eq!(
            validator.verify(&tampered(token)),
            Err(TokenError::BadSignature)
        );
        // The examples have no audience, so they never get through.
        assert!(validator.validate(token, 1_300_819_300).is_err());
    }
}

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

fn hs256_validator() -> JwtValidator {
    validator(r#"{"kty":"oct","kid":"hs","k":"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"}"#)
}

fn mint(claims: serde_json::Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("hs".into());
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(SECRET).unwrap())
        .expect("a token")
}

const NOW: i64 = 1_900_000_000;

fn good_claims() -> serde_json::Value {
    json!({
        "iss": "https://issuer.example",
        "aud": "items-api",
        "sub": "user-1",
        "exp": NOW + 600,
        "nbf": NOW - 10,
    })
}

#[test]
fn a_good_token_names_its_caller_and_scopes() {
    let validator = hs256_validator();
    let caller = validator.validate(&mint(good_claims()), NOW).unwrap();
    assert_eq!(caller, Caller::user("user-1", false));
    assert_eq!(caller.owner(), Some("user-1"));
    let mut claims = good_claims();
    claims["scope"] = json!("items:read items:admin");
    claims["aud"] = json!(["other", "items-api"]);
    let admin = validator.validate(&mint(claims), NOW).unwrap();
    assert!(admin.is_admin());
    assert_eq!(admin.owner(), None);
    let mut claims = good_claims();
    claims["scp"] = json!(["items:admin"]);
    assert!(validator.validate(&mint(claims), NOW).unwrap().is_admin());
}

#[test]
fn each_claim_is_checked_with_the_leeway() {
    let validator = hs256_validator();
    let with = |key: &str, value: serde_json::Value| {
        let mut claims = good_claims();
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(key);
        } else {
            claims[key] = value;
        }
        validator.validate(&mint(claims), NOW)
    };
    assert_eq!(with("exp", json!(NOW - 31)), Err(TokenError::Expired));
    assert!(with("exp", json!(NOW - 29)).is_ok(), "within the leeway");
    assert_eq!(with("exp", json!(null)), Err(TokenError::NoExpiry));
    assert_eq!(with("exp", json!("tomorrow")), Err(TokenError::NoExpiry));
    assert_eq!(with("nbf", json!(NOW + 31)), Err(TokenError::NotYetValid));
    assert!(with("nbf", json!(NOW + 29)).is_ok(), "within the leeway");
    assert_eq!(
        with("iss", json!("https://evil.example")),
        Err(TokenError::WrongIssuer)
    );
    assert_eq!(with("iss", json!(null)), Err(TokenError::WrongIssuer));
    assert_eq!(with("aud", json!("other")), Err(TokenError::WrongAudience));
    assert_eq!(
        with("aud", json!(["a", "b"])),
        Err(TokenError::WrongAudience)
    );
    assert_eq!(with("aud", json!(null)), Err(TokenError::WrongAudience));
    assert_eq!(with("sub", json!("")), Err(TokenError::NoSubject));
    assert_eq!(with("sub", json!(null)), Err(TokenError::NoSubject));
}

#[test]
fn unsigned_and_confused_tokens_are_refused() {
    let validator = hs256_validator();
    let token = mint(good_claims());
    let (_, rest) = token.split_once('.').unwrap();
    let (payload, _) = rest.split_once('.').unwrap();
    // alg: none, with and without a signature part.
    let none = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"hs"}"#);
    for forged in [format!("{none}.{payload}."), format!("{none}.{payload}")] {
        assert!(validator.validate(&forged, NOW).is_err(), "{forged}");
    }
    // Critical parameters this service does not understand.
    let crit = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","kid":"hs","crit":["b64"],"b64":false}"#);
    assert_eq!(
        validator.validate(&format!("{crit}.{payload}.sig"), NOW),
        Err(TokenError::Critical)
    );
    // The RSA public key used as an HMAC secret (RFC 8725 2.1).
    let rsa = validator_with_rsa();
    let confused = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("rsa1".into());
        let public = URL_SAFE_NO_PAD.decode(RSA_N).unwrap();
        jsonwebtoken::encode(
            &header,
            &good_claims(),
            &EncodingKey::from_secret(&public).unwrap(),
        )
        .unwrap()
    };
    assert_eq!(
        rsa.validate(&confused, NOW),
        Err(TokenError::AlgorithmMismatch)
    );
    // An unknown kid, a wrong secret, garbage.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("other".into());
    let unknown = jsonwebtoken::encode(
        &header,
        &good_claims(),
        &EncodingKey::from_secret(SECRET).unwrap(),
    )
    .unwrap();
    assert_eq!(
        validator.validate(&unknown, NOW),
        Err(TokenError::UnknownKey)
    );
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("hs".into());
    let wrong = jsonwebtoken::encode(
        &header,
        &good_claims(),
        &EncodingKey::from_secret(b"another secret another secret 32").unwrap(),
    )
    .unwrap();
    assert_eq!(
        validator.validate(&wrong, NOW),
        Err(TokenError::BadSignature)
    );
    for garbage in ["", "a.b", "a.b.c.d", "!!.!!.!!", "e30.e30.e30"] {
        assert!(validator.validate(garbage, NOW).is_err(), "{garbage}");
    }
}

const RSA_N: &str = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";

fn validator_with_rsa() -> JwtValidator {
    validator(crate::keys::tests::RFC7515_RSA)
}
