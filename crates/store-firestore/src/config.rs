//! Where the Firestore store connects and how.

use std::path::PathBuf;
use std::time::Duration;

use firestore_protocol::{
    AuthError, DEFAULT_COLLECTION, DEFAULT_DATABASE, PRODUCTION_BASE_URL, ServiceAccountKey,
};

/// The emulator's address (`host:port` or `http://host:port`); when set,
/// the store talks to the emulator with `Bearer owner`.
pub const ENV_EMULATOR_HOST: &str = "FIRESTORE_EMULATOR_HOST";
/// The path of a service-account JSON key file (production).
pub const ENV_CREDENTIALS: &str = "GOOGLE_APPLICATION_CREDENTIALS";
/// The project id; by default the key file's `project_id`.
pub const ENV_PROJECT: &str = "GOOGLE_CLOUD_PROJECT";
/// The database id; by default `(default)`.
pub const ENV_DATABASE: &str = "FIRESTORE_DATABASE";
/// The collection; by default `items`.
pub const ENV_COLLECTION: &str = "FIRESTORE_COLLECTION";

/// The project used with the emulator when none is given: `demo-` projects
/// are the emulator-only convention of Firebase.
pub const EMULATOR_DEFAULT_PROJECT: &str = "demo-items";

/// Why a configuration cannot be used. Never quotes a key file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Neither an emulator address nor a service-account key was given.
    #[error(
        "no Firestore endpoint: set {ENV_EMULATOR_HOST} for the emulator or {ENV_CREDENTIALS} to a service-account key file"
    )]
    NoCredentials,
    /// Production without a project id, and the key file names none.
    #[error("no Firestore project id: set {ENV_PROJECT} or use a key file with a project_id")]
    NoProject,
    /// The emulator address is not `host:port` or `http://host:port`.
    #[error("`{0}` is not an emulator address (host:port or http://host:port)")]
    EmulatorHost(String),
    /// The key file could not be read.
    #[error("cannot read the service-account key file {path}: {source}")]
    KeyFile {
        /// The file as given.
        path: PathBuf,
        /// Why reading it failed.
        source: std::io::Error,
    },
    /// The key file was read but is not a usable service-account key.
    #[error(transparent)]
    Key(#[from] AuthError),
    /// The base URL, project, database or collection is not valid for
    /// Firestore.
    #[error(transparent)]
    Target(#[from] firestore_protocol::ConfigError),
    /// reqwest refused the client settings (TLS set-up).
    #[error("cannot set up the HTTP client: {0}")]
    Http(String),
}

/// How the store authenticates.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// The emulator at `base_url` (`http://host:port`), `Bearer owner`.
    Emulator {
        /// `http://host:port`, no path.
        base_url: String,
    },
    /// Production (or anything speaking its API) with a service-account key.
    ServiceAccount {
        /// [`PRODUCTION_BASE_URL`] unless overridden.
        base_url: String,
        /// Signs the store's bearer tokens.
        key: Box<ServiceAccountKey>,
    },
}

/// Retry settings: `sansio`'s capped exponential backoff with full jitter;
/// the default is [`firestore_protocol::RETRY_POLICY`].
pub use sansio::RetryPolicy;

/// A complete configuration; build one with [`FirestoreConfig::builder`]
/// or [`FirestoreConfig::from_env`].
#[derive(Debug, Clone)]
pub struct FirestoreConfig {
    /// The Google Cloud project; with the emulator, any `demo-` id.
    pub project_id: String,
    /// The database id, `(default)` unless set.
    pub database: String,
    /// The collection holding one document per item, `items` unless set.
    pub collection: String,
    /// Where requests go and how they are authenticated.
    pub endpoint: Endpoint,
    /// Limit for one HTTP exchange, connect included.
    pub request_timeout: Duration,
    /// Limit for opening a connection (5 s unless set).
    pub connect_timeout: Duration,
    /// How failed requests are retried.
    pub retry: RetryPolicy,
}

impl FirestoreConfig {
    /// An empty builder: nothing from the environment.
    pub fn builder() -> FirestoreConfigBuilder {
        FirestoreConfigBuilder::default()
    }

    /// From the environment: [`ENV_EMULATOR_HOST`] (emulator) or
    /// [`ENV_CREDENTIALS`] (a key file), [`ENV_PROJECT`], [`ENV_DATABASE`],
    /// [`ENV_COLLECTION`].
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::builder_from_env().build()
    }

    /// The builder [`FirestoreConfig::from_env`] uses, for callers that
    /// override some settings (the host's `--firestore-*` flags).
    pub fn builder_from_env() -> FirestoreConfigBuilder {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let mut builder = Self::builder();
        if let Some(host) = var(ENV_EMULATOR_HOST) {
            builder = builder.emulator_host(host);
        } else if let Some(path) = var(ENV_CREDENTIALS) {
            builder = builder.service_account_key_file(path);
        }
        if let Some(project) = var(ENV_PROJECT) {
            builder = builder.project_id(project);
        }
        if let Some(database) = var(ENV_DATABASE) {
            builder = builder.database(database);
        }
        if let Some(collection) = var(ENV_COLLECTION) {
            builder = builder.collection(collection);
        }
        builder
    }
}

/// Builds a [`FirestoreConfig`].
#[derive(Debug, Default, Clone)]
pub struct FirestoreConfigBuilder {
    project_id: Option<String>,
    database: Option<String>,
    collection: Option<String>,
    emulator_host: Option<String>,
    key_file: Option<PathBuf>,
    key: Option<ServiceAccountKey>,
    base_url: Option<String>,
    request_timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    retry: Option<RetryPolicy>,
}

impl FirestoreConfigBuilder {
    /// The project; by default the key file's, or [`EMULATOR_DEFAULT_PROJECT`]
    /// with the emulator.
    pub fn project_id(mut self, project: impl Into<String>) -> Self {
        self.project_id = Some(project.into());
        self
    }

    /// The database id (default `(default)`).
    pub fn database(mut self, database: impl Into<String>) -> Self {
        self.database = Some(database.into());
        self
    }

    /// The collection (default `items`).
    pub fn collection(mut self, collection: impl Into<String>) -> Self {
        self.collection = Some(collection.into());
        self
    }

    /// Use the emulator at `host:port` or `http://host:port`.
    pub fn emulator_host(mut self, host: impl Into<String>) -> Self {
        self.emulator_host = Some(host.into());
        self
    }

    /// Authenticate with the service-account key in this file.
    pub fn service_account_key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.key_file = Some(path.into());
        self
    }

    /// Authenticate with this service-account key.
    pub fn service_account_key(mut self, key: ServiceAccountKey) -> Self {
        self.key = Some(key);
        self
    }

    /// Another production-compatible endpoint (default
    /// `https://firestore.googleapis.com`).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// Limit for one HTTP exchange, connect included (default 30 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// Limit for opening a connection (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Retry settings (default [`firestore_protocol::RETRY_POLICY`]).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Checks the settings and fills in the defaults; an emulator address
    /// wins over a key. Reads the key file, if one was given.
    pub fn build(self) -> Result<FirestoreConfig, ConfigError> {
        let (endpoint, key_project) = if let Some(host) = self.emulator_host {
            (
                Endpoint::Emulator {
                    base_url: emulator_base_url(&host)?,
                },
                None,
            )
        } else {
            let key = match (self.key, self.key_file) {
                (Some(key), _) => key,
                (None, Some(path)) => {
                    let text = std::fs::read_to_string(&path)
                        .map_err(|source| ConfigError::KeyFile { path, source })?;
                    ServiceAccountKey::from_json(&text)?
                }
                (None, None) => return Err(ConfigError::NoCredentials),
            };
            let project = key.project_id().map(str::to_owned);
            let base_url = self
                .base_url
                .unwrap_or_else(|| PRODUCTION_BASE_URL.to_owned());
            (
                Endpoint::ServiceAccount {
                    base_url,
                    key: Box::new(key),
                },
                project,
            )
        };
        let project_id = match (&endpoint, self.project_id.or(key_project)) {
            (_, Some(project)) => project,
            (Endpoint::Emulator { .. }, None) => EMULATOR_DEFAULT_PROJECT.to_owned(),
            (Endpoint::ServiceAccount { .. }, None) => return Err(ConfigError::NoProject),
        };
        Ok(FirestoreConfig {
            project_id,
            database: self.database.unwrap_or_else(|| DEFAULT_DATABASE.to_owned()),
            collection: self
                .collection
                .unwrap_or_else(|| DEFAULT_COLLECTION.to_owned()),
            endpoint,
            request_timeout: self.request_timeout.unwrap_or(Duration::from_secs(30)),
            connect_timeout: self.connect_timeout.unwrap_or(Duration::from_secs(5)),
            retry: self.retry.unwrap_or(firestore_protocol::RETRY_POLICY),
        })
    }
}

/// `host:port` as the emulator convention writes it, or a full http URL.
fn emulator_base_url(host: &str) -> Result<String, ConfigError> {
    firestore_protocol::emulator_base_url(host)
        .ok_or_else(|| ConfigError::EmulatorHost(host.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emulator_hosts() {
        assert_eq!(
            emulator_base_url("127.0.0.1:8681").unwrap(),
            "http://127.0.0.1:8681"
        );
        assert_eq!(
            emulator_base_url("http://localhost:8080/").unwrap(),
            "http://localhost:8080"
        );
        assert!(emulator_base_url("").is_err());
        assert!(emulator_base_url("http://h/path").is_err());
    }

    #[test]
    fn builder_defaults() {
        let config = FirestoreConfig::builder()
            .emulator_host("127.0.0.1:1")
            .build()
            .unwrap();
        assert_eq!(config.project_id, EMULATOR_DEFAULT_PROJECT);
        assert_eq!(config.database, "(default)");
        assert_eq!(config.collection, "items");
        assert!(matches!(
            FirestoreConfig::builder().project_id("p").build(),
            Err(ConfigError::NoCredentials)
        ));
        let missing = FirestoreConfig::builder()
            .service_account_key_file("no-such-dir/key.json")
            .build();
        assert!(matches!(missing, Err(ConfigError::KeyFile { .. })));
    }
}
