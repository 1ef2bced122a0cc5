//! Where the table is and who we are: endpoint, region, table name and AWS
//! credentials. Checked once at construction, so that signing (which
//! needs a host in the URL) cannot fail on a malformed endpoint later.

use std::fmt;

/// Why a configuration value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The region is not of the `us-east-1` form (it becomes part of the
    /// endpoint host and of the signature scope).
    #[error("the AWS region `{0}` is not valid (expected something like `us-east-1`)")]
    Region(String),
    /// Carries no text: a refused endpoint may hold user info
    /// (`https://key:secret@host`), which must not reach a log.
    #[error(
        "the DynamoDB endpoint is not valid: it must be an http:// or https:// URL with a host and no user info or path, such as http://127.0.0.1:8000"
    )]
    Endpoint,
    /// The table name breaks DynamoDB's naming rules.
    #[error(
        "the table name `{0}` is not valid: 3 to 255 characters of letters, digits, `_`, `-` and `.`"
    )]
    Table(String),
    /// An empty access key id or secret.
    #[error("the AWS access key id and secret access key must not be empty")]
    Credentials,
}

/// AWS credentials. `Debug` redacts them all, so that a logged config
/// never leaks a key.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
}

impl Credentials {
    /// Static keys, with the session token of temporary credentials (STS);
    /// empty keys are refused.
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        session_token: Option<String>,
    ) -> Result<Self, ConfigError> {
        let credentials = Self {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: session_token.filter(|t| !t.is_empty()),
        };
        if credentials.access_key_id.is_empty() || credentials.secret_access_key.is_empty() {
            return Err(ConfigError::Credentials);
        }
        Ok(credentials)
    }

    pub(crate) fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    pub(crate) fn secret_access_key(&self) -> &str {
        &self.secret_access_key
    }

    pub(crate) fn session_token(&self) -> Option<&str> {
        self.session_token.as_deref()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &"<redacted>")
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// The default table name, as in the seed.
pub const DEFAULT_TABLE: &str = "Items";

/// The environment variable naming the table (default [`DEFAULT_TABLE`]);
/// the native store and the adapter component both read it.
pub const TABLE_VARIABLE: &str = "EDGE_ITEMS_DYNAMODB_TABLE";

/// Why the configuration could not be read from the environment. Messages
/// name the variable, never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    /// A required variable is not set (its name).
    #[error("{0} is not set; set it to use the DynamoDB store")]
    Missing(&'static str),
    /// A variable is set to something unusable.
    #[error("{variable}: {reason}")]
    Invalid {
        /// The variable's name (never its value).
        variable: &'static str,
        /// What is wrong with the value.
        reason: ConfigError,
    },
}

impl EnvError {
    /// Whether the credentials are what is missing or wrong (as opposed to
    /// the region, endpoint or table), so callers can report it as an
    /// authorization problem.
    pub fn is_credentials(&self) -> bool {
        match self {
            EnvError::Missing(variable) | EnvError::Invalid { variable, .. } => {
                variable.starts_with("AWS_ACCESS_KEY_ID")
                    || variable.starts_with("AWS_SECRET_ACCESS_KEY")
            }
        }
    }
}

/// Everything needed to address and sign requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    region: String,
    endpoint: String,
    table: String,
    credentials: Credentials,
}

impl Config {
    /// The regional AWS endpoint and the table `Items`.
    pub fn new(region: &str, credentials: Credentials) -> Result<Self, ConfigError> {
        let valid_region = !region.is_empty()
            && region.len() <= 64
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid_region {
            return Err(ConfigError::Region(region.into()));
        }
        Ok(Self {
            region: region.into(),
            endpoint: format!("https://dynamodb.{region}.amazonaws.com"),
            table: DEFAULT_TABLE.into(),
            credentials,
        })
    }

    /// Another endpoint, such as DynamoDB Local (`http://127.0.0.1:8000`).
    pub fn with_endpoint(mut self, endpoint: &str) -> Result<Self, ConfigError> {
        let trimmed = endpoint.trim_end_matches('/');
        let bad = || ConfigError::Endpoint;
        let uri: http::Uri = trimmed.parse().map_err(|_| bad())?;
        let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
        let host_ok = uri.host().is_some_and(|h| !h.is_empty());
        let path_ok = matches!(uri.path(), "" | "/") && uri.query().is_none();
        if !(scheme_ok && host_ok && path_ok) || trimmed.contains('@') {
            return Err(bad());
        }
        self.endpoint = trimmed.into();
        Ok(self)
    }

    /// Another table name than `Items`.
    pub fn with_table(mut self, table: &str) -> Result<Self, ConfigError> {
        let valid = (3..=255).contains(&table.len())
            && table
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !valid {
            return Err(ConfigError::Table(table.into()));
        }
        self.table = table.into();
        Ok(self)
    }

    /// From environment variables, as the AWS SDKs read them:
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, optional
    /// `AWS_SESSION_TOKEN`, `AWS_REGION` (or `AWS_DEFAULT_REGION`), the
    /// optional endpoint override `AWS_ENDPOINT_URL_DYNAMODB` (or
    /// `AWS_ENDPOINT_URL`), plus [`TABLE_VARIABLE`]. `lookup` reads one
    /// variable (`std::env::var` natively, `wasi:cli/environment` in a
    /// component); blank values count as unset, so that `NAME=` in a
    /// runtime's settings does not become an empty key.
    pub fn from_env_with(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, EnvError> {
        let credentials = Self::credentials_from_env_with(&lookup)?
            .ok_or(EnvError::Missing("AWS_ACCESS_KEY_ID"))?;
        Self::from_env_with_credentials(lookup, credentials)
    }

    /// The static keys of the environment (`AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, optional `AWS_SESSION_TOKEN`), `None` when
    /// `AWS_ACCESS_KEY_ID` is unset, so that the native host can then
    /// look further along the SDKs' chain (profiles, web identity,
    /// container and instance credentials).
    pub fn credentials_from_env_with(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Credentials>, EnvError> {
        let get = |name: &str| blank_is_unset(lookup(name));
        let Some(access_key) = get("AWS_ACCESS_KEY_ID") else {
            return Ok(None);
        };
        let secret =
            get("AWS_SECRET_ACCESS_KEY").ok_or(EnvError::Missing("AWS_SECRET_ACCESS_KEY"))?;
        Credentials::new(access_key, secret, get("AWS_SESSION_TOKEN"))
            .map(Some)
            .map_err(|reason| EnvError::Invalid {
                variable: "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
                reason,
            })
    }

    /// As [`Config::from_env_with`], with credentials that came from
    /// elsewhere: the region, endpoint and table still come from the
    /// environment.
    pub fn from_env_with_credentials(
        lookup: impl Fn(&str) -> Option<String>,
        credentials: Credentials,
    ) -> Result<Self, EnvError> {
        let get = |name: &str| blank_is_unset(lookup(name));
        let (region_variable, region) = match get("AWS_REGION") {
            Some(region) => ("AWS_REGION", region),
            None => (
                "AWS_DEFAULT_REGION",
                get("AWS_DEFAULT_REGION").ok_or(EnvError::Missing("AWS_REGION"))?,
            ),
        };
        let mut config = Self::new(&region, credentials).map_err(|reason| EnvError::Invalid {
            variable: region_variable,
            reason,
        })?;
        for variable in ["AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL"] {
            if let Some(endpoint) = get(variable) {
                config = config
                    .with_endpoint(&endpoint)
                    .map_err(|reason| EnvError::Invalid { variable, reason })?;
                break;
            }
        }
        if let Some(table) = get(TABLE_VARIABLE) {
            config = config
                .with_table(&table)
                .map_err(|reason| EnvError::Invalid {
                    variable: TABLE_VARIABLE,
                    reason,
                })?;
        }
        Ok(config)
    }

    /// The AWS region, which the signature is scoped to.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The endpoint without a trailing slash.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The table the items live in.
    pub fn table(&self) -> &str {
        &self.table
    }

    pub(crate) fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// The same table and endpoint, signed with other credentials (the
    /// native host's, refreshed before they expire).
    pub fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = credentials;
        self
    }
}

/// A variable's value trimmed, with blank counted as unset, so that `NAME=`
/// in a runtime's settings does not become an empty key.
fn blank_is_unset(value: Option<String>) -> Option<String> {
    value
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials() -> Credentials {
        Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            Some("token".into()),
        )
        .unwrap()
    }

    #[test]
    fn debug_never_shows_credentials() {
        let config = Config::new("us-east-1", credentials()).unwrap();
        let text = format!("{config:?}");
        for secret in ["AKIDEXAMPLE", "wJalrXUtnFEMI", "token\""] {
            assert!(!text.contains(secret), "{text}");
        }
        assert!(text.contains("dynamodb.us-east-1.amazonaws.com"), "{text}");
    }

    fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn reads_the_environment_like_the_sdks() {
        let config = Config::from_env_with(lookup(&[
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_SESSION_TOKEN", " "),
            ("AWS_REGION", ""),
            ("AWS_DEFAULT_REGION", "eu-central-1"),
            ("AWS_ENDPOINT_URL", "http://ignored:1"),
            ("AWS_ENDPOINT_URL_DYNAMODB", " http://127.0.0.1:8000/ "),
            (TABLE_VARIABLE, "Items-dev"),
        ]))
        .unwrap();
        assert_eq!(config.region(), "eu-central-1");
        assert_eq!(config.endpoint(), "http://127.0.0.1:8000");
        assert_eq!(config.table(), "Items-dev");
        assert_eq!(config.credentials().session_token(), None);

        let defaults = Config::from_env_with(lookup(&[
            ("AWS_ACCESS_KEY_ID", "a"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("AWS_REGION", "us-west-2"),
        ]))
        .unwrap();
        assert_eq!(defaults.table(), DEFAULT_TABLE);
        assert_eq!(
            defaults.endpoint(),
            "https://dynamodb.us-west-2.amazonaws.com"
        );
    }

    #[test]
    fn environment_errors_name_the_variable_not_the_value() {
        let missing = Config::from_env_with(lookup(&[("AWS_ACCESS_KEY_ID", "a")])).unwrap_err();
        assert_eq!(missing, EnvError::Missing("AWS_SECRET_ACCESS_KEY"));
        assert!(missing.is_credentials());
        let none = Config::from_env_with(lookup(&[("AWS_REGION", "us-east-1")])).unwrap_err();
        assert_eq!(none, EnvError::Missing("AWS_ACCESS_KEY_ID"));
        assert_eq!(
            Config::credentials_from_env_with(lookup(&[("AWS_ACCESS_KEY_ID", " ")])),
            Ok(None)
        );
        let given = Config::from_env_with_credentials(
            lookup(&[("AWS_REGION", "us-east-1")]),
            credentials(),
        )
        .unwrap();
        assert_eq!(given.credentials(), &credentials());
        let no_region = Config::from_env_with(lookup(&[
            ("AWS_ACCESS_KEY_ID", "a"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
        ]))
        .unwrap_err();
        assert_eq!(no_region, EnvError::Missing("AWS_REGION"));
        assert!(!no_region.is_credentials());
        let leaky = Config::from_env_with(lookup(&[
            ("AWS_ACCESS_KEY_ID", "a"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", "https://key:hunter2@example.test"),
        ]))
        .unwrap_err();
        let text = leaky.to_string();
        assert!(
            text.contains("AWS_ENDPOINT_URL") && !text.contains("hunter2"),
            "{text}"
        );
        assert!(!format!("{leaky:?}").contains("hunter2"));
        let table = Config::from_env_with(lookup(&[
            ("AWS_ACCESS_KEY_ID", "a"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("AWS_REGION", "us-east-1"),
            (TABLE_VARIABLE, "no spaces"),
        ]))
        .unwrap_err();
        assert!(table.to_string().starts_with(TABLE_VARIABLE), "{table}");
    }

    #[test]
    fn endpoints_and_tables_are_checked() {
        let config = Config::new("eu-west-1", credentials()).unwrap();
        let local = config
            .clone()
            .with_endpoint("http://127.0.0.1:8000/")
            .unwrap();
        assert_eq!(local.endpoint(), "http://127.0.0.1:8000");
        for bad in [
            "",
            "127.0.0.1:8000",
            "ftp://h",
            "http://h/path",
            "http://h?q",
            "http://u:p@h",
        ] {
            assert!(config.clone().with_endpoint(bad).is_err(), "{bad}");
        }
        assert!(config.clone().with_table("Items-test_1.x").is_ok());
        assert!(config.clone().with_table("ab").is_err());
        assert!(config.clone().with_table("a b c").is_err());
        assert!(Config::new("US EAST", credentials()).is_err());
        assert_eq!(
            Credentials::new("", "s", None),
            Err(ConfigError::Credentials)
        );
    }
}
