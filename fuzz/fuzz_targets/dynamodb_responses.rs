//! The DynamoDB operations fed arbitrary responses: each kind of operation
//! (picked by the script's first line) is started and resumed with
//! arbitrary status, headers and body until it is done or a step cap is
//! reached. It must never panic, and what it returns must hold together.

#![no_main]

use dynamodb_protocol::{Config, Credentials, DynamoDb};
use edge_items_fuzz::inputs::Inputs;
use edge_items_fuzz::script::Script;
use edge_items_fuzz::{check_json_body, checks, drive};
use libfuzzer_sys::fuzz_target;

fn protocol() -> DynamoDb {
    let credentials = Credentials::new("AKIDEXAMPLE", "secret", None).expect("credentials");
    DynamoDb::new(Config::new("us-east-1", credentials).expect("config"))
}

fuzz_target!(|data: &[u8]| {
    let script = Script::parse(data);
    let inputs = Inputs::draw(&script);
    let db = protocol();
    let responses = &script.responses;
    let now = inputs.now;
    match script.operation {
        "get" => {
            let result = drive(&db, db.get(&inputs.id, now), responses, check_json_body);
            checks::item(result.as_ref().map(Result::as_ref));
        }
        "create" => {
            let result = drive(&db, db.create(inputs.item, now), responses, check_json_body);
            checks::item(result.as_ref().map(Result::as_ref));
        }
        "put" => {
            let op = db.put(inputs.item, inputs.expected, now);
            let result = drive(&db, op, responses, check_json_body);
            checks::item(result.as_ref().map(|r| r.as_ref().map(|(item, _)| item)));
        }
        "update" => {
            let op = db.update(&inputs.id, &inputs.patch, inputs.expected, now);
            let result = drive(&db, op, responses, check_json_body);
            checks::item(result.as_ref().map(Result::as_ref));
        }
        "delete" => {
            let op = db.delete(&inputs.id, inputs.expected, now);
            drive(&db, op, responses, check_json_body);
        }
        "increment" => {
            let op = db.increment(&inputs.id, "likes", inputs.delta, now);
            let result = drive(&db, op, responses, check_json_body);
            checks::item(result.as_ref().map(Result::as_ref));
        }
        "batch" => {
            let writes = inputs.writes.len();
            let op = db.batch(inputs.writes, now);
            let result = drive(&db, op, responses, check_json_body);
            checks::batch(result.as_ref().map(Result::as_ref), writes);
        }
        "scan" => {
            let op = db.scan(inputs.scan.clone(), now);
            let result = drive(&db, op, responses, check_json_body);
            let at = now.unix_seconds();
            checks::scan_page(result.as_ref().map(Result::as_ref), &inputs.scan, at);
        }
        _ => {
            let op = db.query(inputs.query.clone(), now);
            let result = drive(&db, op, responses, check_json_body);
            checks::page(result.as_ref().map(Result::as_ref), &inputs.query);
        }
    }
});
