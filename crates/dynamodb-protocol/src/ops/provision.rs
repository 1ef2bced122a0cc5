//! Provisioning: the table, its two indexes and TTL on `expiresAt`.

use std::time::Duration;

use item_model::{IndexName, StoreError};
use sansio::{Operation, Pause, Response, Step};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::{is_success, parse, send};
use crate::attr::{CREATED_AT, EXPIRES_AT, ITEM_ID, STATUS, USER_ID};
use crate::error::ServiceError;
use crate::service::{DynamoDb, Target};

/// How long provisioning waits for a table to become ACTIVE.
const PROVISION_POLL: Duration = Duration::from_millis(500);
const MAX_PROVISION_POLLS: u32 = 240;

impl DynamoDb {
    /// Creates the table (if absent) with its two indexes, waits until all
    /// are ACTIVE, and enables TTL on `expiresAt`. Idempotent.
    pub fn provision(&self) -> Provision {
        Provision {
            target: self.target(),
            state: ProvisionState::Describing,
            created: false,
            polls: 0,
        }
    }
}

/// What provisioning did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Provisioned {
    /// Whether the table was created now (false: it existed).
    pub created_table: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProvisionState {
    Describing,
    Creating,
    DescribingTtl,
    UpdatingTtl,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeOut {
    table: TableDescription,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TableDescription {
    #[serde(default)]
    table_status: String,
    #[serde(default)]
    key_schema: Vec<KeyElement>,
    #[serde(default)]
    global_secondary_indexes: Vec<IndexDescription>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyElement {
    attribute_name: String,
    key_type: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct IndexDescription {
    index_name: String,
    #[serde(default)]
    index_status: String,
    #[serde(default)]
    key_schema: Vec<KeyElement>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TtlOut {
    time_to_live_description: Option<TtlDescription>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TtlDescription {
    #[serde(default)]
    time_to_live_status: String,
    attribute_name: Option<String>,
}

fn key_schema(elements: &[(&str, &str)]) -> Json {
    Json::Array(
        elements
            .iter()
            .map(|(name, kind)| json!({"AttributeName": name, "KeyType": kind}))
            .collect(),
    )
}

fn has_keys(schema: &[KeyElement], wanted: &[(&str, &str)]) -> bool {
    wanted.iter().all(|(name, kind)| {
        schema
            .iter()
            .any(|k| k.attribute_name == *name && k.key_type == *kind)
    })
}

/// The indexes and their keys.
const INDEXES: [(IndexName, &str); 2] =
    [(IndexName::ByUser, USER_ID), (IndexName::ByStatus, STATUS)];

/// [`DynamoDb::provision`].
#[derive(Debug)]
pub struct Provision {
    target: Target,
    state: ProvisionState,
    created: bool,
    polls: u32,
}

impl Provision {
    fn describe(&mut self, pause: Pause) -> Step<Provisioned> {
        self.state = ProvisionState::Describing;
        let body = json!({"TableName": self.target.table()});
        send(
            self.target
                .call("DescribeTable", body, true)
                .map(|call| call.paused(pause)),
        )
    }

    fn poll(&mut self) -> Step<Provisioned> {
        self.polls += 1;
        if self.polls > MAX_PROVISION_POLLS {
            return Step::Done(Err(StoreError::Unavailable(format!(
                "table `{}` did not become ACTIVE in time",
                self.target.table()
            ))));
        }
        self.describe(Pause::Poll(PROVISION_POLL))
    }

    fn create(&mut self) -> Step<Provisioned> {
        self.state = ProvisionState::Creating;
        let definitions: Vec<Json> = [ITEM_ID, USER_ID, STATUS, CREATED_AT]
            .iter()
            .map(|name| json!({"AttributeName": name, "AttributeType": "S"}))
            .collect();
        let indexes: Vec<Json> = INDEXES
            .iter()
            .map(|(index, key)| {
                json!({
                    "IndexName": index.as_str(),
                    "KeySchema": key_schema(&[(key, "HASH"), (CREATED_AT, "RANGE")]),
                    "Projection": {"ProjectionType": "ALL"},
                })
            })
            .collect();
        let body = json!({
            "TableName": self.target.table(),
            "AttributeDefinitions": definitions,
            "KeySchema": key_schema(&[(ITEM_ID, "HASH")]),
            "BillingMode": "PAY_PER_REQUEST",
            "GlobalSecondaryIndexes": indexes,
        });
        send(self.target.call("CreateTable", body, true))
    }

    fn on_table(&mut self, table: &TableDescription) -> Step<Provisioned> {
        if !has_keys(&table.key_schema, &[(ITEM_ID, "HASH")]) || table.key_schema.len() != 1 {
            return Step::Done(Err(StoreError::Backend(format!(
                "table `{}` exists with another key; this store needs the partition key `itemId` alone",
                self.target.table()
            ))));
        }
        let mut all_active = table.table_status == "ACTIVE";
        for (index, key) in INDEXES {
            let found = table
                .global_secondary_indexes
                .iter()
                .find(|i| i.index_name == index.as_str());
            match found {
                Some(i) if has_keys(&i.key_schema, &[(key, "HASH"), (CREATED_AT, "RANGE")]) => {
                    all_active &= i.index_status == "ACTIVE";
                }
                _ => {
                    return Step::Done(Err(StoreError::Backend(format!(
                        "table `{}` lacks the global secondary index `{}` ({key}, createdAt); add it or use a new table",
                        self.target.table(),
                        index.as_str()
                    ))));
                }
            }
        }
        if all_active {
            self.state = ProvisionState::DescribingTtl;
            let body = json!({"TableName": self.target.table()});
            send(self.target.call("DescribeTimeToLive", body, true))
        } else {
            self.poll()
        }
    }
}

impl Operation for Provision {
    type Output = Provisioned;

    fn start(&mut self) -> Step<Provisioned> {
        self.describe(Pause::None)
    }

    fn resume(&mut self, response: &Response) -> Step<Provisioned> {
        let ok = is_success(response);
        let error = (!ok).then(|| ServiceError::parse(response));
        match (self.state, error) {
            (ProvisionState::Describing, None) => {
                match parse::<DescribeOut>(response, "DescribeTable") {
                    Ok(out) => self.on_table(&out.table),
                    Err(e) => Step::Done(Err(e)),
                }
            }
            (ProvisionState::Describing, Some(e)) if e.is("ResourceNotFound") && !self.created => {
                self.create()
            }
            (ProvisionState::Creating, None) => {
                self.created = true;
                self.describe(Pause::None)
            }
            // Someone else is creating it: wait for them.
            (ProvisionState::Creating, Some(e)) if e.is("ResourceInUse") => self.poll(),
            (ProvisionState::DescribingTtl, None) => {
                let out = match parse::<TtlOut>(response, "DescribeTimeToLive") {
                    Ok(out) => out,
                    Err(e) => return Step::Done(Err(e)),
                };
                let (status, name) = out.time_to_live_description.map_or_else(
                    || (String::new(), None),
                    |d| (d.time_to_live_status, d.attribute_name),
                );
                match status.as_str() {
                    "ENABLED" | "ENABLING" if name.as_deref() == Some(EXPIRES_AT) => {
                        Step::Done(Ok(Provisioned {
                            created_table: self.created,
                        }))
                    }
                    "ENABLED" | "ENABLING" => Step::Done(Err(StoreError::Backend(format!(
                        "table `{}` has TTL on another attribute; this store needs it on `expiresAt`",
                        self.target.table()
                    )))),
                    _ => {
                        self.state = ProvisionState::UpdatingTtl;
                        let body = json!({
                            "TableName": self.target.table(),
                            "TimeToLiveSpecification": {"Enabled": true, "AttributeName": EXPIRES_AT},
                        });
                        send(self.target.call("UpdateTimeToLive", body, true))
                    }
                }
            }
            (ProvisionState::UpdatingTtl, None) => Step::Done(Ok(Provisioned {
                created_table: self.created,
            })),
            (ProvisionState::UpdatingTtl, Some(e))
                if e.is_validation() && e.message_contains("already enabled") =>
            {
                Step::Done(Ok(Provisioned {
                    created_table: self.created,
                }))
            }
            (state, Some(e)) => {
                let action = match state {
                    ProvisionState::Describing => "DescribeTable",
                    ProvisionState::Creating => "CreateTable",
                    ProvisionState::DescribingTtl => "DescribeTimeToLive",
                    ProvisionState::UpdatingTtl => "UpdateTimeToLive",
                };
                Step::Done(Err(e.to_store_error(action, self.target.table())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_support::*;

    #[test]
    fn provisioning_creates_waits_and_enables_ttl() {
        let mut p = db().provision();
        let step = p.start();
        assert_eq!(action(&step), "DescribeTable");
        let missing = error("ResourceNotFoundException", "Requested resource not found");
        let create = p.resume(&missing);
        assert_eq!(action(&create), "CreateTable");
        let sent = body(&create);
        assert_eq!(sent["BillingMode"], "PAY_PER_REQUEST");
        assert_eq!(sent["GlobalSecondaryIndexes"][1]["IndexName"], "byStatus");
        assert_eq!(
            sent["GlobalSecondaryIndexes"][1]["Projection"]["ProjectionType"],
            "ALL"
        );
        p.resume(&ok(json!({"TableDescription": {}})));
        let table = |status: &str| {
            let index = |name: &str, key: &str| {
                json!({"IndexName": name, "IndexStatus": status,
                "KeySchema": [{"AttributeName": key, "KeyType": "HASH"}, {"AttributeName": "createdAt", "KeyType": "RANGE"}]})
            };
            ok(
                json!({"Table": {"TableStatus": status, "KeySchema": [{"AttributeName": "itemId", "KeyType": "HASH"}],
                "GlobalSecondaryIndexes": [index("byUser", "userId"), index("byStatus", "status")]}}),
            )
        };
        let wait = p.resume(&table("CREATING"));
        let Step::Send(call) = &wait else { panic!() };
        assert_eq!(call.pause, Pause::Poll(PROVISION_POLL));
        let ttl = p.resume(&table("ACTIVE"));
        assert_eq!(action(&ttl), "DescribeTimeToLive");
        let update = p.resume(&ok(
            json!({"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}}),
        ));
        assert_eq!(
            body(&update)["TimeToLiveSpecification"]["AttributeName"],
            "expiresAt"
        );
        let already = error("ValidationException", "TimeToLive is already enabled");
        assert_eq!(
            done(p.resume(&already)),
            Ok(Provisioned {
                created_table: true
            })
        );
    }
}
