/// Why a store call failed (WIT `store-error`). Messages are for people and
/// must never carry a credential or a backend's raw response body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// No unexpired item has this id.
    #[error("no item has this id")]
    NotFound,
    /// `create` found the id taken.
    #[error("an item with this id already exists")]
    AlreadyExists,
    /// Carries the current version, or `None` when the item does not exist.
    #[error("the item's version is not the expected one")]
    VersionMismatch(Option<String>),
    /// The request breaks a rule of the interface; says which.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Retry after this many milliseconds.
    #[error("the storage backend is throttling requests; retry after {0} ms")]
    Throttled(u32),
    /// The backend could not be reached or failed; retrying may help.
    #[error("the storage backend is unavailable: {0}")]
    Unavailable(String),
    /// The backend refused the credentials or the permission.
    #[error("the storage backend refused the credentials: {0}")]
    Unauthorized(String),
    /// Any other backend failure; not worth retrying.
    #[error("storage backend error: {0}")]
    Backend(String),
    /// `apply-once`: the key was used for another request.
    #[error("this idempotency key was used for another request")]
    KeyReused,
    /// `apply-once`: a write with this key is being applied right now.
    #[error("a write with this idempotency key is being applied right now")]
    KeyInUse,
}

impl StoreError {
    /// Shorthand for [`StoreError::InvalidInput`].
    pub fn invalid(message: impl Into<String>) -> Self {
        StoreError::InvalidInput(message.into())
    }
}
