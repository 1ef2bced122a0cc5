//! Provisioning: the table, its three indexes and TTL on `expiresAt`.
//!
//! A table made before an index existed (`byUserStatus` came last) gets it
//! added with UpdateTable; DynamoDB then builds it from the items already
//! there (backfill), and provisioning waits until it is ACTIVE, as it does
//! for a new table. Items written before `__userStatus__` was maintained
//! lack it, so they are in the new index only once rewritten or given the
//! key by [`DynamoDb::backfill_user_status`], which the host runs after
//! provisioning when [`Provisioned::needs_backfill`] says so.

use std::time::Duration;

use item_model::{IndexName, StoreError};
use sansio::{Operation, Pause, Response, Step};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::{is_success, parse, send};
use crate::attr::{CREATED_AT, EXPIRES_AT, ITEM_ID, STATUS, USER_ID, USER_STATUS};
use crate::error::ServiceError;
use crate::service::{DynamoDb, Target};

/// How long provisioning waits for a table to become ACTIVE.
const PROVISION_POLL: Duration = Duration::from_millis(500);
const MAX_PROVISION_POLLS: u32 = 240;

impl DynamoDb {
    /// Creates the table (if absent) with its three indexes, adds any
    /// index an existing table lacks, waits until all are ACTIVE, and
    /// enables TTL on `expiresAt`. Idempotent.
    pub fn provision(&self) -> Provision {
        Provision {
            target: self.target(),
            state: ProvisionState::Describing,
            created: false,
            added: Vec::new(),
            polls: 0,
        }
    }
}

/// What provisioning did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    /// Whether the table was created now (false: it existed).
    pub created_table: bool,
    /// The indexes added now to a table that lacked them.
    pub added_indexes: Vec<&'static str>,
}

impl Provisioned {
    /// Whether `byUserStatus` was added now to an existing table, whose
    /// older items then lack its key: run
    /// [`DynamoDb::backfill_user_status`] (a new table has no older items).
    pub fn needs_backfill(&self) -> bool {
        self.added_indexes
            .contains(&IndexName::ByUserStatus.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProvisionState {
    Describing,
    Creating,
    AddingIndex,
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
    provisioned_throughput: Option<Throughput>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Throughput {
    #[serde(default)]
    read_capacity_units: u64,
    #[serde(default)]
    write_capacity_units: u64,
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

/// The indexes and their partition keys (all sorted by `createdAt`).
const INDEXES: [(IndexName, &str); 3] = [
    (IndexName::ByUser, USER_ID),
    (IndexName::ByStatus, STATUS),
    (IndexName::ByUserStatus, USER_STATUS),
];

/// An index's definition, as CreateTable and UpdateTable take it.
fn index_definition(index: IndexName, key: &str) -> serde_json::Map<String, Json> {
    let definition = json!({
        "IndexName": index.as_str(),
        "KeySchema": key_schema(&[(key, "HASH"), (CREATED_AT, "RANGE")]),
        "Projection": {"ProjectionType": "ALL"},
    });
    match definition {
        Json::Object(map) => map,
        _ => unreachable!("a JSON object literal"),
    }
}

/// [`DynamoDb::provision`].
#[derive(Debug)]
pub struct Provision {
    target: Target,
    state: ProvisionState,
    created: bool,
    added: Vec<&'static str>,
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
                "table `{}` or one of its indexes did not become ACTIVE in time (an index added to a table with many items can take long to build); provision again to keep waiting",
                self.target.table()
            ))));
        }
        self.describe(Pause::Poll(PROVISION_POLL))
    }

    fn create(&mut self) -> Step<Provisioned> {
        self.state = ProvisionState::Creating;
        let definitions: Vec<Json> = [ITEM_ID, USER_ID, STATUS, USER_STATUS, CREATED_AT]
            .iter()
            .map(|name| json!({"AttributeName": name, "AttributeType": "S"}))
            .collect();
        let indexes: Vec<Json> = INDEXES
            .iter()
            .map(|(index, key)| Json::Object(index_definition(*index, key)))
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

    /// Adds an index to an existing table (UpdateTable, one index per
    /// call, as DynamoDB allows); a provisioned-capacity table gives the
    /// index its own capacity.
    fn add_index(
        &mut self,
        table: &TableDescription,
        index: IndexName,
        key: &'static str,
    ) -> Step<Provisioned> {
        self.state = ProvisionState::AddingIndex;
        self.added.push(index.as_str());
        let definitions: Vec<Json> = [key, CREATED_AT]
            .iter()
            .map(|name| json!({"AttributeName": name, "AttributeType": "S"}))
            .collect();
        let mut create = index_definition(index, key);
        if let Some(t) = table
            .provisioned_throughput
            .as_ref()
            .filter(|t| t.read_capacity_units > 0 || t.write_capacity_units > 0)
        {
            create.insert(
                "ProvisionedThroughput".into(),
                json!({
                    "ReadCapacityUnits": t.read_capacity_units.max(1),
                    "WriteCapacityUnits": t.write_capacity_units.max(1),
                }),
            );
        }
        let body = json!({
            "TableName": self.target.table(),
            "AttributeDefinitions": definitions,
            "GlobalSecondaryIndexUpdates": [{"Create": create}],
        });
        send(self.target.call("UpdateTable", body, true))
    }

    fn done(&self) -> Step<Provisioned> {
        Step::Done(Ok(Provisioned {
            created_table: self.created,
            added_indexes: self.added.clone(),
        }))
    }

    fn on_table(&mut self, table: &TableDescription) -> Step<Provisioned> {
        if !has_keys(&table.key_schema, &[(ITEM_ID, "HASH")]) || table.key_schema.len() != 1 {
            return Step::Done(Err(StoreError::Backend(format!(
                "table `{}` exists with another key; this store needs the partition key `itemId` alone",
                self.target.table()
            ))));
        }
        let mut all_active = table.table_status == "ACTIVE";
        let mut missing = None;
        for (index, key) in INDEXES {
            let found = table
                .global_secondary_indexes
                .iter()
                .find(|i| i.index_name == index.as_str());
            match found {
                Some(i) if has_keys(&i.key_schema, &[(key, "HASH"), (CREATED_AT, "RANGE")]) => {
                    all_active &= i.index_status == "ACTIVE";
                }
                Some(_) => {
                    return Step::Done(Err(StoreError::Backend(format!(
                        "table `{}` has a global secondary index `{}` with other keys than ({key}, createdAt); delete it or use a new table",
                        self.target.table(),
                        index.as_str()
                    ))));
                }
                None => {
                    missing.get_or_insert((index, key));
                }
            }
        }
        if !all_active {
            // A table or index being created (or an index we added being
            // built from the items there): wait, as DynamoDB takes one
            // index change at a time.
            return self.poll();
        }
        if let Some((index, key)) = missing {
            return self.add_index(table, index, key);
        }
        self.state = ProvisionState::DescribingTtl;
        let body = json!({"TableName": self.target.table()});
        send(self.target.call("DescribeTimeToLive", body, true))
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
            // The index is being built now: wait until it is ACTIVE.
            (ProvisionState::AddingIndex, None) => self.describe(Pause::None),
            // Someone else is changing the table or adding the index (one
            // index change at a time): wait, then look again.
            (ProvisionState::AddingIndex, Some(e))
                if e.is("ResourceInUse")
                    || e.is("LimitExceeded")
                    || (e.is_validation() && e.message_contains("already exists")) =>
            {
                self.added.pop();
                self.poll()
            }
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
                    "ENABLED" | "ENABLING" if name.as_deref() == Some(EXPIRES_AT) => self.done(),
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
            (ProvisionState::UpdatingTtl, None) => self.done(),
            (ProvisionState::UpdatingTtl, Some(e))
                if e.is_validation() && e.message_contains("already enabled") =>
            {
                self.done()
            }
            (state, Some(e)) => {
                let action = match state {
                    ProvisionState::Describing => "DescribeTable",
                    ProvisionState::Creating => "CreateTable",
                    ProvisionState::AddingIndex => "UpdateTable",
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
        assert_eq!(
            sent["GlobalSecondaryIndexes"][2],
            json!({"IndexName": "byUserStatus",
                   "KeySchema": [{"AttributeName": "__userStatus__", "KeyType": "HASH"},
                                 {"AttributeName": "createdAt", "KeyType": "RANGE"}],
                   "Projection": {"ProjectionType": "ALL"}})
        );
        assert!(
            sent["AttributeDefinitions"]
                .as_array()
                .unwrap()
                .contains(&json!({"AttributeName": "__userStatus__", "AttributeType": "S"}))
        );
        p.resume(&ok(json!({"TableDescription": {}})));
        let table = |status: &str| described(status, &[("byUserStatus", "__userStatus__", status)]);
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
                created_table: true,
                added_indexes: vec![],
            })
        );
    }

    /// A DescribeTable answer: `byUser` and `byStatus` in `status`, and
    /// the further indexes given as (name, key, status).
    fn described(status: &str, more: &[(&str, &str, &str)]) -> Response {
        let index = |name: &str, key: &str, status: &str| {
            json!({"IndexName": name, "IndexStatus": status,
            "KeySchema": [{"AttributeName": key, "KeyType": "HASH"}, {"AttributeName": "createdAt", "KeyType": "RANGE"}]})
        };
        let mut indexes = vec![
            index("byUser", "userId", status),
            index("byStatus", "status", status),
        ];
        indexes.extend(more.iter().map(|(n, k, s)| index(n, k, s)));
        ok(
            json!({"Table": {"TableStatus": status, "KeySchema": [{"AttributeName": "itemId", "KeyType": "HASH"}],
            "GlobalSecondaryIndexes": indexes}}),
        )
    }

    #[test]
    fn an_existing_table_gets_the_missing_index_and_waits_for_it() {
        let mut p = db().provision();
        p.start();
        let add = p.resume(&described("ACTIVE", &[]));
        assert_eq!(action(&add), "UpdateTable");
        assert_eq!(
            body(&add),
            json!({
                "TableName": "Items",
                "AttributeDefinitions": [{"AttributeName": "__userStatus__", "AttributeType": "S"},
                                         {"AttributeName": "createdAt", "AttributeType": "S"}],
                "GlobalSecondaryIndexUpdates": [{"Create": {
                    "IndexName": "byUserStatus",
                    "KeySchema": [{"AttributeName": "__userStatus__", "KeyType": "HASH"},
                                  {"AttributeName": "createdAt", "KeyType": "RANGE"}],
                    "Projection": {"ProjectionType": "ALL"}}}],
            })
        );
        let describe = p.resume(&ok(json!({"TableDescription": {}})));
        assert_eq!(action(&describe), "DescribeTable");
        // Built from the items there (backfill): poll until ACTIVE.
        let building = [("byUserStatus", "__userStatus__", "CREATING")];
        let wait = p.resume(&described("ACTIVE", &building));
        let Step::Send(call) = &wait else { panic!() };
        assert_eq!(action(&wait), "DescribeTable");
        assert_eq!(call.pause, Pause::Poll(PROVISION_POLL));
        let active = [("byUserStatus", "__userStatus__", "ACTIVE")];
        let ttl = p.resume(&described("ACTIVE", &active));
        assert_eq!(action(&ttl), "DescribeTimeToLive");
        let enabled = json!({"TimeToLiveDescription": {"TimeToLiveStatus": "ENABLED", "AttributeName": "expiresAt"}});
        assert_eq!(
            done(p.resume(&ok(enabled))),
            Ok(Provisioned {
                created_table: false,
                added_indexes: vec!["byUserStatus"],
            })
        );
        let provisioned = Provisioned {
            created_table: false,
            added_indexes: vec!["byUserStatus"],
        };
        assert!(provisioned.needs_backfill());
        let fresh = Provisioned {
            created_table: true,
            added_indexes: vec![],
        };
        assert!(!fresh.needs_backfill());
    }

    #[test]
    fn adding_an_index_waits_its_turn_and_respects_capacity() {
        // Another index still being built: wait before asking for ours.
        let mut p = db().provision();
        p.start();
        let mut busy = described("ACTIVE", &[]);
        let body_of = |r: &Response| serde_json::from_slice::<Json>(r.body()).unwrap();
        let mut table = body_of(&busy);
        table["Table"]["GlobalSecondaryIndexes"][1]["IndexStatus"] = json!("CREATING");
        busy = ok(table);
        assert_eq!(action(&p.resume(&busy)), "DescribeTable");
        // Someone else's change in progress: wait, then look again.
        let add = p.resume(&described("ACTIVE", &[]));
        assert_eq!(action(&add), "UpdateTable");
        let in_use = error(
            "ResourceInUseException",
            "Attempt to change a resource which is still in use",
        );
        let again = p.resume(&in_use);
        assert_eq!(action(&again), "DescribeTable");
        let add = p.resume(&described("ACTIVE", &[]));
        assert_eq!(action(&add), "UpdateTable");

        // A provisioned-capacity table: the index gets capacity too.
        let mut p = db().provision();
        p.start();
        let mut table = body_of(&described("ACTIVE", &[]));
        table["Table"]["ProvisionedThroughput"] =
            json!({"ReadCapacityUnits": 5, "WriteCapacityUnits": 3, "NumberOfDecreasesToday": 0});
        let add = p.resume(&ok(table));
        assert_eq!(
            body(&add)["GlobalSecondaryIndexUpdates"][0]["Create"]["ProvisionedThroughput"],
            json!({"ReadCapacityUnits": 5, "WriteCapacityUnits": 3})
        );

        // An index of that name on other keys is not ours to change.
        let mut p = db().provision();
        p.start();
        let other = [("byUserStatus", "userId", "ACTIVE")];
        let e = done(p.resume(&described("ACTIVE", &other))).unwrap_err();
        assert!(
            matches!(&e, StoreError::Backend(m) if m.contains("byUserStatus")),
            "{e:?}"
        );
    }
}

/// deploy/aws/items-table.yaml, the CloudFormation template for users who
/// create the table themselves, must make the table this code provisions
/// and grant what crates/store-dynamodb/iam-policy.json (the policy the
/// moto tests enforce, shown in docs/aws.md) grants at run time.
#[cfg(test)]
mod template_tests {
    use super::*;
    use crate::ops::test_support::*;

    const TEMPLATE: &str = "../../deploy/aws/items-table.yaml";
    const POLICY: &str = "../store-dynamodb/iam-policy.json";
    const DOCS: &str = "../../docs/aws.md";

    fn read(relative: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The template's resources as JSON (CloudFormation's `!Ref`-style
    /// tags become one-key maps such as `{"!GetAtt": "ItemsTable.Arn"}`).
    fn resources() -> Json {
        let yaml: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&read(TEMPLATE)).expect("the template is YAML");
        serde_json::to_value(&yaml["Resources"]).expect("YAML as JSON")
    }

    /// The CreateTable request and the UpdateTimeToLive specification
    /// provisioning sends for a missing table.
    fn provisioned() -> (Json, Json) {
        let mut p = db().provision();
        p.start();
        let create = body(&p.resume(&error(
            "ResourceNotFoundException",
            "Requested resource not found",
        )));
        p.resume(&ok(json!({"TableDescription": {}})));
        let index = |name: &str, key: &str| {
            json!({"IndexName": name, "IndexStatus": "ACTIVE",
                   "KeySchema": [{"AttributeName": key, "KeyType": "HASH"},
                                 {"AttributeName": "createdAt", "KeyType": "RANGE"}]})
        };
        p.resume(&ok(json!({"Table": {"TableStatus": "ACTIVE",
            "KeySchema": [{"AttributeName": "itemId", "KeyType": "HASH"}],
            "GlobalSecondaryIndexes": [index("byUser", "userId"), index("byStatus", "status"),
                                       index("byUserStatus", "__userStatus__")]}})));
        let ttl = body(&p.resume(&ok(
            json!({"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}}),
        )));
        (create, ttl["TimeToLiveSpecification"].clone())
    }

    fn sorted(list: &Json) -> Vec<String> {
        let mut all: Vec<String> = list
            .as_array()
            .expect("a list")
            .iter()
            .map(Json::to_string)
            .collect();
        all.sort();
        all
    }

    #[test]
    fn the_template_makes_the_table_provisioning_makes() {
        let resources = resources();
        let table = &resources["ItemsTable"];
        assert_eq!(table["Type"], "AWS::DynamoDB::Table");
        let properties = &table["Properties"];
        let (create, ttl) = provisioned();
        for same in ["KeySchema", "GlobalSecondaryIndexes", "BillingMode"] {
            assert_eq!(properties[same], create[same], "{same}");
        }
        assert_eq!(
            sorted(&properties["AttributeDefinitions"]),
            sorted(&create["AttributeDefinitions"])
        );
        assert_eq!(properties["TimeToLiveSpecification"], ttl);
        // What provisioning leaves to the operator, and the template sets.
        assert_eq!(table["DeletionPolicy"], "Retain");
        assert_eq!(table["UpdateReplacePolicy"], "Retain");
        assert_eq!(properties["DeletionProtectionEnabled"], true);
        assert_eq!(
            properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
            true
        );
    }

    #[test]
    fn the_template_policy_is_the_run_time_statement_of_iam_policy_json() {
        let policy: Json = serde_json::from_str(&read(POLICY)).expect("iam-policy.json");
        let run_time = policy["Statement"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["Sid"] == "ItemStore"))
            .expect("an ItemStore statement");
        let resources = resources();
        let managed = &resources["ItemStorePolicy"];
        assert_eq!(managed["Type"], "AWS::IAM::ManagedPolicy");
        let statements = &managed["Properties"]["PolicyDocument"]["Statement"];
        assert_eq!(
            statements.as_array().map(Vec::len),
            Some(1),
            "one statement"
        );
        let statement = &statements[0];
        assert_eq!(statement["Sid"], "ItemStore");
        assert_eq!(statement["Effect"], "Allow");
        assert_eq!(sorted(&statement["Action"]), sorted(&run_time["Action"]));
        // iam-policy.json's table/Items and table/Items/index/*, for the
        // stack's table.
        assert_eq!(
            statement["Resource"],
            json!([{"!GetAtt": "ItemsTable.Arn"}, {"!Sub": "${ItemsTable.Arn}/index/*"}])
        );
        assert_eq!(
            run_time["Resource"],
            json!([
                "arn:aws:dynamodb:*:*:table/Items",
                "arn:aws:dynamodb:*:*:table/Items/index/*"
            ])
        );
    }

    #[test]
    fn docs_aws_md_shows_iam_policy_json_verbatim() {
        let docs = read(DOCS);
        let start = docs
            .find("`crates/store-dynamodb/iam-policy.json`, verbatim:")
            .expect("docs/aws.md introduces the policy");
        let block = &docs[start..];
        let open = block.find("```json\n").expect("a json block") + "```json\n".len();
        let close = open + block[open..].find("```").expect("the block's end");
        let shown: Json = serde_json::from_str(&block[open..close]).expect("the block is JSON");
        let policy: Json = serde_json::from_str(&read(POLICY)).expect("iam-policy.json");
        assert_eq!(shown, policy);
    }
}
