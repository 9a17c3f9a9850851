//! The only code that touches redb. Every public method that writes is one logical change in one
//! write transaction; handlers never see tables or keys. Called directly, it commits durably
//! before it returns; run by the writer (`write_async`, every request's and background task's
//! path), it commits as part of a batch that one flush makes durable before any change of the
//! batch is answered (`writer`).

mod api_keys;
pub mod audit;
pub mod backup;
mod copy;
mod disk;
mod factors;
mod flocks;
mod mail_queue;
mod memory;
mod migrations;
mod records;
pub mod sealing;
mod search;
mod sessions;
mod settings;
mod snapshot;
mod summaries;
mod tables;
mod tokens;
mod users;
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable};

pub use factors::{FACTOR_FAILURE_LIMIT, FactorAttempt, FactorOutcome};
pub use flocks::RoleChange;
pub use mail_queue::{MailContent, QueuedMail};
pub use records::{
    ApiKeyRecord, ApiKeyScope, Flock, FlockMembers, OneTimeToken, Settings, TokenPurpose, User,
    UserDetails, WebauthnCredential,
};
pub use sessions::{PUBLIC_ID_CHARS, SessionRecord, StoredSession, public_id};
pub use snapshot::Snapshot;
pub use users::{NewUser, UserPage, UserRef};

use crate::domain::Refusal;

/// The schema this build reads and writes. An older file is migrated at open (`migrations`); a
/// file written by a newer build is refused rather than misread.
pub const SCHEMA_VERSION: u64 = 3;

/// Where copies of the database are kept (before a migration; scheduled backups).
pub const BACKUPS_DIR: &str = "backups";

pub const DATABASE_FILE: &str = "roost.redb";

/// What the secrets key seals into `META`, to recognise the right key at open.
const SECRETS_KEY_CHECK: &str = "roost secrets key check";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A rule refused the change; nothing was written.
    #[error("refused: {0}")]
    Refused(#[from] Refusal),
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
    #[error("secrets at rest: {0}")]
    Sealing(String),
    #[error(transparent)]
    SecretsKey(#[from] sealing::KeyFileError),
    #[error(
        "the secrets key {path} is not the key this database's secrets were sealed with. Restore the original key file (it belongs in every backup beside roost.redb); without it, the enrolled authenticator apps can't be used and must be enrolled again."
    )]
    WrongSecretsKey { path: PathBuf },
    #[error("cannot copy the database aside before migrating it to {path}: {source}")]
    MigrationBackup {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("a store call on the blocking pool did not finish")]
    TaskLost(#[source] tokio::task::JoinError),
    #[error("the store no longer takes writes (shutting down)")]
    WriterClosed,
    #[error("cannot start the store's writer thread")]
    WriterStart(#[source] std::io::Error),
    #[error("the change was applied but the flush that makes it durable failed")]
    BatchNotDurable(#[source] Arc<StoreError>),
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
    redb::DatabaseError,
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
    /// Seals TOTP secrets at rest.
    sealer: Arc<sealing::Sealer>,
    /// The group-commit writer every asynchronous write goes through (`write_async`).
    writer: Arc<writer::Writer>,
    /// Copies of hot records and the users' search projection, kept in step by `WriteTxn`.
    memory: Arc<memory::InMemory>,
}

impl Store {
    /// Opens (or creates) `<data_dir>/roost.redb` with the secrets key `<data_dir>/secrets.key`
    /// (created on first use).
    pub fn open(data_dir: &Path) -> StoreResult<Store> {
        Store::open_with(data_dir, &StoreOptions::for_data_dir(data_dir))
    }

    /// Opens with the secrets key at `key_file`.
    pub fn open_with_key_file(data_dir: &Path, key_file: &Path) -> StoreResult<Store> {
        let options = StoreOptions {
            secrets_key_file: key_file.to_path_buf(),
            ..StoreOptions::for_data_dir(data_dir)
        };
        Store::open_with(data_dir, &options)
    }

    /// Opens (or creates) `<data_dir>/roost.redb`, creating every table, the default flock and the
    /// default settings on first use, migrating an older schema and refusing a newer one. The
    /// data directory and the file are created private (0700, 0600).
    pub fn open_with(data_dir: &Path, options: &StoreOptions) -> StoreResult<Store> {
        let key_file = options.secrets_key_file.as_path();
        let cache_bytes = options.cache_bytes;
        let data_dir_error = |source| StoreError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        };
        crate::private_files::create_private_dir(data_dir).map_err(data_dir_error)?;
        let path = data_dir.join(DATABASE_FILE);
        crate::private_files::ensure_private_file(&path).map_err(data_dir_error)?;
        let (sealer, new_key) = sealing::Sealer::load_or_create(key_file)?;
        let db = match open_database(&path, cache_bytes) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(StoreError::Locked { path });
            }
            Err(error) => return Err(StoreError::Database(error.into())),
        };
        let (db, sealer) = (Arc::new(db), Arc::new(sealer));
        let memory = Arc::new(memory::InMemory::new());
        let writer =
            writer::Writer::start(&db, &sealer, &memory).map_err(StoreError::WriterStart)?;
        let store = Store {
            db,
            sealer,
            writer,
            memory,
        };
        // Before any migration: one must not run, and commit, on a file that is then refused.
        store.check_secrets_key(key_file, new_key)?;
        let migrated = store.migrate(data_dir)?;
        store.initialise()?;
        if !migrated {
            return Ok(store);
        }
        // The old records are in pages the migration freed, where what it sealed could still be
        // read: the file is written anew and the old one goes.
        let Store {
            db,
            sealer,
            writer,
            memory,
        } = store;
        // The writer thread ends once it sees no store: it holds only weak handles.
        drop(writer);
        let rewritten = data_dir.join(format!("{DATABASE_FILE}.rewrite"));
        let _ = std::fs::remove_file(&rewritten);
        copy::copy_database(&db.begin_read()?, &rewritten)?;
        drop(db);
        std::fs::rename(&rewritten, &path).map_err(data_dir_error)?;
        let db = Arc::new(open_database(&path, cache_bytes)?);
        let writer =
            writer::Writer::start(&db, &sealer, &memory).map_err(StoreError::WriterStart)?;
        Ok(Store {
            db,
            sealer,
            writer,
            memory,
        })
    }

    /// Brings an older file to `SCHEMA_VERSION`, one migration per transaction, after copying it
    /// aside. A new file gets the current version at once. Returns whether migrations ran.
    fn migrate(&self, data_dir: &Path) -> StoreResult<bool> {
        let found = tables::recorded_schema_version(&self.db.begin_read()?)?;
        let Some(found) = found else {
            let txn = self.db.begin_write()?;
            migrations::record_version(&txn, SCHEMA_VERSION)?;
            txn.commit()?;
            return Ok(false);
        };
        let pending = migrations::pending(found, SCHEMA_VERSION)?;
        if pending.is_empty() {
            return Ok(false);
        }
        let copy = self.copy_aside(data_dir, found)?;
        tracing::warn!(
            "migrating the database from schema {found} to {SCHEMA_VERSION}; the file before it is kept at {}",
            copy.display()
        );
        for migration in pending {
            let txn = self.db.begin_write()?;
            (migration.apply)(&txn, &self.sealer)?;
            migrations::record_version(&txn, migration.to)?;
            txn.commit()?;
            tracing::info!("schema {}: {}", migration.to, migration.what);
        }
        Ok(true)
    }

    /// Copies the database file into the backups directory (private), before a migration. The
    /// file is open only here and nothing writes to it meanwhile, so the copy is consistent.
    fn copy_aside(&self, data_dir: &Path, version: u64) -> StoreResult<PathBuf> {
        let backups = data_dir.join(BACKUPS_DIR);
        let target = backups.join(format!("roost-schema-v{version}-{}.redb", now_unix()));
        let error = |source| StoreError::MigrationBackup {
            path: target.clone(),
            source,
        };
        crate::private_files::create_private_dir(&backups).map_err(error)?;
        let bytes = std::fs::read(data_dir.join(DATABASE_FILE)).map_err(error)?;
        crate::private_files::write_new_private(&target, &bytes).map_err(error)?;
        Ok(target)
    }

    fn initialise(&self) -> StoreResult<()> {
        let txn = self.begin_write()?;
        tables::create_all(&txn)?;
        self.record_secrets_key_check(&txn)?;
        flocks::ensure_default_flock(&txn)?;
        tokens::sweep_dead_tokens(&txn, now_unix())?;
        txn.commit()?;
        Ok(())
    }

    /// A value sealed with the key the database was first opened with is kept in `META`: a
    /// different key (a lost or misconfigured key file) is refused at once, instead of failing
    /// at each user's next login.
    fn check_secrets_key(&self, key_file: &Path, new_key: bool) -> StoreResult<()> {
        let txn = self.db.begin_read()?;
        let meta = match txn.open_table(tables::META) {
            Ok(meta) => meta,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
            Err(error) => return Err(error.into()),
        };
        let stored: Option<sealing::SealedSecret> = meta
            .get(tables::SECRETS_KEY_CHECK_KEY)?
            .map(|v| records::decode(v.value()).map(sealing::SealedSecret::from_stored))
            .transpose()?;
        match stored {
            Some(sealed) if self.sealer.open(&sealed, SECRETS_KEY_CHECK).is_err() => {
                if new_key {
                    // Don't leave a key file that would be taken for the right one.
                    let _ = std::fs::remove_file(key_file);
                }
                Err(StoreError::WrongSecretsKey {
                    path: key_file.to_path_buf(),
                })
            }
            _ => Ok(()),
        }
    }

    /// Keeps the check value of `check_secrets_key` in a file that has none yet (a new file, or
    /// one from schema 1).
    fn record_secrets_key_check(&self, txn: &redb::WriteTransaction) -> StoreResult<()> {
        let mut meta = txn.open_table(tables::META)?;
        if meta.get(tables::SECRETS_KEY_CHECK_KEY)?.is_none() {
            let sealed = self.sealer.seal(SECRETS_KEY_CHECK, SECRETS_KEY_CHECK)?;
            meta.insert(
                tables::SECRETS_KEY_CHECK_KEY,
                records::encode(&sealed.as_stored())?.as_slice(),
            )?;
        }
        Ok(())
    }

    /// The schema version recorded in the file.
    pub fn schema_version(&self) -> StoreResult<u64> {
        Ok(tables::recorded_schema_version(&self.db.begin_read()?)?.unwrap_or(0))
    }
}

impl Store {
    /// Runs store work that writes on the writer thread, in a batch with the changes waiting
    /// beside it (see `writer`): its transactions commit without a flush, and the answer comes
    /// once the batch's one flush made them durable. Waiting for the writer holds no thread.
    pub async fn write_async<T, E>(
        &self,
        work: impl FnOnce(&Store) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: writer::Job = Box::new(move |store| {
            let outcome = work(store);
            Box::new(move |flushed: Result<(), Arc<StoreError>>| {
                let outcome = match (outcome, flushed) {
                    (Ok(value), Ok(())) => Ok(value),
                    (Ok(_), Err(error)) => Err(E::from(StoreError::BatchNotDurable(error))),
                    // Refused or failed on its own: its transaction was rolled back.
                    (Err(error), _) => Err(error),
                };
                let _ = answer.send(outcome);
            })
        });
        self.writer.submit(job).await.map_err(E::from)?;
        answered
            .await
            .map_err(|_| E::from(StoreError::WriterClosed))?
    }

    /// A write transaction: durable when it commits, or, for a change the writer applies in a
    /// batch, made durable by the batch's flush.
    pub(super) fn begin_write(&self) -> StoreResult<WriteTxn<'_>> {
        let mut txn = self.db.begin_write()?;
        // Users named by a transaction that was dropped uncommitted on this thread.
        search::take_touched();
        if writer::in_batch() {
            txn.set_durability(redb::Durability::None)
                .map_err(|error| StoreError::Database(redb::Error::from(error)))?;
            writer::note_write();
        }
        Ok(WriteTxn {
            txn,
            store: self,
            writes_api_keys: std::cell::Cell::new(false),
            writes_settings: std::cell::Cell::new(false),
            writes_users: std::cell::Cell::new(false),
        })
    }

    /// Builds the in-memory projection `users/filter` searches, if it isn't yet, so the first
    /// search doesn't wait for it.
    pub fn warm_search(&self) -> StoreResult<()> {
        self.memory.search.warm(&self.db)
    }

    /// Makes every commit so far durable: an empty commit that flushes.
    fn flush(&self) -> StoreResult<()> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(redb::Durability::Immediate)
            .map_err(|error| StoreError::Database(redb::Error::from(error)))?;
        txn.commit()?;
        Ok(())
    }

    /// Whether the writer thread that applies every change still runs.
    pub fn writer_running(&self) -> bool {
        self.writer
            .stats
            .running
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// How many flushes carried how many changes since the store was opened.
    pub fn writer_stats(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering;
        let stats = &self.writer.stats;
        (
            stats.batches.load(Ordering::Relaxed),
            stats.changes.load(Ordering::Relaxed),
        )
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
            .map_err(|error| E::from(StoreError::TaskLost(error)))?
    }
}

/// A write transaction of the store: a redb transaction whose commit also brings what is kept
/// in memory beside the database (`memory`) up to date, before the change is answered. Store code
/// takes `&WriteTxn`, never a bare redb transaction, so every table it opens is seen here.
pub(super) struct WriteTxn<'a> {
    txn: redb::WriteTransaction,
    store: &'a Store,
    writes_api_keys: std::cell::Cell<bool>,
    writes_settings: std::cell::Cell<bool>,
    writes_users: std::cell::Cell<bool>,
}

impl WriteTxn<'_> {
    /// Opens a table for writing. Opening a table whose records are kept in memory (API keys,
    /// users and their roles) is taken as writing it: the commit then drops those copies,
    /// whatever the change did to them.
    pub(super) fn open_table<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        definition: redb::TableDefinition<K, V>,
    ) -> Result<redb::Table<'_, K, V>, redb::TableError> {
        use redb::TableHandle;
        let name = definition.name();
        if name == tables::API_KEYS.name() {
            self.writes_api_keys.set(true);
        }
        let user_tables = [
            tables::USERS.name(),
            tables::USER_ID_BY_EMAIL.name(),
            tables::ROLES_BY_USER.name(),
        ];
        if user_tables.contains(&name) {
            self.writes_users.set(true);
        }
        self.txn.open_table(definition)
    }

    /// The settings (kept in `META` among other values) are written by this transaction.
    pub(super) fn writes_settings(&self) {
        self.writes_settings.set(true);
    }

    pub(super) fn commit(self) -> StoreResult<()> {
        let memory = &self.store.memory;
        let touched = search::take_touched();
        if touched.is_empty() {
            self.txn.commit()?;
        } else {
            memory
                .search
                .commit_and_apply(touched, || self.txn.commit())?;
        }
        if self.writes_api_keys.get() {
            memory.api_keys.invalidate();
        }
        if self.writes_settings.get() {
            memory.settings.invalidate();
        }
        if self.writes_users.get() {
            memory.user_details.invalidate();
        }
        Ok(())
    }

    pub(super) fn abort(self) -> StoreResult<()> {
        search::take_touched();
        self.txn.abort()?;
        Ok(())
    }
}

impl std::ops::Deref for WriteTxn<'_> {
    type Target = redb::WriteTransaction;

    fn deref(&self) -> &redb::WriteTransaction {
        &self.txn
    }
}

impl std::ops::DerefMut for WriteTxn<'_> {
    fn deref_mut(&mut self) -> &mut redb::WriteTransaction {
        &mut self.txn
    }
}

/// How the store is opened.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub secrets_key_file: PathBuf,
    pub cache_bytes: usize,
}

impl StoreOptions {
    /// The key in the data directory, the default cache.
    pub fn for_data_dir(data_dir: &Path) -> StoreOptions {
        StoreOptions {
            secrets_key_file: data_dir.join(crate::config::SECRETS_KEY_FILE),
            cache_bytes: crate::config::DEFAULT_DB_CACHE_MB * 1024 * 1024,
        }
    }
}

fn open_database(path: &Path, cache_bytes: usize) -> Result<Database, redb::DatabaseError> {
    Database::builder().set_cache_size(cache_bytes).create(path)
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
