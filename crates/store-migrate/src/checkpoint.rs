//! Where a copy stands: each segment's cursor and counts, in a small JSON
//! file replaced atomically (written beside it, then renamed) after every
//! page, so a crash leaves either the old state or the new one.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Why a checkpoint could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file could not be read or written.
    #[error("checkpoint {path}: {source}")]
    Io {
        /// The checkpoint file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a checkpoint of this program.
    #[error(
        "checkpoint {path} is damaged ({reason}); delete it, or pass --restart, to copy from the start"
    )]
    Damaged {
        /// The checkpoint file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The file belongs to another copy (other stores, segments or
    /// `--since`).
    #[error(
        "checkpoint {path} belongs to another migration ({found}); pass --restart to start this one over, or use another --checkpoint"
    )]
    OtherMigration {
        /// The checkpoint file.
        path: PathBuf,
        /// What it was made for.
        found: String,
    },
}

/// One segment's progress.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentState {
    /// The cursor of the next page to read; `None` before the first page
    /// (or, with `done`, after the last).
    pub cursor: Option<String>,
    /// Every page of the segment has been written.
    pub done: bool,
    /// Items written to the target.
    pub copied: u64,
    /// Expired items passed over.
    pub skipped_expired: u64,
    /// Items the target refused (see [`crate::Refused`]).
    pub refused: u64,
}

/// The state of one copy, as saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Names the copy: source, target, segments and `--since`; a file made
    /// for another copy is refused.
    pub migration: String,
    /// When the copy first started (RFC 3339): every item written after it
    /// may have been missed, so a catch-up copy starts a little before it.
    pub started_at: String,
    /// One entry per segment.
    pub segments: Vec<SegmentState>,
    #[serde(skip)]
    path: PathBuf,
}

impl Checkpoint {
    /// The checkpoint at `path` for `migration`: the saved one when there is
    /// one (and it is for the same migration), else a fresh one with
    /// `segments` segments; `restart` ignores a saved one.
    pub fn open(
        path: &Path,
        migration: &str,
        segments: u32,
        started_at: &str,
        restart: bool,
    ) -> Result<Self, CheckpointError> {
        let fresh = || Self {
            migration: migration.to_owned(),
            started_at: started_at.to_owned(),
            segments: vec![SegmentState::default(); segments as usize],
            path: path.to_owned(),
        };
        if restart {
            return Ok(fresh());
        }
        let text = match std::fs::read(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(fresh()),
            Err(source) => {
                return Err(CheckpointError::Io {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let mut saved: Self =
            serde_json::from_slice(&text).map_err(|e| CheckpointError::Damaged {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
        if saved.migration != migration {
            return Err(CheckpointError::OtherMigration {
                path: path.to_owned(),
                found: saved.migration,
            });
        }
        if saved.segments.len() != segments as usize {
            return Err(CheckpointError::Damaged {
                path: path.to_owned(),
                reason: format!(
                    "{} segments recorded, {segments} named",
                    saved.segments.len()
                ),
            });
        }
        saved.path = path.to_owned();
        Ok(saved)
    }

    /// Whether a saved copy is being resumed (some page was written).
    pub fn is_resumed(&self) -> bool {
        self.segments.iter().any(|s| s.done || s.cursor.is_some())
    }

    /// Whether every segment is done.
    pub fn is_complete(&self) -> bool {
        self.segments.iter().all(|s| s.done)
    }

    /// Items written so far, over all segments.
    pub fn copied(&self) -> u64 {
        self.segments.iter().map(|s| s.copied).sum()
    }

    /// Items handled so far (written, passed over or refused), over all
    /// segments: where a progress bar resumes.
    pub fn handled(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| s.copied + s.skipped_expired + s.refused)
            .sum()
    }

    /// The file this checkpoint is saved to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the checkpoint: to a temporary file beside it, then renamed
    /// over it.
    pub fn save(&self) -> Result<(), CheckpointError> {
        let io = |source| CheckpointError::Io {
            path: self.path.clone(),
            source,
        };
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut file = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        let text = serde_json::to_vec_pretty(self).map_err(|e| io(e.into()))?;
        file.write_all(&text).map_err(io)?;
        file.persist(&self.path).map_err(|e| io(e.error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_checkpoint_resumes_only_its_own_migration() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/cp.json");
        let mut checkpoint = Checkpoint::open(&path, "a -> b", 2, "t0", false).unwrap();
        assert!(!checkpoint.is_resumed());
        checkpoint.segments[1].cursor = Some("c".into());
        checkpoint.segments[1].copied = 7;
        checkpoint.save().unwrap();

        let again = Checkpoint::open(&path, "a -> b", 2, "t1", false).unwrap();
        assert!(again.is_resumed());
        assert_eq!(again.copied(), 7);
        assert_eq!(again.started_at, "t0", "the first start is kept");

        let other = Checkpoint::open(&path, "a -> c", 2, "t1", false).unwrap_err();
        assert!(other.to_string().contains("--restart"), "{other}");
        let restarted = Checkpoint::open(&path, "a -> c", 2, "t1", true).unwrap();
        assert!(!restarted.is_resumed());

        std::fs::write(&path, b"{not json").unwrap();
        let damaged = Checkpoint::open(&path, "a -> b", 2, "t1", false).unwrap_err();
        assert!(
            matches!(damaged, CheckpointError::Damaged { .. }),
            "{damaged}"
        );
    }
}
