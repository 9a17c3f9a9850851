//! The only code that touches redb. Every public method that writes is one logical change in one
//! write transaction; handlers never see tables or keys. Called directly, it commits durably
//! before it returns; run by the writer (`write_async`, every request's and background task's
//! path), it commits into its batch's one transaction, made durable before any change of the
//! batch is answered (`writer`).

mod api_keys;
pub mod audit;
pub mod backup;
mod copy;
mod disk;
mod due;
pub mod export;
mod factors;
mod flocks;
mod invitations;
mod mail_queue;
mod memory;
mod migrations;
mod offboarding;
mod records;
pub mod schedule;
pub mod sealing;
mod search;
mod sessions;
mod settings;
mod snapshot;
mod summaries;
mod tables;
mod tokens;
mod users;
mod webhook_queue;
pub mod webhooks;
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable};

pub use factors::{FACTOR_FAILURE_LIMIT, FactorAttempt, FactorOutcome, PasskeyOutcome};
pub use flocks::RoleChange;
pub use invitations::{Invitation, InvitationUse};
pub use mail_queue::{MailContent, QueuedMail};
pub use offboarding::{OffboardingReport, ScheduledRun};
pub use records::{
    ApiKeyRecord, ApiKeyScope, CredentialKind, EXPIRY_REMINDER_SECS, ExpiringGrant, Flock,
    FlockMembers, Grant, MadeAdmin, OneTimeToken, ScheduledOffboarding, Settings, TokenPurpose,
    User, UserDetails, WebauthnCredential,
};
pub use schedule::{GrantMails, GrantRun, describe as describe_grant, holds as holds_grant};
pub use sessions::{PUBLIC_ID_CHARS, SessionRecord, StoredSession, public_id};
pub use snapshot::Snapshot;
pub use users::{NewUser, UserPage, UserRef};

use crate::domain::Refusal;

/// The schema this build reads and writes. An older file is migrated at open (`migrations`); a
/// file written by a newer build is refused rather than misread.
pub const SCHEMA_VERSION: u64 = 5;

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
    #[error("a store change opened a second write transaction inside its first")]
    NestedWrite,
    #[error("the change was applied but the commit that makes it durable failed")]
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
        let found = tables::recorded_schema_version(&self.begin_read()?)?;
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
        let txn = self.begin_read()?;
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
        Ok(tables::recorded_schema_version(&self.begin_read()?)?.unwrap_or(0))
    }
}

impl Store {
    /// Runs store work that writes on the writer thread, in a batch with the changes waiting
    /// beside it (see `writer`), and answers once the batch's commit made it durable. `work` may
    /// run twice (a batch that meets a refusal is redone one change at a time), so it takes
    /// its inputs by reference or clones them. Waiting for the writer holds no thread.
    pub async fn write_async<T, E>(
        &self,
        work: impl FnMut(&Store) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let change = PendingChange {
            work,
            outcome: None,
            answer,
        };
        self.writer
            .submit(Box::new(change))
            .await
            .map_err(E::from)?;
        answered
            .await
            .map_err(|_| E::from(StoreError::WriterClosed))?
    }

    /// Stops taking changes: those queued before are applied and committed, then the writer
    /// ends and every later write is refused (`WriterClosed`). The last step of a graceful stop.
    pub async fn close(&self) {
        let (stopped, has_stopped) = tokio::sync::oneshot::channel();
        if self
            .writer
            .submit(Box::new(writer::Stop(stopped)))
            .await
            .is_ok()
        {
            let _ = has_stopped.await;
        }
    }

    /// A write transaction: durable when it commits, or, for a change the writer applies in a
    /// batch, made durable by the batch's flush.
    pub(super) fn begin_write(&self) -> StoreResult<WriteTxn<'_>> {
        // Users named by a transaction that was dropped uncommitted on this thread.
        search::take_touched();
        let (txn, shared) = match writer::begin() {
            writer::Begin::Durable => (self.db.begin_write()?, false),
            writer::Begin::Unflushed => {
                let mut txn = self.db.begin_write()?;
                txn.set_durability(redb::Durability::None)
                    .map_err(|error| StoreError::Database(redb::Error::from(error)))?;
                (txn, false)
            }
            writer::Begin::Shared(txn) => (txn, true),
            writer::Begin::Nested => return Err(StoreError::NestedWrite),
        };
        Ok(WriteTxn {
            txn: Some(txn),
            shared,
            store: self,
            writes_api_keys: std::cell::Cell::new(false),
            writes_settings: std::cell::Cell::new(false),
            writes_users: std::cell::Cell::new(false),
            writes_roles: std::cell::Cell::new(false),
        })
    }

    /// A read transaction. On the writer thread, a read that can't see the changes its batch
    /// holds uncommitted makes the batch redo itself one change at a time (`writer`).
    pub(super) fn begin_read(&self) -> StoreResult<redb::ReadTransaction> {
        writer::reading();
        Ok(self.db.begin_read()?)
    }

    /// Commits `txn` and brings what is kept in memory up to date with what it wrote.
    fn commit_with_effects(
        &self,
        txn: redb::WriteTransaction,
        effects: writer::Effects,
    ) -> StoreResult<()> {
        let memory = &self.memory;
        let touched_ids: Vec<u64> = effects.touched.iter().map(search::Touch::id).collect();
        if effects.touched.is_empty() {
            txn.commit()?;
        } else {
            memory
                .search
                .commit_and_apply(effects.touched, || txn.commit())?;
        }
        if effects.api_keys {
            memory.api_keys.invalidate();
        }
        if effects.settings {
            memory.settings.invalidate();
        }
        // Every write of a user record names the user (`users::write_user`, `search::removed`);
        // roles are written for many users at once (a flock removed), so they drop every copy,
        // as does a users' table opened without a user named (nothing may go stale).
        if effects.roles || (effects.users && touched_ids.is_empty()) {
            memory.user_details.forget_all();
        } else if effects.users {
            memory.user_details.forget(touched_ids.iter().copied());
            self.refresh_user_copies(&touched_ids);
        }
        Ok(())
    }

    /// Builds the in-memory projection `users/filter` searches, if it isn't yet, so the first
    /// search doesn't wait for it, then reads the users into memory (`warm_user_copies`).
    pub fn warm(&self) -> StoreResult<()> {
        self.memory.search.warm(&self.db)?;
        self.warm_user_copies()?;
        Ok(())
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

    /// Batches committed, changes applied, and batches redone one change at a time, since the
    /// store was opened.
    pub fn writer_counts(&self) -> (u64, u64, u64) {
        use std::sync::atomic::Ordering;
        let stats = &self.writer.stats;
        (
            stats.batches.load(Ordering::Relaxed),
            stats.changes.load(Ordering::Relaxed),
            stats.redone.load(Ordering::Relaxed),
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
    /// Open until committed or aborted.
    txn: Option<redb::WriteTransaction>,
    /// The writer's shared transaction of a batch: committing hands it back (`writer`).
    shared: bool,
    store: &'a Store,
    writes_api_keys: std::cell::Cell<bool>,
    writes_settings: std::cell::Cell<bool>,
    writes_users: std::cell::Cell<bool>,
    writes_roles: std::cell::Cell<bool>,
}

impl WriteTxn<'_> {
    /// Opens a table for writing. Opening a table whose records are kept in memory (API keys,
    /// users and their roles) is taken as writing it: the commit then drops those copies,
    /// whatever the change did to them (for users, only those it names, see
    /// `commit_with_effects`).
    pub(super) fn open_table<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        definition: redb::TableDefinition<K, V>,
    ) -> Result<redb::Table<'_, K, V>, redb::TableError> {
        use redb::TableHandle;
        let name = definition.name();
        if name == tables::API_KEYS.name() {
            self.writes_api_keys.set(true);
        }
        if name == tables::USERS.name() || name == tables::USER_ID_BY_EMAIL.name() {
            self.writes_users.set(true);
        }
        if name == tables::ROLES_BY_USER.name() {
            self.writes_roles.set(true);
        }
        self.redb().open_table(definition)
    }

    /// Opens a table only to read it: unlike `open_table`, not taken as writing it, so a look that
    /// changes nothing (the scheduler's, a repeated offboarding's) keeps the copies in memory.
    pub(super) fn open_for_reading<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        definition: redb::TableDefinition<K, V>,
    ) -> Result<redb::Table<'_, K, V>, redb::TableError> {
        self.redb().open_table(definition)
    }

    /// The settings (kept in `META` among other values) are written by this transaction.
    pub(super) fn writes_settings(&self) {
        self.writes_settings.set(true);
    }

    /// Commits without a flush: the change may be lost in a crash (a session's last use). In a
    /// batch it is carried by the batch's commit like any other.
    pub(super) fn without_flush(&mut self) -> StoreResult<()> {
        if self.shared {
            return Ok(());
        }
        if let Some(txn) = self.txn.as_mut() {
            txn.set_durability(redb::Durability::None)
                .map_err(|error| StoreError::Database(redb::Error::from(error)))?;
        }
        Ok(())
    }

    fn redb(&self) -> &redb::WriteTransaction {
        self.txn
            .as_ref()
            .expect("a WriteTxn holds its transaction until commit or abort consume it")
    }

    pub(super) fn commit(mut self) -> StoreResult<()> {
        let Some(txn) = self.txn.take() else {
            return Ok(());
        };
        let effects = writer::Effects {
            touched: search::take_touched(),
            api_keys: self.writes_api_keys.get(),
            settings: self.writes_settings.get(),
            users: self.writes_users.get(),
            roles: self.writes_roles.get(),
        };
        if self.shared {
            writer::give_back_committed(txn, effects);
            Ok(())
        } else {
            self.store.commit_with_effects(txn, effects)
        }
    }

    pub(super) fn abort(mut self) -> StoreResult<()> {
        search::take_touched();
        match self.txn.take() {
            Some(txn) if self.shared => writer::give_back_uncommitted(txn),
            Some(txn) => txn.abort()?,
            None => {}
        }
        Ok(())
    }
}

impl Drop for WriteTxn<'_> {
    /// Dropped uncommitted (refused, failed): its own transaction rolls back as it is dropped;
    /// the shared one goes back to the writer, which redoes the batch.
    fn drop(&mut self) {
        if let Some(txn) = self.txn.take()
            && self.shared
        {
            writer::give_back_uncommitted(txn);
        }
    }
}

impl std::ops::Deref for WriteTxn<'_> {
    type Target = redb::WriteTransaction;

    fn deref(&self) -> &redb::WriteTransaction {
        self.redb()
    }
}

/// A change waiting for the writer, with what it answered the last time it ran.
struct PendingChange<F, T, E> {
    work: F,
    outcome: Option<Result<T, E>>,
    answer: tokio::sync::oneshot::Sender<Result<T, E>>,
}

impl<F, T, E> writer::Change for PendingChange<F, T, E>
where
    F: FnMut(&Store) -> Result<T, E> + Send,
    T: Send,
    E: From<StoreError> + Send,
{
    fn apply(&mut self, store: &Store) {
        // A redo that panics must not answer with the outcome of the run before it.
        self.outcome = None;
        self.outcome = Some((self.work)(store));
    }

    fn answer(self: Box<Self>, durable: Result<(), Arc<StoreError>>) {
        // No outcome: the change panicked, and dropping `answer` tells its sender it was lost.
        let Some(outcome) = self.outcome else {
            return;
        };
        let outcome = match (outcome, durable) {
            (Ok(value), Ok(())) => Ok(value),
            (Ok(_), Err(error)) => Err(E::from(StoreError::BatchNotDurable(error))),
            // Refused or failed on its own: what it wrote was rolled back.
            (Err(error), _) => Err(error),
        };
        let _ = self.answer.send(outcome);
    }
}

/// How the store is opened.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub secrets_key_file: PathBuf,
    pub cache_bytes: usize,
}

impl StoreOptions {
    /// What the command line and the environment ask for (the secrets key, the cache).
    pub fn from_config(config: &crate::config::Config) -> StoreOptions {
        StoreOptions {
            secrets_key_file: config.secrets_key_path(),
            cache_bytes: config.db_cache_bytes(),
        }
    }

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
