//! Keeps `openapi.json` honest: it must parse, be OpenAPI 3.1, list
//! exactly the routes and methods the router serves, list every problem
//! type, and have no dangling `$ref`.

use serde_json::Value as Json;

use crate::handlers::OPENAPI;
use crate::problem::Kind;
use crate::router::ROUTES;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn doc() -> Json {
    serde_json::from_str(OPENAPI).expect("openapi.json is JSON")
}

#[test]
fn is_openapi_3_1() {
    let doc = doc();
    let version = doc["openapi"].as_str().unwrap_or_default();
    assert!(version.starts_with("3.1."), "{version}");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
}

#[test]
fn lists_exactly_the_routes_the_router_knows() {
    let doc = doc();
    let paths = doc["paths"].as_object().expect("paths");
    for spec in ROUTES {
        let path = paths
            .get(spec.path)
            .unwrap_or_else(|| panic!("{} is not documented", spec.path));
        let mut documented: Vec<String> = METHODS
            .iter()
            .filter(|m| path.get(**m).is_some())
            .map(|m| m.to_uppercase())
            .collect();
        documented.sort();
        let mut served: Vec<String> = spec.methods.iter().map(|m| m.to_string()).collect();
        served.sort();
        assert_eq!(documented, served, "{}", spec.path);
    }
    assert_eq!(
        paths.len(),
        ROUTES.len(),
        "documented paths the router lacks"
    );
}

#[test]
fn lists_every_problem_type() {
    let doc = doc();
    let listed: Vec<&str> = doc["components"]["schemas"]["Problem"]["properties"]["type"]["enum"]
        .as_array()
        .expect("Problem.type enum")
        .iter()
        .filter_map(Json::as_str)
        .collect();
    let mut known: Vec<String> = Kind::ALL.iter().map(|k| k.type_uri()).collect();
    known.sort();
    let mut listed: Vec<String> = listed.into_iter().map(String::from).collect();
    listed.sort();
    assert_eq!(listed, known);
}

#[test]
fn every_ref_resolves() {
    let doc = doc();
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for reference in refs {
        let pointer = reference
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("external $ref {reference}"));
        assert!(doc.pointer(pointer).is_some(), "dangling $ref {reference}");
    }
}

fn collect_refs(json: &Json, out: &mut Vec<String>) {
    match json {
        Json::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Json::String(r)) => out.push(r.clone()),
                    _ => collect_refs(value, out),
                }
            }
        }
        Json::Array(list) => list.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// The batch parser takes `"put": null` and `"delete": null` as empty
/// lists, so the document allows them (schemathesis reported a request
/// the document forbade and the API accepted).
#[test]
fn batch_members_may_be_null_as_the_parser_accepts() {
    let doc = doc();
    let members = &doc["components"]["schemas"]["BatchRequest"]["properties"];
    for member in ["put", "delete"] {
        assert_eq!(
            members[member]["type"],
            serde_json::json!(["array", "null"]),
            "{member}"
        );
        let mut body = serde_json::json!({"put": [{"id": "a"}], "delete": ["b"]});
        body[member] = Json::Null;
        let writes = crate::body::batch(body, || "generated".into()).unwrap();
        assert_eq!(writes.len(), 1, "{member}");
    }
}
