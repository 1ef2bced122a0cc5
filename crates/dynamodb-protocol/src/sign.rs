//! SigV4 signing with smithy-rs `aws-sigv4`, itself sans-IO: the request's
//! parts in, the headers to add out.

use std::time::SystemTime;

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::{HeaderName, HeaderValue};
use item_model::StoreError;
use sansio::Request;

use crate::config::Credentials;

/// Adds `x-amz-date`, `authorization` and, with a session token,
/// `x-amz-security-token` to the request's headers (the secrets marked
/// sensitive, so `Debug` hides them). The `host` header is signed from the
/// URL's authority; transports send the same one.
pub(crate) fn sign_headers(
    credentials: &Credentials,
    region: &str,
    service: &str,
    request: &mut Request,
    time: SystemTime,
) -> Result<(), StoreError> {
    // Error texts from the signer could quote request parts; keep ours.
    let failed = || StoreError::Backend("could not sign the DynamoDB request".into());
    let identity: Identity = aws_credential_types::Credentials::new(
        credentials.access_key_id(),
        credentials.secret_access_key(),
        credentials.session_token().map(String::from),
        None,
        "edge-items",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|_| failed())?
        .into();
    let uri = request.uri().to_string();
    let headers = request
        .headers()
        .iter()
        .map(|(name, value)| Ok((name.as_str(), value.to_str().map_err(|_| failed())?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    let signable = SignableRequest::new(
        request.method().as_str(),
        uri.as_str(),
        headers.into_iter(),
        SignableBody::Bytes(request.body()),
    )
    .map_err(|_| failed())?;
    let (instructions, _signature) = sign(signable, &params).map_err(|_| failed())?.into_parts();
    let (added, _params) = instructions.into_parts();
    for header in added {
        let name = HeaderName::from_bytes(header.name().as_bytes()).map_err(|_| failed())?;
        let mut value = HeaderValue::from_str(header.value()).map_err(|_| failed())?;
        value.set_sensitive(name == http::header::AUTHORIZATION || name == "x-amz-security-token");
        request.headers_mut().insert(name, value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// 2015-08-30T12:36:00Z, the time of the AWS SigV4 test suite.
    fn suite_time() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160)
    }

    fn header<'a>(request: &'a Request, name: &str) -> &'a str {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// `post-vanilla` from the AWS SigV4 test suite (as shipped in
    /// smithy-rs `aws-sigv4/aws-signing-test-suite/v4/post-vanilla`).
    #[test]
    fn matches_the_post_vanilla_vector() {
        let credentials = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            None,
        )
        .unwrap();
        let mut request = http::Request::post("https://example.amazonaws.com/")
            .body(Vec::new())
            .unwrap();
        sign_headers(
            &credentials,
            "us-east-1",
            "service",
            &mut request,
            suite_time(),
        )
        .unwrap();
        assert_eq!(header(&request, "x-amz-date"), "20150830T123600Z");
        assert_eq!(
            header(&request, "authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
        );
    }

    /// `get-vanilla-with-session-token` from the same suite.
    #[test]
    fn matches_the_session_token_vector() {
        let token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
        let credentials = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            Some(token.into()),
        )
        .unwrap();
        let mut request = http::Request::get("https://example.amazonaws.com/")
            .body(Vec::new())
            .unwrap();
        sign_headers(
            &credentials,
            "us-east-1",
            "service",
            &mut request,
            suite_time(),
        )
        .unwrap();
        assert_eq!(header(&request, "x-amz-security-token"), token);
        assert_eq!(
            header(&request, "authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date;x-amz-security-token, \
             Signature=07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8"
        );
    }
}
