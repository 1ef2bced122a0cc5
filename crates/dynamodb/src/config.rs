//! Where the table is and who we are: endpoint, region, table name and AWS
//! credentials. Checked once at construction, so that signing (which
//! needs a host in the URL) cannot fail on a malformed endpoint later.

use std::fmt;

/// Why a configuration value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("the AWS region `{0}` is not valid (expected something like `us-east-1`)")]
    Region(String),
    #[error(
        "the DynamoDB endpoint `{0}` is not valid: it must be an http:// or https:// URL with a host and no path, such as http://127.0.0.1:8000"
    )]
    Endpoint(String),
    #[error(
        "the table name `{0}` is not valid: 3 to 255 characters of letters, digits, `_`, `-` and `.`"
    )]
    Table(String),
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
        let bad = || ConfigError::Endpoint(endpoint.into());
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

    pub fn region(&self) -> &str {
        &self.region
    }

    /// The endpoint without a trailing slash.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub(crate) fn credentials(&self) -> &Credentials {
        &self.credentials
    }
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
