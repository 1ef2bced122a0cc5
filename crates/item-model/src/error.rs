/// Why a store call failed (WIT `store-error`). Messages are for people and
/// must never carry a credential or a backend's raw response body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("no item has this id")]
    NotFound,
    #[error("an item with this id already exists")]
    AlreadyExists,
    /// Carries the current version, or `None` when the item does not exist.
    #[error("the item's version is not the expected one")]
    VersionMismatch(Option<String>),
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Retry after this many milliseconds.
    #[error("the storage backend is throttling requests; retry after {0} ms")]
    Throttled(u32),
    #[error("the storage backend is unavailable: {0}")]
    Unavailable(String),
    #[error("the storage backend refused the credentials: {0}")]
    Unauthorized(String),
    #[error("storage backend error: {0}")]
    Backend(String),
}

impl StoreError {
    pub fn invalid(message: impl Into<String>) -> Self {
        StoreError::InvalidInput(message.into())
    }
}
