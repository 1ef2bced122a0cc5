//! The authentication cases (docs/SECURITY.md): a server started with
//! `ITEMS_AUTH=jwt` refuses anonymous and forged requests and keeps each
//! user to its own items, on every runtime and store. Tokens come from
//! [`crate::tokens`].

use jsonwebtoken::Algorithm;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Backend, Response, Server};
use crate::tokens::{self, issuer};

/// A server that requires tokens from the test issuer.
fn secured(backend: Backend) -> Server {
    let args = issuer().server_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start_with(backend, &args)
}

/// A request as `token`'s bearer (or anonymous with `None`).
async fn call(
    s: &Server,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Response {
    match token {
        Some(token) => {
            let bearer = format!("Bearer {token}");
            s.send(method, path, body, &[("authorization", &bearer)])
                .await
        }
        None => s.send(method, path, body, &[]).await,
    }
}

/// Asserts a 401 with the bare challenge (no token was sent) or with
/// `error="invalid_token"` (one was).
#[track_caller]
fn assert_unauthenticated(r: &Response, token_sent: bool) {
    r.assert_problem(401);
    assert_eq!(
        r.json["type"], "urn:edge-items:problem:unauthenticated",
        "{}",
        r.text
    );
    let challenge = r.header("www-authenticate").unwrap_or_default();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    assert_eq!(
        challenge.contains(r#"error="invalid_token""#),
        token_sent,
        "{challenge}"
    );
}

pub async fn auth_refuses_anonymous_and_forged_tokens(backend: Backend) {
    let s = secured(backend);
    let idp = issuer();
    // The description and the health check stay open.
    assert_eq!(s.get("/healthz").await.status, StatusCode::OK);
    assert_eq!(s.get("/openapi.json").await.status, StatusCode::OK);

    // No token, on every items route; nothing is written.
    let item = json!({"id": "anon", "name": "n"});
    for (method, path, body) in [
        (Method::GET, "/items/anon", None),
        (Method::POST, "/items", Some(&item)),
        (Method::PUT, "/items/anon", Some(&item)),
        (Method::PATCH, "/items/anon", Some(&item)),
        (Method::DELETE, "/items/anon", None),
        (Method::POST, "/items/anon/likes", None),
        (Method::GET, "/items?userId=u", None),
        (Method::POST, "/items:batch", Some(&json!({"put": [item]}))),
    ] {
        let r = call(&s, None, method.clone(), path, body).await;
        assert_unauthenticated(&r, false);
        assert_eq!(
            r.header("www-authenticate"),
            Some(r#"Bearer realm="items""#),
            "{method} {path}"
        );
    }
    let basic = s
        .send(
            Method::GET,
            "/items/anon",
            None,
            &[("authorization", "Basic dTpw")],
        )
        .await;
    assert_unauthenticated(&basic, false);

    // Forged, broken and misdirected tokens.
    let claims = idp.claims("mallory");
    let with = |key: &str, value: Value| {
        let mut claims = claims.clone();
        claims[key] = value;
        claims
    };
    let mut forged = vec![
        ("not a JWT", "not-a-jwt".to_string()),
        ("alg none", tokens::unsigned(&claims)),
        (
            "wrong secret",
            idp.sign_hmac_with("hs", b"0123456789abcdef0123456789abcdef", &claims),
        ),
        (
            "RSA public key as HMAC secret",
            idp.sign_hmac_with("rs", idp.rsa_public_bytes(), &claims),
        ),
        ("unknown kid", idp.sign(Algorithm::RS256, "other", &claims)),
        (
            "expired",
            idp.sign(
                Algorithm::HS256,
                "hs",
                &with("exp", json!(tokens::now() - 3600)),
            ),
        ),
        (
            "not yet valid",
            idp.sign(
                Algorithm::HS256,
                "hs",
                &with("nbf", json!(tokens::now() + 3600)),
            ),
        ),
        (
            "wrong issuer",
            idp.sign(
                Algorithm::ES256,
                "ec",
                &with("iss", json!("https://evil.test")),
            ),
        ),
        (
            "wrong audience",
            idp.sign(Algorithm::RS256, "rs", &with("aud", json!("another-api"))),
        ),
    ];
    let mut tampered = idp.token("mallory");
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    forged.push(("tampered signature", tampered));
    for (what, token) in &forged {
        let r = call(&s, Some(token), Method::POST, "/items", Some(&item)).await;
        assert_unauthenticated(&r, true);
        assert!(
            !r.text.contains(token.as_str()),
            "{what}: the token is echoed"
        );
        let r = call(&s, Some(token), Method::GET, "/items/anon", None).await;
        assert_unauthenticated(&r, true);
    }

    // Each accepted algorithm gets through; nothing above was written.
    for (algorithm, kid) in [
        (Algorithm::RS256, "rs"),
        (Algorithm::ES256, "ec"),
        (Algorithm::HS256, "hs"),
    ] {
        let token = idp.sign(algorithm, kid, &idp.claims("alice"));
        let r = call(&s, Some(&token), Method::GET, "/items/anon", None).await;
        r.assert_problem(404);
    }
    let admin = idp.admin_token("root");
    let r = call(&s, Some(&admin), Method::GET, "/items/anon", None).await;
    r.assert_problem(404);
}

pub async fn auth_keeps_users_apart(backend: Backend) {
    let s = secured(backend);
    let idp = issuer();
    let alice = idp.token("alice");
    let bob = idp.token("bob");
    let admin = idp.admin_token("root");
    let mut seen = Vec::new();
    let mut as_user = async |token: &str, method: Method, path: &str, body: Option<Value>| {
        let r = call(&s, Some(token), method, path, body.as_ref()).await;
        seen.push(r.text.clone());
        r
    };

    // Creating: the caller's own items only.
    let r = as_user(
        &alice,
        Method::POST,
        "/items",
        Some(json!({"id": "a1", "name": "mine", "status": "active"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        r.json["userId"], "alice",
        "a body without userId gets the caller's"
    );
    let a1_version = r.json["version"].clone();
    let r = as_user(
        &alice,
        Method::POST,
        "/items",
        Some(json!({"id": "a2", "userId": "alice", "status": "active"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = as_user(
        &alice,
        Method::POST,
        "/items",
        Some(json!({"id": "x", "userId": "bob"})),
    )
    .await;
    r.assert_problem(403);
    assert!(
        r.header("www-authenticate")
            .unwrap_or_default()
            .contains("insufficient_scope"),
        "{:?}",
        r.header("www-authenticate")
    );
    let r = as_user(
        &bob,
        Method::PUT,
        "/items/b1",
        Some(json!({"name": "bob's", "status": "active"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.json["userId"], "bob");

    // Another user's item is absent to bob, on every route, and unchanged.
    let absent = [
        (Method::GET, "/items/a1", None),
        (Method::PUT, "/items/a1", Some(json!({"name": "stolen"}))),
        (Method::PATCH, "/items/a1", Some(json!({"name": "stolen"}))),
        (Method::DELETE, "/items/a1", None),
        (Method::POST, "/items/a1/likes", None),
        (
            Method::POST,
            "/items:batch",
            Some(json!({"put": [{"id": "a1", "name": "stolen"}]})),
        ),
        (
            Method::POST,
            "/items:batch",
            Some(json!({"put": [{"id": "b2"}], "delete": ["a2"]})),
        ),
    ];
    for (method, path, body) in absent {
        let r = as_user(&bob, method.clone(), path, body).await;
        r.assert_problem(404);
        assert_eq!(
            r.json["type"], "urn:edge-items:problem:not-found",
            "{method} {path}"
        );
    }
    let r = as_user(&bob, Method::GET, "/items/b2", None).await;
    r.assert_problem(404);
    let a1 = as_user(&alice, Method::GET, "/items/a1", None).await;
    assert_eq!(a1.status, StatusCode::OK);
    assert_eq!(a1.json["name"], "mine");
    assert_eq!(a1.json["version"], a1_version, "bob changed nothing");
    assert_eq!(a1.json.get("likes"), None);
    let a2 = as_user(&alice, Method::GET, "/items/a2", None).await;
    assert_eq!(
        a2.status,
        StatusCode::OK,
        "the refused batch deleted nothing"
    );

    // Lists: one's own, never another's.
    let r = as_user(&bob, Method::GET, "/items?userId=alice", None).await;
    r.assert_problem(403);
    let r = as_user(&alice, Method::GET, "/items?userId=alice&order=asc", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let ids: Vec<&str> = r.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert_eq!(ids, ["a1", "a2"]);
    for (token, expected) in [(&alice, vec!["a2", "a1"]), (&bob, vec!["b1"])] {
        let mut ids = Vec::new();
        let mut path = "/items?status=active&limit=1".to_string();
        loop {
            let r = as_user(token, Method::GET, &path, None).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            let page = r.json["items"].as_array().unwrap();
            assert!(page.len() <= 1);
            ids.extend(page.iter().map(|i| i["id"].as_str().unwrap().to_string()));
            match r.json["next"].as_str() {
                Some(cursor) => path = format!("/items?status=active&limit=1&cursor={cursor}"),
                None => break,
            }
        }
        assert_eq!(
            ids, expected,
            "the status list holds only the caller's items, paged exactly"
        );
    }

    // Owners write their own items; they cannot give them away.
    let r = as_user(
        &alice,
        Method::PATCH,
        "/items/a1",
        Some(json!({"name": "renamed"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = as_user(
        &alice,
        Method::PATCH,
        "/items/a1",
        Some(json!({"userId": "bob"})),
    )
    .await;
    r.assert_problem(403);
    let r = as_user(
        &alice,
        Method::PATCH,
        "/items/a1",
        Some(json!({"userId": null})),
    )
    .await;
    r.assert_problem(403);
    let r = as_user(&alice, Method::POST, "/items/a1/likes", None).await;
    assert_eq!(r.json["likes"], 1);
    let r = as_user(
        &alice,
        Method::POST,
        "/items:batch",
        Some(json!({"put": [{"id": "a3", "createdAt": "2020-01-01T00:00:00Z"}]})),
    )
    .await;
    r.assert_problem(403);
    let r = as_user(
        &alice,
        Method::POST,
        "/items:batch",
        Some(json!({"put": [{"id": "a3", "status": "draft"}], "delete": ["a2", "never-existed"]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["put"][0]["userId"], "alice");
    assert_eq!(r.json["deleted"], json!(["a2", "never-existed"]));
    let r = as_user(&alice, Method::GET, "/items/a2", None).await;
    r.assert_problem(404);

    // The administrator sees and changes everything.
    let r = as_user(&admin, Method::GET, "/items/a1", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["name"], "renamed");
    let r = as_user(&admin, Method::GET, "/items?userId=bob", None).await;
    assert_eq!(r.json["items"].as_array().unwrap().len(), 1, "{}", r.text);
    let r = as_user(
        &admin,
        Method::PATCH,
        "/items/b1",
        Some(json!({"userId": "alice"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = as_user(&bob, Method::GET, "/items/b1", None).await;
    r.assert_problem(404);
    let r = as_user(&alice, Method::GET, "/items/b1", None).await;
    assert_eq!(r.status, StatusCode::OK, "the item changed hands");
    let r = as_user(&admin, Method::DELETE, "/items/a1", None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);

    // Nothing secret in any response or in the server's log.
    let log = s.log();
    for secret in [alice.as_str(), bob.as_str(), admin.as_str()]
        .into_iter()
        .map(str::to_owned)
        .chain(idp.secrets())
    {
        assert!(!log.contains(&secret), "the log holds a token or key");
        assert!(
            seen.iter().all(|text| !text.contains(&secret)),
            "a response holds a token or key"
        );
    }
}

pub async fn auth_misconfiguration_fails_closed(backend: Backend) {
    let s = Server::start_with(
        backend,
        &[
            "--env",
            "ITEMS_AUTH=jwt",
            "--env",
            "ITEMS_JWT_ISSUER=https://issuer.conformance.test",
        ],
    );
    let token = issuer().token("alice");
    for token in [None, Some(token.as_str())] {
        let r = call(
            &s,
            token,
            Method::POST,
            "/items",
            Some(&json!({"id": "open"})),
        )
        .await;
        let detail = r.assert_problem(500);
        assert_eq!(r.json["type"], "urn:edge-items:problem:auth-misconfigured");
        assert!(detail.contains("ITEMS_JWT_JWKS"), "{detail}");
    }
    assert_eq!(s.get("/healthz").await.status, StatusCode::OK);
    let r = call(
        &s,
        Some(&issuer().admin_token("root")),
        Method::GET,
        "/items/open",
        None,
    )
    .await;
    r.assert_problem(500);
}
