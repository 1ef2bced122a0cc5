//! Expression placeholders. Every attribute name goes through
//! `ExpressionAttributeNames` (`#n0`, `#n1`, ...) and every value through
//! `ExpressionAttributeValues` (`:v0`, ...), so no name can collide with a
//! DynamoDB reserved word (`status`, `name`, ...) and no value is ever
//! spliced into expression text.

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json};

use crate::attr::{AttributeValue, EXPIRES_AT, ITEM_ID, VERSION};

#[derive(Debug, Default)]
pub(crate) struct Expr {
    names: BTreeMap<String, String>,
    values: BTreeMap<String, AttributeValue>,
}

impl Expr {
    /// The placeholder for an attribute name (one per distinct name).
    pub(crate) fn name(&mut self, name: &str) -> String {
        if let Some((placeholder, _)) = self.names.iter().find(|(_, n)| n.as_str() == name) {
            return placeholder.clone();
        }
        let placeholder = format!("#n{}", self.names.len());
        self.names.insert(placeholder.clone(), name.to_string());
        placeholder
    }

    /// The placeholder for a value (one per call).
    pub(crate) fn value(&mut self, value: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    /// `attribute_exists(itemId)` and not expired at `now` (epoch seconds):
    /// the item is there for the caller.
    pub(crate) fn live(&mut self, now: i64) -> String {
        let id = self.name(ITEM_ID);
        let not_expired = self.not_expired(now);
        format!("attribute_exists({id}) AND ({not_expired})")
    }

    /// No `expiresAt`, or one after `now`.
    pub(crate) fn not_expired(&mut self, now: i64) -> String {
        let exp = self.name(EXPIRES_AT);
        let now = self.value(AttributeValue::int(now));
        format!("attribute_not_exists({exp}) OR {exp} > {now}")
    }

    /// No item, or an expired one: the id is free to create.
    pub(crate) fn free(&mut self, now: i64) -> String {
        let id = self.name(ITEM_ID);
        let exp = self.name(EXPIRES_AT);
        let now = self.value(AttributeValue::int(now));
        format!("attribute_not_exists({id}) OR {exp} <= {now}")
    }

    /// The stored version equals `version` (`None`: there is none, as on
    /// items written by other clients).
    pub(crate) fn version_is(&mut self, version: Option<&AttributeValue>) -> String {
        let name = self.name(VERSION);
        match version {
            None => format!("attribute_not_exists({name})"),
            Some(v) => {
                let v = self.value(v.clone());
                format!("{name} = {v}")
            }
        }
    }

    /// Adds `ExpressionAttributeNames` / `Values` to a request body.
    pub(crate) fn add_to(self, body: &mut Map<String, Json>) {
        if !self.names.is_empty() {
            body.insert(
                "ExpressionAttributeNames".into(),
                Json::Object(
                    self.names
                        .into_iter()
                        .map(|(k, v)| (k, Json::String(v)))
                        .collect(),
                ),
            );
        }
        if !self.values.is_empty() {
            body.insert(
                "ExpressionAttributeValues".into(),
                serde_json::to_value(self.values).unwrap_or(Json::Null),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_reused_per_name_not_per_value() {
        let mut e = Expr::default();
        assert_eq!(e.name("status"), "#n0");
        assert_eq!(e.name("name"), "#n1");
        assert_eq!(e.name("status"), "#n0");
        assert_eq!(e.value(AttributeValue::s("x")), ":v0");
        assert_eq!(e.value(AttributeValue::s("x")), ":v1");
        assert_eq!(
            e.live(100),
            "attribute_exists(#n2) AND (attribute_not_exists(#n3) OR #n3 > :v2)"
        );
        assert_eq!(e.version_is(None), "attribute_not_exists(#n4)");
        let mut body = Map::new();
        e.add_to(&mut body);
        assert_eq!(
            body["ExpressionAttributeNames"],
            serde_json::json!({"#n0": "status", "#n1": "name", "#n2": "itemId", "#n3": "expiresAt", "#n4": "version"})
        );
        assert_eq!(
            body["ExpressionAttributeValues"][":v2"],
            serde_json::json!({"N": "100"})
        );
    }
}
