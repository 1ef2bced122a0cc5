//! The Firestore operations fed arbitrary responses: each kind of
//! operation (picked by the script's first line) is started and resumed
//! with arbitrary status, headers and body until it is done or a step cap
//! is reached. It must never panic, and what it returns must hold
//! together.

#![no_main]

use edge_items_fuzz::inputs::Inputs;
use edge_items_fuzz::script::Script;
use edge_items_fuzz::{check_json_body, checks, drive};
use firestore_protocol::{Credentials, DEFAULT_DATABASE, Firestore, Session};
use libfuzzer_sys::fuzz_target;

fn session() -> Session {
    let firestore = Firestore::new("http://127.0.0.1:8681", "demo-p", DEFAULT_DATABASE, "items")
        .expect("firestore");
    Session::new(firestore, Credentials::emulator())
}

fuzz_target!(|data: &[u8]| {
    let script = Script::parse(data);
    let inputs = Inputs::draw(&script);
    let session = session();
    let fs = session.firestore().clone();
    let responses = &script.responses;
    let now = inputs.now;
    match script.operation {
        "get" => {
            let result = drive(
                &session,
                fs.get(&inputs.id, now),
                responses,
                check_json_body,
            );
            checks::item(result.as_ref().map(Result::as_ref));
        }
        "create" => {
            let op = fs.create(inputs.item, now);
            let result = drive(&session, op, responses, check_json_body);
            checks::item(result.as_ref().map(Result::as_ref));
        }
        "put" => {
            let op = fs.put(inputs.item, inputs.expected, now);
            let result = drive(&session, op, responses, check_json_body);
            checks::item(result.as_ref().map(|r| r.as_ref().map(|(item, _)| item)));
        }
        "update" => {
            let op = fs.update(&inputs.id, inputs.patch, inputs.expected, now);
            let result = drive(&session, op, responses, check_json_body);
            checks::item(result.as_ref().map(Result::as_ref));
        }
        "delete" => {
            let op = fs.delete(&inputs.id, inputs.expected, now);
            drive(&session, op, responses, check_json_body);
        }
        "increment" => {
            let op = fs.increment(&inputs.id, "likes", inputs.delta, now);
            let result = drive(&session, op, responses, check_json_body);
            checks::item(result.as_ref().map(Result::as_ref));
        }
        "batch" => {
            let writes = inputs.writes.len();
            let op = fs.batch(inputs.writes, now);
            let result = drive(&session, op, responses, check_json_body);
            checks::batch(result.as_ref().map(Result::as_ref), writes);
        }
        "scan" => {
            let op = fs.scan(inputs.scan.clone(), now);
            let result = drive(&session, op, responses, check_json_body);
            let at = now.unix_seconds();
            checks::scan_page(result.as_ref().map(Result::as_ref), &inputs.scan, at);
        }
        _ => {
            let op = fs.query(inputs.query.clone(), now);
            let result = drive(&session, op, responses, check_json_body);
            checks::page(result.as_ref().map(Result::as_ref), &inputs.query);
        }
    }
});
