//! The only code that touches redb. Every public method is one logical change in one write
//! transaction, committed durably before it returns; handlers never see tables or keys.

mod api_keys;
mod changes;
mod factors;
mod flocks;
mod mail_queue;
mod records;
mod sessions;
mod settings;
mod summaries;
mod tables;
mod tokens;
mod users;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable};

pub use changes::Change;
pub use factors::{FACTOR_FAILURE_LIMIT, FactorAttempt, FactorOutcome};
pub use mail_queue::{MailContent, QueuedMail};
pub use records::{
    ApiKeyRecord, ApiKeyScope, Flock, FlockMembers, OneTimeToken, Settings, TokenPurpose, User,
    UserDetails, WebauthnCredential,
};
pub use sessions::{PUBLIC_ID_CHARS, SessionRecord, StoredSession, public_id};
pub use users::{NewUser, UserPage};

use crate::domain::Email;

/// The schema this build reads and writes. A file written by a newer build is refused rather than
/// misread.
pub const SCHEMA_VERSION: u64 = 1;

pub const DATABASE_FILE: &str = "roost.redb";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("User ({0}) already exists.")]
    UserExists(Email),
    #[error("User does not exist.")]
    UserNotFound,
    #[error("User is disabled.")]
    UserDisabled,
    #[error("Flock does not exist.")]
    FlockNotFound,
    #[error("API key does not exist.")]
    ApiKeyNotFound,
    #[error("Cannot disable, remove or demote the last enabled admin.")]
    LastEnabledAdmin,
    #[error("Cannot delete default flock")]
    DefaultFlock,
    #[error("Cannot delete a non-empty flock")]
    FlockNotEmpty,
    #[error("User {0} cannot be both manager and watcher of one flock.")]
    TwoRolesInOneFlock(Email),
    #[error("The link is invalid, expired or already used.")]
    TokenInvalid,
    #[error(
        "the data file {path} is locked by another process: is `roost serve` running on this data directory?"
    )]
    Locked { path: PathBuf },
    #[error(
        "the data file was written by a newer Roost (schema version {found}); this build supports version {supported}. Upgrade Roost."
    )]
    NewerSchema { found: u64, supported: u64 },
    #[error("stored record is unreadable: {0}")]
    Corrupt(String),
    #[error("a store call on the blocking pool did not finish: {0}")]
    TaskLost(String),
    #[error("database error: {0}")]
    Database(#[from] redb::Error),
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

macro_rules! redb_error_into_store_error {
    ($($error:ty),*) => {$(
        impl From<$error> for StoreError {
            fn from(error: $error) -> Self {
                StoreError::Database(error.into())
            }
        }
    )*};
}
redb_error_into_store_error!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

impl From<serde_json::Error> for StoreError {
    fn from(error: serde_json::Error) -> Self {
        StoreError::Corrupt(error.to_string())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A handle on the one redb file. Cloning is cheap; all clones share the database.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    /// One write at a time on the blocking pool: redb runs one write transaction at a time
    /// anyway, and a write waiting for the lock would hold a thread while it waits. Writers wait
    /// here instead, asynchronously (see `write_async`).
    write_turn: Arc<tokio::sync::Semaphore>,
}

impl Store {
    /// Opens (or creates) `<data_dir>/roost.redb`, creating every table, the default flock and the
    /// default settings on first use, and refusing a file from a newer schema.
    pub fn open(data_dir: &Path) -> StoreResult<Store> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join(DATABASE_FILE);
        let db = match Database::create(&path) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(StoreError::Locked { path });
            }
            Err(error) => return Err(StoreError::Database(error.into())),
        };
        let store = Store {
            db: Arc::new(db),
            write_turn: Arc::new(tokio::sync::Semaphore::new(1)),
        };
        store.initialise()?;
        Ok(store)
    }

    fn initialise(&self) -> StoreResult<()> {
        let txn = self.db.begin_write()?;
        {
            let mut meta = txn.open_table(tables::META)?;
            let found = meta
                .get(tables::SCHEMA_VERSION_KEY)?
                .map(|v| records::decode_u64(v.value()))
                .transpose()?;
            match found {
                Some(found) if found > SCHEMA_VERSION => {
                    return Err(StoreError::NewerSchema {
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
                Some(_) => {}
                None => {
                    meta.insert(
                        tables::SCHEMA_VERSION_KEY,
                        SCHEMA_VERSION.to_le_bytes().as_slice(),
                    )?;
                }
            }
        }
        tables::create_all(&txn)?;
        flocks::ensure_default_flock(&txn)?;
        tokens::sweep_dead_tokens(&txn, now_unix())?;
        changes::sweep_old_changes(&txn, now_unix())?;
        txn.commit()?;
        Ok(())
    }

    /// The schema version recorded in the file.
    pub fn schema_version(&self) -> StoreResult<u64> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(tables::META)?;
        let version = meta
            .get(tables::SCHEMA_VERSION_KEY)?
            .map(|v| records::decode_u64(v.value()))
            .transpose()?;
        Ok(version.unwrap_or(0))
    }
}

impl Store {
    /// Runs store work that writes on Tokio's blocking pool once it is its turn: writes wait for
    /// each other without holding a thread, so a burst of writes (a login storm creating
    /// sessions, a script adding users) can't grow the blocking pool to hundreds of threads and
    /// slow every read behind them.
    pub async fn write_async<T, E>(
        &self,
        work: impl FnOnce(&Store) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let turn = Arc::clone(&self.write_turn)
            .acquire_owned()
            .await
            .map_err(|error| E::from(StoreError::TaskLost(error.to_string())))?;
        let store = self.clone();
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            work(&store)
        })
        .await
        .map_err(|error| E::from(StoreError::TaskLost(error.to_string())))?
    }

    /// Runs store work that only reads on Tokio's blocking pool, for background tasks (request
    /// handlers use `AppState::blocking`).
    pub async fn off_async<T, E>(
        &self,
        work: impl FnOnce(&Store) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || work(&store))
            .await
            .map_err(|error| E::from(StoreError::TaskLost(error.to_string())))?
    }
}

pub(crate) fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_newer_schema_and_a_second_opener() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        assert!(matches!(
            Store::open(dir.path()),
            Err(StoreError::Locked { .. })
        ));
        {
            let txn = store.db.begin_write().unwrap();
            {
                let mut meta = txn.open_table(tables::META).unwrap();
                meta.insert(
                    tables::SCHEMA_VERSION_KEY,
                    (SCHEMA_VERSION + 1).to_le_bytes().as_slice(),
                )
                .unwrap();
            }
            txn.commit().unwrap();
        }
        drop(store);
        match Store::open(dir.path()) {
            Err(StoreError::NewerSchema { found, supported }) => {
                assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
            }
            other => panic!("expected NewerSchema, got {:?}", other.err()),
        }
    }
}
