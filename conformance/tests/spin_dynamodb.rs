//! The conformance suite under `spin up` with spin.dynamodb.toml: the api
//! component and the DynamoDB adapter (Spin flavour) on DynamoDB Local.

conformance::conformance_suite!(SpinUp, DynamoDb, Local);
