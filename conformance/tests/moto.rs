//! The conformance suite on the host's native DynamoDB store against moto
//! with SigV4 and IAM enforced: the service signs as a user holding only
//! the run-time statement of crates/store-dynamodb/iam-policy.json, so
//! every case also proves that the policy is enough. Plus what a missing
//! permission looks like from outside.

conformance::conformance_suite!(Host, DynamoDb, Moto);

mod refusals {
    use conformance::Server;
    use conformance::harness::{AwsKey, moto_keys, moto_service_user_without};
    use reqwest::StatusCode;
    use serde_json::json;

    /// Asserts a 502 problem whose detail matches `expect` and which shows
    /// none of the keys in play.
    async fn assert_refused(r: conformance::harness::Response, expect: &[&str], keys: &[AwsKey]) {
        let detail = r.assert_problem(502).to_lowercase();
        assert!(
            expect.iter().any(|word| detail.contains(word)),
            "the detail should say {expect:?}: {detail}"
        );
        for key in keys {
            assert!(
                !r.text.contains(&key.id) && !r.text.contains(&key.secret),
                "a key in the body: {}",
                r.text
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_missing_permission_is_a_502_without_keys_and_logged_by_action() {
        let key = moto_service_user_without("dynamodb:UpdateItem");
        let s = Server::start_on_moto_as(&key);
        let mut keys = moto_keys().to_vec();
        keys.push(key.clone());
        // What the policy still allows works.
        s.create(&json!({"id": "a", "name": "n", "likes": 0})).await;
        assert_eq!(s.get("/items/a").await.status, StatusCode::OK);
        // PATCH and likes are UpdateItem.
        let r = s.patch("/items/a", &json!({"name": "m"})).await;
        assert_refused(r, &["unauthorized", "permission", "not allowed"], &keys).await;
        let r = s.post("/items/a/likes", &json!({})).await;
        assert_refused(r, &["unauthorized", "permission", "not allowed"], &keys).await;
        let got = s.get("/items/a").await.json;
        assert_eq!((&got["name"], &got["likes"]), (&json!("n"), &json!(0)));
        // A keyed like is a transaction of Puts: authorised by PutItem, so
        // it still works without UpdateItem (as on AWS, which authorises a
        // transaction by the item actions inside it).
        let r = s
            .send(
                reqwest::Method::POST,
                "/items/a/likes",
                Some(&json!({})),
                &[("idempotency-key", "\"like-without-update\"")],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(s.get("/items/a").await.json["likes"], json!(1));
        let log = s.log();
        assert!(
            log.contains("dynamodb:UpdateItem"),
            "the host log names the missing action:\n{log}"
        );
        assert!(!log.contains(&key.secret), "the secret in the log:\n{log}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wrong_secret_is_a_502_about_the_signature() {
        let [_, service] = moto_keys();
        let wrong = AwsKey {
            id: service.id.clone(),
            secret: "not-the-secret".into(),
        };
        let s = Server::start_on_moto_as(&wrong);
        let r = s.get("/items/a").await;
        assert_refused(
            r,
            &["unauthorized", "credentials", "signature"],
            &[service, wrong.clone()],
        )
        .await;
        let log = s.log();
        assert!(log.to_lowercase().contains("signature"), "{log}");
        assert!(!log.contains(&wrong.secret), "{log}");
    }
}
