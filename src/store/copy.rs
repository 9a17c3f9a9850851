//! A copy of the whole database into a new file, table by table from one read transaction: a
//! consistent point-in-time copy that doesn't stop writers. The upgrade uses it to leave no freed
//! page of the old file behind (where a secret the migration sealed could still be read), and it
//! is the core of online backups.

use std::path::Path;

use redb::{Database, ReadTransaction, TableDefinition, WriteTransaction};

use super::tables::*;
use super::{Store, StoreError, StoreResult};

impl Store {
    /// Writes every table into a new database file at `path` (created private; an existing file
    /// is refused) and returns how many records were copied.
    pub fn copy_to(&self, path: &Path) -> StoreResult<u64> {
        let snapshot = self.begin_read()?;
        copy_database(&snapshot, path)
    }
}

pub(super) fn copy_database(from: &ReadTransaction, path: &Path) -> StoreResult<u64> {
    crate::private_files::write_new_private(path, &[]).map_err(|source| StoreError::DataDir {
        path: path.to_path_buf(),
        source,
    })?;
    let target = Database::create(path)?;
    let to = target.begin_write()?;
    let mut copied = 0;
    copied += copy_table(from, &to, META)?;
    copied += copy_table(from, &to, USERS)?;
    copied += copy_table(from, &to, USER_ID_BY_EMAIL)?;
    copied += copy_table(from, &to, ENABLED_ADMINS)?;
    copied += copy_table(from, &to, FLOCKS)?;
    copied += copy_table(from, &to, ROLES_BY_USER)?;
    copied += copy_table(from, &to, ROLES_BY_FLOCK)?;
    copied += copy_table(from, &to, API_KEYS)?;
    copied += copy_table(from, &to, ONE_TIME_TOKENS)?;
    copied += copy_table(from, &to, MAIL_QUEUE)?;
    copied += copy_table(from, &to, AUDIT)?;
    copied += copy_table(from, &to, AUDIT_BY_ACTION)?;
    copied += copy_table(from, &to, SESSIONS)?;
    copied += copy_table(from, &to, SESSIONS_BY_USER)?;
    copied += copy_table(from, &to, LOGIN_LOCKS)?;
    copied += copy_table(from, &to, USER_SCHEDULE_DUE)?;
    copied += copy_table(from, &to, INVITATIONS)?;
    copied += copy_table(from, &to, WEBHOOKS)?;
    copied += copy_table(from, &to, WEBHOOK_QUEUE)?;
    copied += copy_table(from, &to, WEBHOOK_DELIVERIES)?;
    to.commit()?;
    Ok(copied)
}

fn copy_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    from: &ReadTransaction,
    to: &WriteTransaction,
    definition: TableDefinition<K, V>,
) -> StoreResult<u64> {
    let source = match from.open_table(definition) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(error) => return Err(error.into()),
    };
    let mut target = to.open_table(definition)?;
    let mut copied = 0;
    for entry in redb::ReadableTable::iter(&source)? {
        let (key, value) = entry?;
        target.insert(key.value(), value.value())?;
        copied += 1;
    }
    Ok(copied)
}
