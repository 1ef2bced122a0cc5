//! Where the Firestore store connects and how.

use std::path::PathBuf;
use std::time::Duration;

use firestore_protocol::adc::{self, AdcFile, AuthorizedUser};
use firestore_protocol::{
    AuthError, DEFAULT_COLLECTION, DEFAULT_DATABASE, PRODUCTION_BASE_URL, ServiceAccountKey,
};

/// The emulator's address (`host:port` or `http://host:port`); when set,
/// the store talks to the emulator with `Bearer owner`.
pub const ENV_EMULATOR_HOST: &str = "FIRESTORE_EMULATOR_HOST";
/// The path of a credentials file (production): a service-account key,
/// or a user's from `gcloud auth application-default login`.
pub const ENV_CREDENTIALS: &str = "GOOGLE_APPLICATION_CREDENTIALS";
/// gcloud's configuration folder (default `~/.config/gcloud`), where
/// `gcloud auth application-default login` writes its credentials file.
pub const ENV_GCLOUD_CONFIG: &str = "CLOUDSDK_CONFIG";
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
    /// Neither an emulator address nor credentials were given (only
    /// builders without [`FirestoreConfig::from_env`] get this: the
    /// environment always ends at the metadata server).
    #[error(
        "no Firestore endpoint: set {ENV_EMULATOR_HOST} for the emulator or {ENV_CREDENTIALS} to a credentials file"
    )]
    NoCredentials,
    /// Production without a project id, and the credentials name none.
    #[error(
        "no Firestore project id: set {ENV_PROJECT}, or use a key file with a project_id, or run on Google Cloud"
    )]
    NoProject,
    /// No token could be had from the credentials at start (the cause is
    /// the protocol's message; the log has the details).
    #[error(
        "no Google credentials: {0}; set {ENV_CREDENTIALS} to a key file, run `gcloud auth application-default login`, or run on Google Cloud (the metadata server)"
    )]
    Token(String),
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
    /// Production with a user's refresh token (gcloud's application
    /// default credentials), exchanged for access tokens.
    AuthorizedUser {
        /// [`PRODUCTION_BASE_URL`] unless overridden.
        base_url: String,
        /// The OAuth client and refresh token.
        user: Box<AuthorizedUser>,
    },
    /// Production with the access tokens of the instance's service account,
    /// from the metadata server (GCE, GKE, Cloud Run).
    MetadataServer {
        /// [`PRODUCTION_BASE_URL`] unless overridden.
        base_url: String,
        /// `host[:port]` of the metadata server.
        host: String,
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

    /// From the environment, as Google's client libraries find
    /// Application Default Credentials: [`ENV_EMULATOR_HOST`] (the
    /// emulator), else the file in [`ENV_CREDENTIALS`], else gcloud's
    /// `application_default_credentials.json` (in [`ENV_GCLOUD_CONFIG`],
    /// else `~/.config/gcloud`), else the metadata server
    /// (`GCE_METADATA_HOST`, else `metadata.google.internal`); then
    /// [`ENV_PROJECT`], [`ENV_DATABASE`], [`ENV_COLLECTION`].
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::builder_from_env().build()
    }

    /// The builder [`FirestoreConfig::from_env`] uses, for callers that
    /// override some settings (the host's `--firestore-*` flags).
    pub fn builder_from_env() -> FirestoreConfigBuilder {
        Self::builder_from_env_with(|name| std::env::var(name).ok(), |path| path.is_file())
    }

    /// [`FirestoreConfig::builder_from_env`] with the environment and the
    /// file system given.
    fn builder_from_env_with(
        lookup: impl Fn(&str) -> Option<String>,
        exists: impl Fn(&std::path::Path) -> bool,
    ) -> FirestoreConfigBuilder {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut builder = Self::builder();
        let gcloud_file = var(ENV_GCLOUD_CONFIG)
            .map(PathBuf::from)
            .or_else(|| var("HOME").map(|home| PathBuf::from(home).join(".config/gcloud")))
            .map(|dir| dir.join(adc::GCLOUD_ADC_FILE))
            .filter(|file| exists(file));
        if let Some(host) = var(ENV_EMULATOR_HOST) {
            builder = builder.emulator_host(host);
        } else if let Some(path) = var(ENV_CREDENTIALS).map(PathBuf::from).or(gcloud_file) {
            builder = builder.service_account_key_file(path);
        } else {
            let host = var(adc::METADATA_HOST_VARIABLE);
            builder = builder.metadata_server(host.as_deref().unwrap_or(adc::METADATA_HOST));
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
    metadata_host: Option<String>,
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

    /// Authenticate with the credentials file at this path: a
    /// service-account key or an `authorized_user` file.
    pub fn service_account_key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.key_file = Some(path.into());
        self
    }

    /// Authenticate with the tokens of the metadata server at `host`
    /// (`host[:port]`), the instance's service account.
    pub fn metadata_server(mut self, host: impl Into<String>) -> Self {
        self.metadata_host = Some(host.into());
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
    pub fn build(mut self) -> Result<FirestoreConfig, ConfigError> {
        let (endpoint, key_project) = if let Some(host) = self.emulator_host.take() {
            (
                Endpoint::Emulator {
                    base_url: emulator_base_url(&host)?,
                },
                None,
            )
        } else {
            let base_url = self
                .base_url
                .take()
                .unwrap_or_else(|| PRODUCTION_BASE_URL.to_owned());
            let file = match (
                self.key.take(),
                self.key_file.take(),
                self.metadata_host.take(),
            ) {
                (Some(key), _, _) => AdcFile::ServiceAccount(Box::new(key)),
                (None, Some(path), _) => {
                    let text = std::fs::read_to_string(&path)
                        .map_err(|source| ConfigError::KeyFile { path, source })?;
                    AdcFile::from_json(&text)?
                }
                (None, None, Some(host)) => {
                    return Ok(self.finish(Endpoint::MetadataServer { base_url, host }, None));
                }
                (None, None, None) => return Err(ConfigError::NoCredentials),
            };
            match file {
                AdcFile::ServiceAccount(key) => {
                    let project = key.project_id().map(str::to_owned);
                    (Endpoint::ServiceAccount { base_url, key }, project)
                }
                AdcFile::AuthorizedUser(user) => {
                    let project = user.quota_project_id().map(str::to_owned);
                    let user = Box::new(user);
                    (Endpoint::AuthorizedUser { base_url, user }, project)
                }
            }
        };
        let config = self.finish(endpoint, key_project);
        if config.project_id.is_empty() {
            return Err(ConfigError::NoProject);
        }
        Ok(config)
    }

    /// The configuration with its defaults; the project stays empty when
    /// unknown (the metadata server's is read when the store connects).
    fn finish(self, endpoint: Endpoint, credentials_project: Option<String>) -> FirestoreConfig {
        let project_id = match (&endpoint, self.project_id.or(credentials_project)) {
            (_, Some(project)) => project,
            (Endpoint::Emulator { .. }, None) => EMULATOR_DEFAULT_PROJECT.to_owned(),
            (_, None) => String::new(),
        };
        FirestoreConfig {
            project_id,
            database: self.database.unwrap_or_else(|| DEFAULT_DATABASE.to_owned()),
            collection: self
                .collection
                .unwrap_or_else(|| DEFAULT_COLLECTION.to_owned()),
            endpoint,
            request_timeout: self.request_timeout.unwrap_or(Duration::from_secs(30)),
            connect_timeout: self.connect_timeout.unwrap_or(Duration::from_secs(5)),
            retry: self.retry.unwrap_or(firestore_protocol::RETRY_POLICY),
        }
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
        // The metadata server's project is read when the store connects.
        let metadata = FirestoreConfig::builder()
            .metadata_server("127.0.0.1:1")
            .build()
            .unwrap();
        assert_eq!(metadata.project_id, "");
    }

    /// Which credentials the environment selects, in Google's order.
    fn selected(vars: &[(&str, &str)], gcloud_file: bool) -> FirestoreConfigBuilder {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        FirestoreConfig::builder_from_env_with(
            move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
            move |path| gcloud_file && path.ends_with(adc::GCLOUD_ADC_FILE),
        )
    }

    #[test]
    fn application_default_credentials_are_found_in_order() {
        let emulator = selected(
            &[(ENV_EMULATOR_HOST, "h:1"), (ENV_CREDENTIALS, "k.json")],
            true,
        );
        assert_eq!(emulator.emulator_host.as_deref(), Some("h:1"));
        let file = selected(&[(ENV_CREDENTIALS, "k.json"), ("HOME", "/home/u")], true);
        assert_eq!(file.key_file, Some(PathBuf::from("k.json")));
        let gcloud = selected(&[("HOME", "/home/u")], true);
        assert_eq!(
            gcloud.key_file,
            Some(PathBuf::from(
                "/home/u/.config/gcloud/application_default_credentials.json"
            ))
        );
        let gcloud_dir = selected(&[("HOME", "/home/u"), (ENV_GCLOUD_CONFIG, "/etc/g")], true);
        assert_eq!(
            gcloud_dir.key_file,
            Some(PathBuf::from("/etc/g/application_default_credentials.json"))
        );
        let metadata = selected(&[("HOME", "/home/u")], false);
        assert_eq!(metadata.key_file, None);
        assert_eq!(
            metadata.metadata_host.as_deref(),
            Some("metadata.google.internal")
        );
        let overridden = selected(&[(adc::METADATA_HOST_VARIABLE, "127.0.0.1:9")], false);
        assert_eq!(overridden.metadata_host.as_deref(), Some("127.0.0.1:9"));
    }
}
