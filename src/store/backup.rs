//! Backups: a consistent point-in-time copy of the whole database, taken from one read
//! transaction while the server goes on serving reads and writes (`copy`), in a file that
//! carries its schema version and a checksum of what it holds:
//!
//! ```text
//! roost-backup 1
//! {"schema_version":3,"created":1764620000,"records":1234,"payload_bytes":81920,"payload_sha256":"…"}
//! <payload_bytes bytes: a redb database file>
//! ```
//!
//! A backup is written private (0600) under a temporary name and renamed into place, so a
//! reader never sees half of one. Reading one back (`unpack`) checks the length and the
//! checksum, refuses a newer schema, and then every record of every table is decoded and every
//! index checked against its records (`check_records`) before anything is replaced.

pub use super::memory::LastBackup;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::audit::AuditEntry;
use super::disk::{decode_api_key, decode_user};
use super::mail_queue::QueuedMail;
use super::records::{FlockRecord, OneTimeToken, Settings, decode};
use super::sessions::SessionRecord;
use super::tables::*;
use super::{SCHEMA_VERSION, Store, StoreError, StoreResult};

const MAGIC: &str = "roost-backup 1";
/// Longest header line read: a header is a few hundred bytes.
const MAX_HEADER_BYTES: usize = 4096;

/// What a backup's header says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupHeader {
    pub schema_version: u64,
    /// Unix seconds.
    pub created: u64,
    pub records: u64,
    pub payload_bytes: u64,
    pub payload_sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("not a Roost backup: {0}")]
    NotABackup(String),
    #[error(
        "the backup is damaged: {0}. Nothing was replaced; take another backup or use an older one"
    )]
    Damaged(String),
    #[error(
        "the backup holds schema version {found}; this Roost reads up to {supported}. Upgrade Roost to restore it"
    )]
    NewerSchema { found: u64, supported: u64 },
    #[error("{path} is in use: stop `roost serve` on this data directory before restoring")]
    ServerRunning { path: PathBuf },
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl BackupError {
    /// Names `path` in the I/O error it maps (for `map_err`).
    pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
        move |source| BackupError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

impl Store {
    /// Writes a backup of the whole database to `out` (refused if it exists), taken from one
    /// read transaction: writers go on meanwhile, and what they commit after it began is not in
    /// it.
    pub fn backup(&self, out: &Path) -> Result<BackupHeader, BackupError> {
        let written = self.write_backup(out);
        let last = LastBackup {
            at: super::now_unix(),
            succeeded: written.is_ok(),
        };
        *self
            .memory
            .last_backup
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(last);
        written
    }

    /// How the last backup this process took (on a schedule, from Settings, for `roost backup`)
    /// ended.
    pub fn last_backup(&self) -> Option<LastBackup> {
        *self
            .memory
            .last_backup
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write_backup(&self, out: &Path) -> Result<BackupHeader, BackupError> {
        // Said plainly here: the scratch copy beside `out` would otherwise be what fails.
        if let Some(dir) = out.parent().filter(|dir| !dir.as_os_str().is_empty())
            && !dir.is_dir()
        {
            return Err(BackupError::Io {
                path: dir.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such directory"),
            });
        }
        let snapshot = self.db.begin_read().map_err(StoreError::from)?;
        let schema_version = recorded_schema_version(&snapshot)?.unwrap_or(0);
        let payload = sibling(out, "payload");
        let _ = std::fs::remove_file(&payload);
        let records = super::copy::copy_database(&snapshot, &payload);
        drop(snapshot);
        let written = records
            .map_err(BackupError::from)
            .and_then(|records| pack(&payload, out, schema_version, records));
        let _ = std::fs::remove_file(&payload);
        written
    }
}

/// `path` with `.suffix` added to its file name, in the same directory (same file system, so a
/// rename is atomic).
pub(super) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{suffix}"));
    path.with_file_name(name)
}

fn sha256_of(path: &Path) -> Result<(String, u64), BackupError> {
    let mut file = std::fs::File::open(path).map_err(BackupError::io(path))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let read = file.read(&mut buffer).map_err(BackupError::io(path))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        total += read as u64;
    }
    Ok((hex::encode(hasher.finalize()), total))
}

/// Header, then the database file, into `out` through a private temporary file and a rename.
fn pack(
    payload: &Path,
    out: &Path,
    schema_version: u64,
    records: u64,
) -> Result<BackupHeader, BackupError> {
    let (payload_sha256, payload_bytes) = sha256_of(payload)?;
    let header = BackupHeader {
        schema_version,
        created: super::now_unix(),
        records,
        payload_bytes,
        payload_sha256,
    };
    let partial = sibling(out, "partial");
    let _ = std::fs::remove_file(&partial);
    let mut text = format!("{MAGIC}\n");
    text.push_str(&serde_json::to_string(&header).map_err(|e| StoreError::Corrupt(e.to_string()))?);
    text.push('\n');
    crate::private_files::write_new_private(&partial, text.as_bytes())
        .map_err(BackupError::io(&partial))?;
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&partial)
            .map_err(BackupError::io(&partial))?;
        let mut source = std::fs::File::open(payload).map_err(BackupError::io(payload))?;
        std::io::copy(&mut source, &mut file).map_err(BackupError::io(&partial))?;
        file.sync_all().map_err(BackupError::io(&partial))?;
        crate::private_files::publish(&partial, out).map_err(BackupError::io(out))?;
        Ok(header.clone())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

/// Checks the backup `file` and writes its database to `database` (refused if it exists):
/// the header, the length and checksum, the schema version, and every record and index.
pub fn unpack(file: &Path, database: &Path) -> Result<BackupHeader, BackupError> {
    let opened = std::fs::File::open(file).map_err(BackupError::io(file))?;
    let mut reader = BufReader::new(opened);
    let mut line = |what: &str| -> Result<String, BackupError> {
        let mut bytes = Vec::new();
        let mut limited = (&mut reader).take(MAX_HEADER_BYTES as u64);
        limited
            .read_until(b'\n', &mut bytes)
            .map_err(BackupError::io(file))?;
        if bytes.pop() != Some(b'\n') {
            return Err(BackupError::NotABackup(format!("no {what} line")));
        }
        String::from_utf8(bytes).map_err(|_| BackupError::NotABackup(format!("{what} is not text")))
    };
    if line("first")? != MAGIC {
        return Err(BackupError::NotABackup(format!(
            "it does not start with \"{MAGIC}\""
        )));
    }
    let header: BackupHeader = serde_json::from_str(&line("header")?)
        .map_err(|error| BackupError::NotABackup(format!("its header: {error}")))?;
    if header.schema_version > SCHEMA_VERSION {
        return Err(BackupError::NewerSchema {
            found: header.schema_version,
            supported: SCHEMA_VERSION,
        });
    }
    crate::private_files::write_new_private(database, &[]).map_err(BackupError::io(database))?;
    let copied = (|| {
        let mut target = std::fs::OpenOptions::new()
            .write(true)
            .open(database)
            .map_err(BackupError::io(database))?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            let read = reader.read(&mut buffer).map_err(BackupError::io(file))?;
            if read == 0 {
                break;
            }
            total += read as u64;
            if total > header.payload_bytes {
                return Err(BackupError::Damaged(format!(
                    "it is longer than its header says ({} bytes)",
                    header.payload_bytes
                )));
            }
            hasher.update(&buffer[..read]);
            target
                .write_all(&buffer[..read])
                .map_err(BackupError::io(database))?;
        }
        if total != header.payload_bytes {
            return Err(BackupError::Damaged(format!(
                "it holds {total} of the {} bytes its header announces (truncated?)",
                header.payload_bytes
            )));
        }
        if hex::encode(hasher.finalize()) != header.payload_sha256 {
            return Err(BackupError::Damaged(
                "its checksum does not match what it holds".into(),
            ));
        }
        target.sync_all().map_err(BackupError::io(database))?;
        Ok(())
    })();
    let checked = copied.and_then(|()| {
        let db = Database::open(database).map_err(|error| {
            BackupError::Damaged(format!("its database does not open: {error}"))
        })?;
        let found = check_records(&db)
            .map_err(|error| BackupError::Damaged(format!("a record is unreadable: {error}")))?;
        if found.schema_version != header.schema_version {
            return Err(BackupError::Damaged(format!(
                "its database says schema {}, its header {}",
                found.schema_version, header.schema_version
            )));
        }
        Ok(header)
    });
    if checked.is_err() {
        let _ = std::fs::remove_file(database);
    }
    checked
}

/// What `check_records` found.
#[derive(Debug, Default)]
pub struct RecordCount {
    pub schema_version: u64,
    pub records: u64,
}

/// Decodes every record of every table into its type and checks every index against the
/// records it points at (emails, enabled admins, both directions of memberships, sessions by
/// user, audit entries by action).
pub fn check_records(db: &Database) -> StoreResult<RecordCount> {
    let txn = db.begin_read()?;
    let corrupt = |what: String| StoreError::Corrupt(what);
    let mut count = RecordCount::default();
    macro_rules! table {
        ($definition:expr) => {
            match txn.open_table($definition) {
                Ok(table) => Some(table),
                Err(redb::TableError::TableDoesNotExist(_)) => None,
                Err(error) => return Err(error.into()),
            }
        };
    }
    if let Some(meta) = table!(META) {
        for entry in meta.iter()? {
            let (key, value) = entry?;
            match key.value() {
                SCHEMA_VERSION_KEY => count.schema_version = decode_u64(value.value())?,
                SETTINGS_KEY => {
                    decode::<Settings>(value.value())?;
                }
                NEXT_USER_ID_KEY | NEXT_MAIL_ID_KEY | NEXT_AUDIT_ID_KEY => {
                    decode_u64(value.value())?;
                }
                _ => {}
            }
            count.records += 1;
        }
    }
    let mut email_of = std::collections::HashMap::new();
    if let Some(users) = table!(USERS) {
        for entry in users.iter()? {
            let (id, bytes) = entry?;
            let user = decode_user(bytes.value())?;
            if user.id != id.value() {
                return Err(corrupt(format!(
                    "user {} is stored under id {}",
                    user.id,
                    id.value()
                )));
            }
            email_of.insert(user.id, (user.email.key(), user.is_enabled_admin()));
            count.records += 1;
        }
    }
    if let Some(index) = table!(USER_ID_BY_EMAIL) {
        let mut indexed = 0;
        for entry in index.iter()? {
            let (email, id) = entry?;
            match email_of.get(&id.value()) {
                Some((key, _)) if key == email.value() => indexed += 1,
                _ => {
                    return Err(corrupt(format!(
                        "email index entry {} points at no such user",
                        email.value()
                    )));
                }
            }
        }
        if indexed != email_of.len() {
            return Err(corrupt(format!(
                "{} users, {indexed} email index entries",
                email_of.len()
            )));
        }
    }
    if let Some(admins) = table!(ENABLED_ADMINS) {
        for entry in admins.iter()? {
            let id = entry?.0.value();
            if !email_of.get(&id).is_some_and(|(_, admin)| *admin) {
                return Err(corrupt(format!("enabled-admin index names user {id}")));
            }
        }
    }
    let mut flocks = std::collections::HashSet::new();
    if let Some(table) = table!(FLOCKS) {
        for entry in table.iter()? {
            let (id, bytes) = entry?;
            decode::<FlockRecord>(bytes.value())?;
            flocks.insert(id.value().to_string());
            count.records += 1;
        }
    }
    let mut roles = std::collections::HashSet::new();
    if let Some(by_user) = table!(ROLES_BY_USER) {
        for entry in by_user.iter()? {
            let (key, role) = entry?;
            let (user, flock) = key.value();
            if !email_of.contains_key(&user) || !flocks.contains(flock) {
                return Err(corrupt(format!(
                    "a role of user {user} in {flock} names a missing user or flock"
                )));
            }
            roles.insert((user, flock.to_string(), role.value()));
            count.records += 1;
        }
    }
    if let Some(by_flock) = table!(ROLES_BY_FLOCK) {
        let mut seen = 0;
        for entry in by_flock.iter()? {
            let (key, role) = entry?;
            let (flock, user) = key.value();
            if !roles.contains(&(user, flock.to_string(), role.value())) {
                return Err(corrupt(format!(
                    "the role of user {user} in {flock} is stored one way only"
                )));
            }
            seen += 1;
        }
        if seen != roles.len() {
            return Err(corrupt(format!(
                "{} roles by user, {seen} by flock",
                roles.len()
            )));
        }
    }
    if let Some(keys) = table!(API_KEYS) {
        for entry in keys.iter()? {
            decode_api_key(entry?.1.value())?;
            count.records += 1;
        }
    }
    if let Some(tokens) = table!(ONE_TIME_TOKENS) {
        for entry in tokens.iter()? {
            decode::<OneTimeToken>(entry?.1.value())?;
            count.records += 1;
        }
    }
    if let Some(mail) = table!(MAIL_QUEUE) {
        for entry in mail.iter()? {
            decode::<QueuedMail>(entry?.1.value())?;
            count.records += 1;
        }
    }
    let mut sessions = std::collections::HashMap::new();
    if let Some(table) = table!(SESSIONS) {
        for entry in table.iter()? {
            let (key, bytes) = entry?;
            let record: SessionRecord = decode(bytes.value())?;
            sessions.insert(key.value().to_string(), record.user_id);
            count.records += 1;
        }
    }
    if let Some(by_user) = table!(SESSIONS_BY_USER) {
        for entry in by_user.iter()? {
            let entry = entry?;
            let (user, session) = entry.0.value();
            if sessions.get(session) != Some(&user) {
                return Err(corrupt(format!(
                    "a session of user {user} is indexed but not stored"
                )));
            }
        }
    }
    if let Some(locks) = table!(LOGIN_LOCKS) {
        for entry in locks.iter()? {
            decode::<crate::domain::Lock>(entry?.1.value())?;
            count.records += 1;
        }
    }
    let mut actions = std::collections::HashMap::new();
    if let Some(audit) = table!(AUDIT) {
        for entry in audit.iter()? {
            let (id, bytes) = entry?;
            let line: AuditEntry = decode(bytes.value())?;
            actions.insert(id.value(), line.action_type);
            count.records += 1;
        }
    }
    if let Some(by_action) = table!(AUDIT_BY_ACTION) {
        for entry in by_action.iter()? {
            let entry = entry?;
            let (action, id) = entry.0.value();
            if actions.get(&id).map(String::as_str) != Some(action) {
                return Err(corrupt(format!(
                    "audit entry {id} is indexed as {action} but is not"
                )));
            }
        }
    }
    Ok(count)
}
