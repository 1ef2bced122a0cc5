//! Where the adapter connects and how, from the environment
//! (`wasi:cli/environment`: `wasmtime serve --env`, Spin's `environment`,
//! our host's settings). A component has no filesystem, so the
//! service-account key travels as its JSON text.

use firestore_protocol::{
    Credentials, DEFAULT_COLLECTION, DEFAULT_DATABASE, Firestore, PRODUCTION_BASE_URL,
    ServiceAccountKey, emulator_base_url,
};
use item_model::StoreError;

/// The emulator's address (`host:port`); when set, the adapter talks to the
/// emulator with `Bearer owner` and needs no key.
pub const ENV_EMULATOR_HOST: &str = "FIRESTORE_EMULATOR_HOST";
/// The service-account key JSON itself (production).
pub const ENV_SERVICE_ACCOUNT_JSON: &str = "GOOGLE_SERVICE_ACCOUNT_JSON";
/// The project id; by default the key's `project_id` (or `demo-items` with
/// the emulator).
pub const ENV_PROJECT: &str = "GOOGLE_CLOUD_PROJECT";
/// The database id; by default `(default)`.
pub const ENV_DATABASE: &str = "FIRESTORE_DATABASE";
/// The collection; by default `items`.
pub const ENV_COLLECTION: &str = "FIRESTORE_COLLECTION";
/// Another endpoint speaking the production API with a service-account key
/// (default `https://firestore.googleapis.com`).
pub const ENV_BASE_URL: &str = "FIRESTORE_BASE_URL";
/// The native store's key-file variable: read here only to explain that a
/// component cannot open files.
const ENV_KEY_FILE: &str = "GOOGLE_APPLICATION_CREDENTIALS";

/// The emulator-only project used when none is given (Firebase's `demo-`
/// convention, as in the native store).
pub const EMULATOR_DEFAULT_PROJECT: &str = "demo-items";

/// A usable configuration: the target collection and its credentials.
#[derive(Debug)]
pub struct Config {
    /// The project, database and collection every request names.
    pub firestore: Firestore,
    /// `Bearer owner` for the emulator, else the service-account key.
    pub credentials: Credentials,
}

impl Config {
    /// From the component's environment.
    pub fn from_env() -> Result<Self, StoreError> {
        Self::from_lookup(component_http::env)
    }

    /// From `lookup` (a variable's non-blank value). Errors say what to
    /// set and never quote the key.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, StoreError> {
        // The project to use when GOOGLE_CLOUD_PROJECT is not set.
        let (base_url, credentials, default_project) = if let Some(host) = lookup(ENV_EMULATOR_HOST)
        {
            let base_url = emulator_base_url(&host).ok_or_else(|| {
                StoreError::Backend(format!(
                    "{ENV_EMULATOR_HOST}=`{host}` is not an emulator address (host:port or http://host:port)"
                ))
            })?;
            (
                base_url,
                Credentials::emulator(),
                Some(EMULATOR_DEFAULT_PROJECT.to_owned()),
            )
        } else if let Some(json) = lookup(ENV_SERVICE_ACCOUNT_JSON) {
            let key = ServiceAccountKey::from_json(&json).map_err(|e| {
                StoreError::Unauthorized(format!("{ENV_SERVICE_ACCOUNT_JSON}: {e}"))
            })?;
            let base_url = lookup(ENV_BASE_URL).unwrap_or_else(|| PRODUCTION_BASE_URL.to_owned());
            let project = key.project_id().map(str::to_owned);
            (base_url, Credentials::service_account(key), project)
        } else {
            let hint = if lookup(ENV_KEY_FILE).is_some() {
                format!(
                    " ({ENV_KEY_FILE} names a file, which a component cannot read; put the file's content in {ENV_SERVICE_ACCOUNT_JSON})"
                )
            } else {
                String::new()
            };
            return Err(StoreError::Unauthorized(format!(
                "no Firestore credentials: set {ENV_EMULATOR_HOST} for the emulator or {ENV_SERVICE_ACCOUNT_JSON} to a service-account key's JSON{hint}"
            )));
        };
        let project = lookup(ENV_PROJECT).or(default_project).ok_or_else(|| {
            StoreError::Backend(format!(
                "no Firestore project id: set {ENV_PROJECT} or use a key with a project_id"
            ))
        })?;
        let database = lookup(ENV_DATABASE).unwrap_or_else(|| DEFAULT_DATABASE.to_owned());
        let collection = lookup(ENV_COLLECTION).unwrap_or_else(|| DEFAULT_COLLECTION.to_owned());
        let firestore = Firestore::new(&base_url, &project, &database, &collection)
            .map_err(|e| StoreError::Backend(format!("Firestore configuration: {e}")))?;
        Ok(Self {
            firestore,
            credentials,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, StoreError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn the_emulator_needs_only_its_address() {
        let plain = config(&[(ENV_EMULATOR_HOST, "127.0.0.1:8681")]).unwrap();
        assert_eq!(plain.firestore.project(), EMULATOR_DEFAULT_PROJECT);
        assert_eq!(plain.firestore.collection(), "items");
        assert_eq!(
            plain.firestore.document_url("a"),
            "http://127.0.0.1:8681/v1/projects/demo-items/databases/(default)/documents/items/a"
        );
        let named = config(&[
            (ENV_EMULATOR_HOST, "http://localhost:8080"),
            (ENV_PROJECT, "demo-x"),
            (ENV_DATABASE, "other-db"),
            (ENV_COLLECTION, "things"),
        ])
        .unwrap();
        assert_eq!(
            named.firestore.document_url("a"),
            "http://localhost:8080/v1/projects/demo-x/databases/other-db/documents/things/a"
        );
    }

    #[test]
    fn missing_or_broken_settings_say_what_to_set() {
        let Err(StoreError::Unauthorized(message)) = config(&[]) else {
            panic!("no credentials must be Unauthorized");
        };
        assert!(message.contains(ENV_SERVICE_ACCOUNT_JSON), "{message}");
        let Err(StoreError::Unauthorized(message)) = config(&[(ENV_KEY_FILE, "/k.json")]) else {
            panic!("a key file must be explained");
        };
        assert!(message.contains("cannot read"), "{message}");
        let Err(StoreError::Unauthorized(message)) =
            config(&[(ENV_SERVICE_ACCOUNT_JSON, r#"{"private_key":"secret-text"}"#)])
        else {
            panic!("a bad key must be Unauthorized");
        };
        assert!(!message.contains("secret-text"), "{message}");
        assert!(matches!(
            config(&[(ENV_EMULATOR_HOST, "http://h/path")]),
            Err(StoreError::Backend(_))
        ));
        assert!(matches!(
            config(&[(ENV_EMULATOR_HOST, "h:1"), (ENV_COLLECTION, "a/b")]),
            Err(StoreError::Backend(_))
        ));
    }
}
