//! Where the items live: URLs, document names and field paths.
//!
//! A document has two spellings. Its *name*
//! (`projects/{project}/databases/{database}/documents/items/{id}`) goes
//! into JSON bodies as is; its *URL* has every path segment percent-encoded,
//! so that an id such as `a:commit`, `50%` or `a?b#c` stays one segment and
//! cannot reach another route. Ids are validated with the item model's rule
//! (no `/`, not `.`/`..`/`__x__`, at most 200 bytes), which Firestore's own
//! rules for document ids include.

use std::fmt;
use std::sync::Arc;

use item_model::StoreError;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Bytes kept as they are in a path segment: RFC 3986 unreserved characters
/// and the parentheses of `(default)`; everything else is encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'(')
    .remove(b')');

/// Why a [`Firestore`] target cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Not an http(s) URL, or one with a path.
    #[error("the Firestore base URL must start with http:// or https:// and have no path")]
    BaseUrl,
    /// The project id as given.
    #[error("`{0}` is not a valid project id (letters, digits, '-', '.', ':', '_')")]
    Project(String),
    /// The database id as given.
    #[error("`{0}` is not a valid database id (letters, digits, '-', or `(default)`)")]
    Database(String),
    /// The collection id as given, and what is wrong with it.
    #[error("`{0}` is not a valid collection id: {1}")]
    Collection(String, String),
}

/// The production endpoint.
pub const PRODUCTION_BASE_URL: &str = "https://firestore.googleapis.com";
/// The database every project has.
pub const DEFAULT_DATABASE: &str = "(default)";
/// The collection of the seed's data model.
pub const DEFAULT_COLLECTION: &str = "items";

/// What the records' collection id adds to the items' one. A collection
/// id may hold any character but `/` (and must not be `.`, `..` or
/// `__x__`), so `{collection}-once` is valid whenever the items' id is.
pub const RECORDS_SUFFIX: &str = "-once";

/// One collection of one Firestore database: the target of every request.
/// Cheap to clone.
#[derive(Clone)]
pub struct Firestore {
    inner: Arc<Inner>,
}

struct Inner {
    project: String,
    collection: String,
    /// `{collection}-once`: the idempotency records (see `crate::once`).
    records: String,
    /// `{base}/v1/projects/{p}/databases/{d}/documents`, encoded.
    documents_url: String,
    /// `projects/{p}/databases/{d}/documents`.
    documents_name: String,
}

impl fmt::Debug for Firestore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Firestore")
            .field("documents_url", &self.inner.documents_url)
            .field("collection", &self.inner.collection)
            .finish()
    }
}

impl Firestore {
    /// `base_url` is `https://firestore.googleapis.com` or an emulator's
    /// `http://host:port`.
    pub fn new(
        base_url: &str,
        project: &str,
        database: &str,
        collection: &str,
    ) -> Result<Self, ConfigError> {
        let base = base_url.trim_end_matches('/');
        let authority = base
            .strip_prefix("https://")
            .or_else(|| base.strip_prefix("http://"))
            .ok_or(ConfigError::BaseUrl)?;
        if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
            return Err(ConfigError::BaseUrl);
        }
        let project_ok = !project.is_empty()
            && project.len() <= 100
            && project
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:_".contains(&b));
        if !project_ok {
            return Err(ConfigError::Project(project.into()));
        }
        let database_ok = database == DEFAULT_DATABASE
            || (!database.is_empty()
                && database.len() <= 63
                && database
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-'));
        if !database_ok {
            return Err(ConfigError::Database(database.into()));
        }
        if let Err(e) = item_model::validate::id(collection) {
            return Err(ConfigError::Collection(
                collection.into(),
                e.to_string().replace("item id", "collection id"),
            ));
        }
        let documents_url = format!(
            "{base}/v1/projects/{}/databases/{}/documents",
            encode(project),
            encode(database)
        );
        let documents_name = format!("projects/{project}/databases/{database}/documents");
        Ok(Self {
            inner: Arc::new(Inner {
                project: project.into(),
                collection: collection.into(),
                records: format!("{collection}{RECORDS_SUFFIX}"),
                documents_url,
                documents_name,
            }),
        })
    }

    /// The Google Cloud project the database belongs to.
    pub fn project(&self) -> &str {
        &self.inner.project
    }

    /// The collection that holds the items, one document per item.
    pub fn collection(&self) -> &str {
        &self.inner.collection
    }

    /// The collection that holds the idempotency records of `apply-once`:
    /// the items' collection id followed by [`RECORDS_SUFFIX`].
    pub fn records_collection(&self) -> &str {
        &self.inner.records
    }

    /// The document name of the idempotency record of `key` (a WIT
    /// `once.key`, `[0-9A-Za-z_-]{1,128}`). The key is the document id,
    /// except that a key of the form `__x__` (which Firestore reserves)
    /// gets a leading `.`: keys never hold a `.`, so no two keys share a
    /// document.
    pub(crate) fn record_name(&self, key: &str) -> String {
        let reserved = key.len() >= 4 && key.starts_with("__") && key.ends_with("__");
        let dot = if reserved { "." } else { "" };
        format!(
            "{}/{}/{dot}{key}",
            self.inner.documents_name, self.inner.records
        )
    }

    /// The document name of an item, for JSON bodies. The id must have
    /// passed [`Firestore::check_id`].
    pub fn document_name(&self, id: &str) -> String {
        format!(
            "{}/{}/{id}",
            self.inner.documents_name, self.inner.collection
        )
    }

    /// The URL of an item's document, each segment percent-encoded.
    pub fn document_url(&self, id: &str) -> String {
        format!(
            "{}/{}/{}",
            self.inner.documents_url,
            encode(&self.inner.collection),
            encode(id)
        )
    }

    /// The Admin API's URL of the collection group (its `indexes` and
    /// `fields`), for provisioning.
    pub(crate) fn admin_url(&self) -> String {
        self.group_url(&self.inner.collection)
    }

    /// The Admin API's URL of the records' collection group (its TTL).
    pub(crate) fn records_admin_url(&self) -> String {
        self.group_url(&self.inner.records)
    }

    fn group_url(&self, group: &str) -> String {
        let database = self
            .inner
            .documents_url
            .strip_suffix("/documents")
            .unwrap_or(&self.inner.documents_url);
        format!("{database}/collectionGroups/{}", encode(group))
    }

    /// The URL of a method on the documents root (`commit`, `runQuery`).
    pub(crate) fn method_url(&self, method: &str) -> String {
        format!("{}:{method}", self.inner.documents_url)
    }

    /// Refuses ids that are not one plain document id.
    pub fn check_id(&self, id: &str) -> Result<(), StoreError> {
        item_model::validate::id(id)
    }

    /// The item id of a document name in this collection, if it is one.
    pub(crate) fn id_of<'a>(&self, name: &'a str) -> Option<&'a str> {
        name.strip_prefix(self.inner.documents_name.as_str())?
            .strip_prefix('/')?
            .strip_prefix(self.inner.collection.as_str())?
            .strip_prefix('/')
            .filter(|id| !id.contains('/'))
    }
}

/// The base URL of an emulator, from the `FIRESTORE_EMULATOR_HOST`
/// convention (`host:port`) or a plain `http://host:port`; `None` for
/// anything else (a path, credentials, https: the emulator speaks http).
pub fn emulator_base_url(host: &str) -> Option<String> {
    let host = host.trim().trim_end_matches('/');
    let authority = host.strip_prefix("http://").unwrap_or(host);
    let valid = !authority.is_empty()
        && !authority.contains(['/', '?', '#', '@', ' '])
        && !authority.starts_with("https:");
    valid.then(|| format!("http://{authority}"))
}

fn encode(segment: &str) -> String {
    utf8_percent_encode(segment, SEGMENT).to_string()
}

/// A field path for masks and transforms: a plain identifier as is,
/// anything else in backticks with `` ` `` and `\` escaped (Firestore's
/// field path syntax), so that a name with dots stays one field.
pub fn field_path(name: &str) -> String {
    let mut bytes = name.bytes();
    let simple = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if simple {
        return name.to_owned();
    }
    let mut quoted = String::with_capacity(name.len() + 2);
    quoted.push('`');
    for c in name.chars() {
        if c == '`' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('`');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fs() -> Firestore {
        Firestore::new(
            "http://127.0.0.1:8681/",
            "demo-p",
            DEFAULT_DATABASE,
            "items",
        )
        .unwrap()
    }

    #[test]
    fn names_and_urls() {
        let fs = fs();
        assert_eq!(
            fs.document_name("ünï cödé:100%"),
            "projects/demo-p/databases/(default)/documents/items/ünï cödé:100%"
        );
        assert_eq!(
            fs.document_url("ünï cödé:100%"),
            "http://127.0.0.1:8681/v1/projects/demo-p/databases/(default)/documents/items/%C3%BCn%C3%AF%20c%C3%B6d%C3%A9%3A100%25"
        );
        assert_eq!(
            fs.document_url("a?b#c"),
            "http://127.0.0.1:8681/v1/projects/demo-p/databases/(default)/documents/items/a%3Fb%23c"
        );
        assert_eq!(
            fs.method_url("commit"),
            "http://127.0.0.1:8681/v1/projects/demo-p/databases/(default)/documents:commit"
        );
        assert_eq!(fs.id_of(&fs.document_name("x y")), Some("x y"));
        assert_eq!(fs.records_collection(), "items-once");
        assert_eq!(
            fs.record_name("k-1_A"),
            "projects/demo-p/databases/(default)/documents/items-once/k-1_A"
        );
        // Firestore reserves `__x__` ids; keys never hold a `.`.
        assert_eq!(
            fs.record_name("__k__"),
            "projects/demo-p/databases/(default)/documents/items-once/.__k__"
        );
        assert!(fs.record_name("__").ends_with("/__"));
        assert!(fs.record_name("___").ends_with("/___"));
        assert_eq!(
            fs.records_admin_url(),
            "http://127.0.0.1:8681/v1/projects/demo-p/databases/(default)/collectionGroups/items-once"
        );
        assert_eq!(
            fs.id_of("projects/demo-p/databases/(default)/documents/other/x"),
            None
        );
    }

    #[test]
    fn no_slash_injection() {
        let fs = fs();
        for bad in ["a/b", "..", ".", "__name__", ""] {
            assert!(fs.check_id(bad).is_err(), "{bad}");
        }
        assert!(!fs.document_url("%2F").ends_with("/%2F"));
    }

    #[test]
    fn bad_targets_are_refused() {
        assert_eq!(
            Firestore::new("ftp://x", "p", DEFAULT_DATABASE, "items").err(),
            Some(ConfigError::BaseUrl)
        );
        assert!(Firestore::new("https://h/path", "p", DEFAULT_DATABASE, "items").is_err());
        assert!(Firestore::new(PRODUCTION_BASE_URL, "a/b", DEFAULT_DATABASE, "items").is_err());
        assert!(Firestore::new(PRODUCTION_BASE_URL, "p", "x/y", "items").is_err());
        assert!(Firestore::new(PRODUCTION_BASE_URL, "p", DEFAULT_DATABASE, "a/b").is_err());
        assert!(Firestore::new(PRODUCTION_BASE_URL, "p", "my-db", "things").is_ok());
    }

    #[test]
    fn emulator_hosts() {
        assert_eq!(
            emulator_base_url("127.0.0.1:8681").as_deref(),
            Some("http://127.0.0.1:8681")
        );
        assert_eq!(
            emulator_base_url(" http://localhost:8080/ ").as_deref(),
            Some("http://localhost:8080")
        );
        for bad in ["", "http://h/path", "https://h:1", "user@h:1"] {
            assert_eq!(emulator_base_url(bad), None, "{bad}");
        }
    }

    #[test]
    fn field_paths_are_quoted_when_needed() {
        assert_eq!(field_path("likes"), "likes");
        assert_eq!(field_path("_x9"), "_x9");
        assert_eq!(field_path("a b"), "`a b`");
        assert_eq!(field_path("a.b"), "`a.b`");
        assert_eq!(field_path("9lives"), "`9lives`");
        assert_eq!(field_path("back`tick\\"), "`back\\`tick\\\\`");
    }
}
