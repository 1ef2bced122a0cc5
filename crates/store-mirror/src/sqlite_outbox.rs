//! The outbox in a local SQLite file (the host's default).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use crate::outbox::{Outbox, OutboxError, Pending, Toward};

/// An outbox in a local SQLite file: WAL with `synchronous=NORMAL`, so a
/// commit survives the process dying (the requirement), not the machine
/// losing power. The calls are short local writes made under a mutex, like
/// the embedded store's.
pub struct SqliteOutbox {
    path: PathBuf,
    connection: Mutex<Connection>,
}

impl SqliteOutbox {
    /// Opens (creating if missing) the outbox at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, OutboxError> {
        let path = path.as_ref().to_path_buf();
        let fail = |cause: &dyn std::fmt::Display| OutboxError::new(path.display(), cause);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| fail(&e))?;
        }
        let connection = Connection::open(&path).map_err(|e| fail(&e))?;
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = NORMAL;
                 PRAGMA busy_timeout = 5000;
                 CREATE TABLE IF NOT EXISTS pending (
                     id TEXT PRIMARY KEY,
                     toward TEXT NOT NULL CHECK (toward IN ('primary', 'secondary')),
                     queued_at INTEGER NOT NULL
                 ) WITHOUT ROWID;",
            )
            .map_err(|e| fail(&e))?;
        Ok(Self {
            path,
            connection: Mutex::new(connection),
        })
    }

    fn with<T>(
        &self,
        work: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, OutboxError> {
        let mut connection = self
            .connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        work(&mut connection).map_err(|cause| OutboxError::new(self.path.display(), cause))
    }

    /// How many ids are listed.
    pub fn len(&self) -> Result<u64, OutboxError> {
        self.with(|c| {
            c.query_row("SELECT count(*) FROM pending", [], |row| {
                row.get::<_, i64>(0)
            })
        })
        .map(|n| n as u64)
    }

    /// Whether no id is listed.
    pub fn is_empty(&self) -> Result<bool, OutboxError> {
        self.len().map(|n| n == 0)
    }
}

#[async_trait]
impl Outbox for SqliteOutbox {
    async fn add(&self, ids: &[String], toward: Toward) -> Result<(), OutboxError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        self.with(|c| {
            let tx = c.transaction()?;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO pending (id, toward, queued_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (id) DO UPDATE SET toward = excluded.toward",
                )?;
                for id in ids {
                    insert.execute(params![id, toward.as_str(), now])?;
                }
            }
            tx.commit()
        })
    }

    async fn remove(&self, ids: &[String]) -> Result<(), OutboxError> {
        self.with(|c| {
            let tx = c.transaction()?;
            {
                let mut delete = tx.prepare_cached("DELETE FROM pending WHERE id = ?1")?;
                for id in ids {
                    delete.execute([id])?;
                }
            }
            tx.commit()
        })
    }

    async fn direction(&self, id: &str) -> Result<Option<Toward>, OutboxError> {
        let toward: Option<String> = self.with(|c| {
            c.prepare_cached("SELECT toward FROM pending WHERE id = ?1")?
                .query_row([id], |row| row.get(0))
                .optional()
        })?;
        Ok(toward.as_deref().and_then(Toward::parse))
    }

    async fn pending(&self, limit: usize) -> Result<Vec<Pending>, OutboxError> {
        let rows: Vec<(String, String)> = self.with(|c| {
            let mut select =
                c.prepare_cached("SELECT id, toward FROM pending ORDER BY queued_at, id LIMIT ?1")?;
            let rows: rusqlite::Result<Vec<_>> = select
                .query_map([limit as i64], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect();
            rows
        })?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, toward)| Toward::parse(&toward).map(|toward| Pending { id, toward }))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn entries_survive_reopening_and_keep_their_latest_direction() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/outbox.db");
        let outbox = SqliteOutbox::open(&path).unwrap();
        let (a, b) = (vec!["a".to_owned()], vec!["b".to_owned()]);
        outbox
            .add(&[a[0].clone(), b[0].clone()], Toward::Secondary)
            .await
            .unwrap();
        outbox.add(&b, Toward::Primary).await.unwrap();
        drop(outbox);
        let outbox = SqliteOutbox::open(&path).unwrap();
        assert_eq!(outbox.len().unwrap(), 2);
        assert_eq!(
            outbox.direction("a").await.unwrap(),
            Some(Toward::Secondary)
        );
        assert_eq!(outbox.direction("b").await.unwrap(), Some(Toward::Primary));
        assert_eq!(outbox.direction("c").await.unwrap(), None);
        assert_eq!(outbox.pending(10).await.unwrap().len(), 2);
        outbox.remove(&a).await.unwrap();
        assert_eq!(
            outbox.pending(10).await.unwrap(),
            vec![Pending {
                id: "b".into(),
                toward: Toward::Primary
            }]
        );
        outbox.remove(&b).await.unwrap();
        assert!(outbox.is_empty().unwrap());
    }
}
