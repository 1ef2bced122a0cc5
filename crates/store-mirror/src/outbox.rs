//! The outbox: the list of ids whose latest write one side of the mirror
//! may not have yet ([`Outbox`]). An id is entered *before* its write is
//! sent and removed once both sides agree, so after a crash at any point
//! every acknowledged write is either replicated or still listed; draining
//! copies each listed item by state (as it stands on the side that was
//! written), which is idempotent.
//!
//! Two places keep it: a local SQLite file ([`crate::SqliteOutbox`], the default:
//! free, but gone with the host's disk) and the primary store itself
//! ([`crate::StoreOutbox`]: two more primary writes per write, but it
//! survives anything the primary survives).

use async_trait::async_trait;

/// Which side is behind for a listed id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Toward {
    /// The primary was written; the secondary still needs the item.
    Secondary,
    /// The secondary was written while the primary was down (only with
    /// [`crate::WritePolicy::Secondary`]); the primary needs it back.
    Primary,
}

impl Toward {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Toward::Secondary => "secondary",
            Toward::Primary => "primary",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        match text {
            "secondary" => Some(Toward::Secondary),
            "primary" => Some(Toward::Primary),
            _ => None,
        }
    }
}

/// One listed id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The item's id.
    pub id: String,
    /// The side that is behind.
    pub toward: Toward,
}

/// The outbox could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("the mirror's outbox {place}: {cause}")]
pub struct OutboxError {
    place: String,
    cause: String,
}

impl OutboxError {
    /// An error of the outbox kept at `place`.
    pub fn new(place: impl std::fmt::Display, cause: impl std::fmt::Display) -> Self {
        Self {
            place: place.to_string(),
            cause: cause.to_string(),
        }
    }
}

/// Where a mirror lists the ids one side is behind on. An entry must be
/// durable when `add` returns: it is written before the write it covers.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Lists `ids` as behind on `toward` (replacing an earlier direction).
    async fn add(&self, ids: &[String], toward: Toward) -> Result<(), OutboxError>;
    /// Removes `ids` from the list: both sides agree on them.
    async fn remove(&self, ids: &[String]) -> Result<(), OutboxError>;
    /// The side `id` is behind on, if it is listed.
    async fn direction(&self, id: &str) -> Result<Option<Toward>, OutboxError>;
    /// Up to `limit` listed ids, oldest first.
    async fn pending(&self, limit: usize) -> Result<Vec<Pending>, OutboxError>;
}
