//! The conformance suite under `spin up` with spin.dynamodb.toml: the api
//! component and the DynamoDB adapter (Spin flavour) on DynamoDB Local.

use conformance::Backend;

conformance::conformance_suite!(Backend::SpinDynamoDb);
