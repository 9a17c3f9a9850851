//! Export and import: the console as JSON Lines (one JSON object a line), for moving between
//! machines and versions. Unlike a backup (a copy of the database file), an export is a
//! documented format any later Roost reads, and a person can read or filter it.
//!
//! The first line is the header, the last the end line with the counts (a truncated file is
//! refused); between them one line per record:
//!
//! ```text
//! {"kind":"header","format":1,"schema_version":5,"created":1796161069,"secrets_key_check":"…"}
//! {"kind":"settings","record":{…}}
//! {"kind":"flock","id":"flock:default","record":{"name":"Default Flock","created":…}}
//! {"kind":"user","record":{"id":1,"email":"ann@example.com","password_hash":"$argon2id$…",…}}
//! {"kind":"role","user":1,"flock":"flock:default","role":"manager"}
//! {"kind":"api_key","record":{"key_id":"…","secret_hash":"…","scope":{…},…}}
//! {"kind":"webhook","id":1,"record":{"url":"https://…","format":"slack","secret":"sealed:…",…}}
//! {"kind":"invitation","hash":"…","record":{"expires_at":…,"max_uses":5,"uses":[…],…}}
//! {"kind":"audit","id":7,"record":{"at":…,"action_type":"user_add",…}}
//! {"kind":"end","counts":{"flocks":1,"users":1,"roles":1,"api_keys":1,"webhooks":1,"invitations":1,"audit_entries":7}}
//! ```
//!
//! `record` is the record as this schema stores it (README "Export and import" lists the
//! fields). Password hashes, API key hashes and recovery code hashes are carried as they are
//! stored; TOTP and webhook secrets stay sealed with the secrets key, so importing them needs that
//! key (the header's `secrets_key_check` tells whether the importing side has it); invitations
//! are carried by the hash of their link (the links keep working). Not carried: sessions (people
//! log in again), unused one-time links, the mail and webhook queues and login locks.
//!
//! An import goes into a data directory without a database only. Every line is read and checked
//! (its JSON, its record, that ids and emails are unique, that roles and flock keys name users
//! and flocks of the file, the counts) before anything is written; the first problem is reported
//! with its line and nothing is imported. Then one transaction writes every record with its
//! indexes into a new database beside the target, which is renamed into place.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use redb::ReadableTable;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::audit::{Actor, AuditEntry, AuditLine, is_action_type};
use super::disk::{decode_api_key, decode_user};
use super::records::{FlockRecord, decode};
use super::tables::{
    API_KEYS, AUDIT, AUDIT_BY_ACTION, ENABLED_ADMINS, FLOCKS, INVITATIONS, META, NEXT_AUDIT_ID_KEY,
    NEXT_USER_ID_KEY, ROLES_BY_FLOCK, ROLES_BY_USER, SECRETS_KEY_CHECK_KEY, SETTINGS_KEY,
    USER_ID_BY_EMAIL, USERS, WEBHOOKS, recorded_schema_version,
};
use super::{
    DATABASE_FILE, SCHEMA_VERSION, Settings, Store, StoreError, StoreOptions, now_unix, sealing,
};
use crate::domain::{FlockId, FlockRole};

/// The export format this build writes and reads.
pub const EXPORT_FORMAT: u64 = 1;

/// Longest line an import reads (a user with many security keys is a few KiB).
const MAX_LINE_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("line {line}: {reason}")]
    Invalid { line: usize, reason: String },
    #[error(
        "{0} already holds a database: an import goes into a data directory without one (move it away, or choose another --data-dir)"
    )]
    NotEmpty(PathBuf),
    #[error(transparent)]
    Store(#[from] StoreError),
}

macro_rules! redb_error_into_export_error {
    ($($error:ty),*) => {$(
        impl From<$error> for ExportError {
            fn from(error: $error) -> Self {
                ExportError::Store(StoreError::from(error))
            }
        }
    )*};
}
redb_error_into_export_error!(
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::TransactionError
);

impl ExportError {
    fn io(path: &Path) -> impl Fn(std::io::Error) -> ExportError + '_ {
        move |source| ExportError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// How many records of each kind an export holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportCounts {
    pub flocks: u64,
    pub users: u64,
    pub roles: u64,
    pub api_keys: u64,
    #[serde(default)]
    pub webhooks: u64,
    #[serde(default)]
    pub invitations: u64,
    pub audit_entries: u64,
}

impl std::fmt::Display for ExportCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} users, {} flocks, {} roles, {} API keys, {} webhooks, {} invitations, {} audit entries",
            self.users,
            self.flocks,
            self.roles,
            self.api_keys,
            self.webhooks,
            self.invitations,
            self.audit_entries
        )
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum ExportLine {
    Header {
        format: u64,
        schema_version: u64,
        created: u64,
        secrets_key_check: Option<String>,
    },
    Settings {
        record: Value,
    },
    Flock {
        id: String,
        record: Value,
    },
    User {
        record: Value,
    },
    Role {
        user: u64,
        flock: String,
        role: String,
    },
    ApiKey {
        record: Value,
    },
    Webhook {
        id: u64,
        record: Value,
    },
    Invitation {
        hash: String,
        record: Value,
    },
    Audit {
        id: u64,
        record: Value,
    },
    End {
        counts: ExportCounts,
    },
}

impl Store {
    /// Writes the console to `out` (refused if it exists) from one read transaction, private
    /// (0600) and atomically (a temporary name, then a rename), and records it on the trail.
    pub fn export(&self, actor: &Actor, out: &Path) -> Result<ExportCounts, ExportError> {
        if out.exists() {
            return Err(ExportError::Io {
                path: out.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::AlreadyExists, "already exists"),
            });
        }
        let partial = super::backup::sibling(out, "partial");
        let _ = std::fs::remove_file(&partial);
        let file = crate::private_files::private_file_options()
            .write(true)
            .create_new(true)
            .open(&partial)
            .map_err(ExportError::io(&partial))?;
        let written = self.write_export(BufWriter::new(file), &partial);
        let counts = match written {
            Ok(counts) => counts,
            Err(error) => {
                let _ = std::fs::remove_file(&partial);
                return Err(error);
            }
        };
        if let Err(error) = crate::private_files::publish(&partial, out) {
            let _ = std::fs::remove_file(&partial);
            return Err(ExportError::io(out)(error));
        }
        let txn = self.begin_write()?;
        super::audit::record(
            &txn,
            actor,
            AuditLine::new(
                "data_export",
                format!(
                    "Exported {} users, {} flocks, {} API keys and {} audit entries",
                    counts.users, counts.flocks, counts.api_keys, counts.audit_entries
                ),
            )
            .details(serde_json::json!(counts)),
        )?;
        txn.commit()?;
        Ok(counts)
    }

    fn write_export(
        &self,
        mut out: BufWriter<std::fs::File>,
        path: &Path,
    ) -> Result<ExportCounts, ExportError> {
        let txn = self.begin_read()?;
        let mut counts = ExportCounts::default();
        let line = |out: &mut dyn Write, line: &ExportLine| -> Result<(), ExportError> {
            serde_json::to_writer(&mut *out, line).map_err(|error| ExportError::Io {
                path: path.to_path_buf(),
                source: error.into(),
            })?;
            out.write_all(b"\n").map_err(ExportError::io(path))
        };
        let stored = |bytes: &[u8]| -> Result<Value, ExportError> {
            serde_json::from_slice(bytes)
                .map_err(|error| StoreError::Corrupt(error.to_string()).into())
        };
        let meta = txn.open_table(META)?;
        let secrets_key_check = meta
            .get(SECRETS_KEY_CHECK_KEY)?
            .map(|value| decode::<String>(value.value()))
            .transpose()?;
        line(
            &mut out,
            &ExportLine::Header {
                format: EXPORT_FORMAT,
                schema_version: recorded_schema_version(&txn)?.unwrap_or(0),
                created: now_unix(),
                secrets_key_check,
            },
        )?;
        if let Some(settings) = meta.get(SETTINGS_KEY)? {
            let record = stored(settings.value())?;
            line(&mut out, &ExportLine::Settings { record })?;
        }
        for entry in txn.open_table(FLOCKS)?.iter()? {
            let (id, bytes) = entry?;
            let record = stored(bytes.value())?;
            let id = id.value().to_string();
            line(&mut out, &ExportLine::Flock { id, record })?;
            counts.flocks += 1;
        }
        for entry in txn.open_table(USERS)?.iter()? {
            let record = stored(entry?.1.value())?;
            line(&mut out, &ExportLine::User { record })?;
            counts.users += 1;
        }
        for entry in txn.open_table(ROLES_BY_USER)?.iter()? {
            let (key, role) = entry?;
            let (user, flock) = key.value();
            let role = FlockRole::from_byte(role.value())
                .ok_or_else(|| StoreError::Corrupt(format!("role byte of user {user}")))?;
            line(
                &mut out,
                &ExportLine::Role {
                    user,
                    flock: flock.to_string(),
                    role: role.as_str().to_string(),
                },
            )?;
            counts.roles += 1;
        }
        for entry in txn.open_table(API_KEYS)?.iter()? {
            let record = stored(entry?.1.value())?;
            line(&mut out, &ExportLine::ApiKey { record })?;
            counts.api_keys += 1;
        }
        for entry in txn.open_table(WEBHOOKS)?.iter()? {
            let (id, bytes) = entry?;
            let record = stored(bytes.value())?;
            let id = id.value();
            line(&mut out, &ExportLine::Webhook { id, record })?;
            counts.webhooks += 1;
        }
        for entry in txn.open_table(INVITATIONS)?.iter()? {
            let (hash, bytes) = entry?;
            let record = stored(bytes.value())?;
            let hash = hash.value().to_string();
            line(&mut out, &ExportLine::Invitation { hash, record })?;
            counts.invitations += 1;
        }
        for entry in txn.open_table(AUDIT)?.iter()? {
            let (id, bytes) = entry?;
            let record = stored(bytes.value())?;
            line(
                &mut out,
                &ExportLine::Audit {
                    id: id.value(),
                    record,
                },
            )?;
            counts.audit_entries += 1;
        }
        line(&mut out, &ExportLine::End { counts })?;
        // On disk before it gets its name: a crash leaves no half export under it.
        let file = out.into_inner().map_err(|error| ExportError::Io {
            path: path.to_path_buf(),
            source: error.into_error(),
        })?;
        file.sync_all().map_err(ExportError::io(path))?;
        Ok(counts)
    }
}

/// Everything an export holds, checked, in the order it is written.
#[derive(Default)]
struct Checked {
    secrets_key_check: Option<String>,
    holds_sealed_secrets: bool,
    settings: Option<Settings>,
    flocks: Vec<(String, FlockRecord)>,
    users: Vec<super::User>,
    roles: Vec<(u64, String, FlockRole)>,
    api_keys: Vec<super::ApiKeyRecord>,
    webhooks: Vec<(u64, Value)>,
    invitations: Vec<(String, Value)>,
    audit: Vec<(u64, AuditEntry)>,
    counts: ExportCounts,
}

/// Reads and checks every line of `file`; the first problem names its line.
fn check_export(file: &Path) -> Result<Checked, ExportError> {
    let reader = BufReader::new(std::fs::File::open(file).map_err(ExportError::io(file))?);
    let mut checked = Checked::default();
    let mut emails = HashSet::new();
    let mut user_lines = HashMap::new();
    let mut flock_ids = HashSet::new();
    let mut key_ids = HashSet::new();
    let mut audit_ids = HashSet::new();
    let mut webhook_ids = HashSet::new();
    let mut invitation_hashes = HashSet::new();
    let mut pending_roles = Vec::new();
    let mut role_keys = HashSet::new();
    let mut pending_keys = Vec::new();
    let mut ended = false;
    let mut line_number = 0;
    let mut reader = reader.take(MAX_LINE_BYTES + 1);
    loop {
        let mut text = String::new();
        reader.set_limit(MAX_LINE_BYTES + 1);
        let read = reader
            .read_line(&mut text)
            .map_err(|error| ExportError::Invalid {
                line: line_number + 1,
                reason: format!("unreadable: {error}"),
            })?;
        if read == 0 {
            break;
        }
        line_number += 1;
        let invalid = |reason: String| ExportError::Invalid {
            line: line_number,
            reason,
        };
        if text.len() as u64 > MAX_LINE_BYTES {
            return Err(invalid(format!(
                "longer than {} MiB",
                MAX_LINE_BYTES / 1024 / 1024
            )));
        }
        if ended {
            return Err(invalid("a line after the end line".into()));
        }
        let parsed: ExportLine = serde_json::from_str(text.trim_end_matches(['\n', '\r']))
            .map_err(|error| {
                // serde_json places the error on "line 1" of the one line it was given.
                let reason = error.to_string();
                let reason = reason
                    .strip_suffix(&format!(" at line 1 column {}", error.column()))
                    .unwrap_or(&reason);
                invalid(format!(
                    "not an export line: {reason} (column {})",
                    error.column()
                ))
            })?;
        let record_of = |value: Value| serde_json::to_vec(&value).unwrap_or_default();
        match parsed {
            ExportLine::Header {
                format,
                schema_version,
                secrets_key_check,
                ..
            } => {
                if line_number != 1 {
                    return Err(invalid("a second header".into()));
                }
                if format != EXPORT_FORMAT {
                    return Err(invalid(format!(
                        "export format {format}; this Roost reads format {EXPORT_FORMAT}"
                    )));
                }
                if schema_version > SCHEMA_VERSION {
                    return Err(invalid(format!(
                        "written by a newer Roost (schema {schema_version}; this one has {SCHEMA_VERSION}): upgrade Roost"
                    )));
                }
                if schema_version < SCHEMA_VERSION {
                    return Err(invalid(format!(
                        "written by schema {schema_version}: import it with that Roost version, then upgrade (exports are read by the schema that wrote them)"
                    )));
                }
                checked.secrets_key_check = secrets_key_check;
                continue;
            }
            _ if line_number == 1 => {
                return Err(invalid(
                    "the first line must be the export header (is this a Roost export?)".into(),
                ));
            }
            ExportLine::Settings { record } => {
                if checked.settings.is_some() {
                    return Err(invalid("settings appear twice".into()));
                }
                checked.settings = Some(
                    decode::<Settings>(&record_of(record))
                        .map_err(|error| invalid(format!("settings: {error}")))?,
                );
            }
            ExportLine::Flock { id, record } => {
                let id = FlockId::parse(&id)
                    .map_err(|_| invalid(format!("malformed flock id {id:?}")))?
                    .as_str()
                    .to_string();
                let record = decode::<FlockRecord>(&record_of(record))
                    .map_err(|error| invalid(format!("flock {id}: {error}")))?;
                if !flock_ids.insert(id.clone()) {
                    return Err(invalid(format!("flock {id} appears twice")));
                }
                checked.flocks.push((id, record));
            }
            ExportLine::User { record } => {
                let user = decode_user(&record_of(record))
                    .map_err(|error| invalid(format!("user: {error}")))?;
                if user.id == 0 || user.id == u64::MAX {
                    return Err(invalid(format!("user id {} is out of range", user.id)));
                }
                if user_lines.insert(user.id, line_number).is_some() {
                    return Err(invalid(format!("user id {} appears twice", user.id)));
                }
                if !emails.insert(user.email.key()) {
                    return Err(invalid(format!("email {} appears twice", user.email)));
                }
                checked.holds_sealed_secrets |=
                    user.totp_secret.is_some() || user.pending_totp_secret.is_some();
                checked.users.push(user);
            }
            ExportLine::Role { user, flock, role } => {
                let role = FlockRole::parse(&role)
                    .map_err(|_| invalid(format!("role {role:?}: manager or watcher")))?;
                if !role_keys.insert((user, flock.clone())) {
                    return Err(invalid(format!(
                        "user {user} has two roles in flock {flock}"
                    )));
                }
                pending_roles.push((line_number, (user, flock, role)));
            }
            ExportLine::ApiKey { record } => {
                let key = decode_api_key(&record_of(record))
                    .map_err(|error| invalid(format!("API key: {error}")))?;
                if !key_ids.insert(key.key_id.clone()) {
                    return Err(invalid(format!("API key {} appears twice", key.key_id)));
                }
                pending_keys.push((line_number, key));
            }
            ExportLine::Webhook { id, record } => {
                let webhook = decode::<super::webhooks::Webhook>(&record_of(record.clone()))
                    .map_err(|error| invalid(format!("webhook {id}: {error}")))?;
                if id == 0 || id == u64::MAX || !webhook_ids.insert(id) {
                    return Err(invalid(format!(
                        "webhook id {id} is out of range or appears twice"
                    )));
                }
                if let Some(action) = webhook.actions.iter().find(|a| !is_action_type(a)) {
                    return Err(invalid(format!(
                        "webhook {id}: unknown action type {action:?}"
                    )));
                }
                checked.holds_sealed_secrets = true;
                checked.webhooks.push((id, record));
            }
            ExportLine::Invitation { hash, record } => {
                decode::<super::Invitation>(&record_of(record.clone()))
                    .map_err(|error| invalid(format!("invitation: {error}")))?;
                let is_hash = hash.len() == 64
                    && hash
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
                if !is_hash {
                    return Err(invalid(
                        "invitation: its hash is not a SHA-256 in hex".into(),
                    ));
                }
                if !invitation_hashes.insert(hash.clone()) {
                    return Err(invalid("an invitation appears twice".into()));
                }
                checked.invitations.push((hash, record));
            }
            ExportLine::Audit { id, record } => {
                let mut entry = decode::<AuditEntry>(&record_of(record))
                    .map_err(|error| invalid(format!("audit entry {id}: {error}")))?;
                if !is_action_type(&entry.action_type) {
                    return Err(invalid(format!(
                        "audit entry {id}: unknown action type {:?}",
                        entry.action_type
                    )));
                }
                if id == 0 || id == u64::MAX || !audit_ids.insert(id) {
                    return Err(invalid(format!(
                        "audit entry id {id} is out of range or appears twice"
                    )));
                }
                entry.id = id;
                checked.audit.push((id, entry));
            }
            ExportLine::End { counts } => {
                ended = true;
                checked.counts = counts;
            }
        }
    }
    let last = line_number;
    if last == 0 {
        return Err(ExportError::Invalid {
            line: 1,
            reason: "the file is empty".into(),
        });
    }
    if !ended {
        return Err(ExportError::Invalid {
            line: last,
            reason: "the end line is missing: the file is cut short".into(),
        });
    }
    for (line, (user, flock, role)) in pending_roles {
        if !user_lines.contains_key(&user) || !flock_ids.contains(&flock) {
            return Err(ExportError::Invalid {
                line,
                reason: format!(
                    "a role of user {user} in flock {flock}: no such user or flock in the file"
                ),
            });
        }
        checked.roles.push((user, flock, role));
    }
    for (line, key) in pending_keys {
        if let Some(flock) = key.scope.flock_id()
            && !flock_ids.contains(flock.as_str())
        {
            return Err(ExportError::Invalid {
                line,
                reason: format!(
                    "API key {} belongs to flock {flock}, not in the file",
                    key.key_id
                ),
            });
        }
        checked.api_keys.push(key);
    }
    let found = ExportCounts {
        flocks: checked.flocks.len() as u64,
        users: checked.users.len() as u64,
        roles: checked.roles.len() as u64,
        api_keys: checked.api_keys.len() as u64,
        webhooks: checked.webhooks.len() as u64,
        invitations: checked.invitations.len() as u64,
        audit_entries: checked.audit.len() as u64,
    };
    if found != checked.counts {
        return Err(ExportError::Invalid {
            line: last,
            reason: format!(
                "the end line counts {:?}, the file holds {found:?}",
                checked.counts
            ),
        });
    }
    Ok(checked)
}

/// Imports `file` into `data_dir`, which must hold no database yet; `options` name the secrets
/// key the new database uses. Returns what was imported.
pub fn import(
    data_dir: &Path,
    options: &StoreOptions,
    file: &Path,
    actor: &Actor,
) -> Result<ExportCounts, ExportError> {
    let target = data_dir.join(DATABASE_FILE);
    if target.exists() {
        return Err(ExportError::NotEmpty(data_dir.to_path_buf()));
    }
    let checked = check_export(file)?;
    // Built beside the target and renamed into place: a failure leaves no database behind.
    let scratch = data_dir.join(format!("import-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let built = build(&scratch, options, checked, actor, file);
    let outcome = built.and_then(|counts| {
        std::fs::rename(scratch.join(DATABASE_FILE), &target).map_err(ExportError::io(&target))?;
        Ok(counts)
    });
    let _ = std::fs::remove_dir_all(&scratch);
    outcome
}

fn build(
    scratch: &Path,
    options: &StoreOptions,
    checked: Checked,
    actor: &Actor,
    file: &Path,
) -> Result<ExportCounts, ExportError> {
    let store = Store::open_with(scratch, options)?;
    if checked.holds_sealed_secrets {
        let opens = checked.secrets_key_check.as_ref().is_some_and(|check| {
            store
                .sealer
                .open(
                    &sealing::SealedSecret::from_stored(check.clone()),
                    super::SECRETS_KEY_CHECK,
                )
                .is_ok()
        });
        if !opens {
            return Err(ExportError::Invalid {
                line: 1,
                reason: format!(
                    "the export's TOTP and webhook secrets are sealed with another secrets key than {}: copy secrets.key from the data directory that was exported (or point --secrets-key-file at it) before importing",
                    options.secrets_key_file.display()
                ),
            });
        }
    }
    let counts = checked.counts;
    let txn = store.begin_write()?;
    {
        let mut flocks = txn.open_table(FLOCKS)?;
        for (id, record) in &checked.flocks {
            flocks.insert(id.as_str(), super::records::encode(record)?.as_slice())?;
        }
        let mut users = txn.open_table(USERS)?;
        let mut by_email = txn.open_table(USER_ID_BY_EMAIL)?;
        let mut admins = txn.open_table(ENABLED_ADMINS)?;
        let mut schedules = txn.open_table(super::tables::USER_SCHEDULE_DUE)?;
        let mut next_user = 1;
        for user in &checked.users {
            super::users::write_user(&mut users, user)?;
            by_email.insert(user.email.key().as_str(), user.id)?;
            if let Some(due) = user.next_due() {
                schedules.insert((due, user.id), ())?;
            }
            if user.is_enabled_admin() {
                admins.insert(user.id, ())?;
            }
            next_user = next_user.max(user.id.saturating_add(1));
        }
        let mut by_user = txn.open_table(ROLES_BY_USER)?;
        let mut by_flock = txn.open_table(ROLES_BY_FLOCK)?;
        for (user, flock, role) in &checked.roles {
            by_user.insert((*user, flock.as_str()), role.to_byte())?;
            by_flock.insert((flock.as_str(), *user), role.to_byte())?;
        }
        let mut keys = txn.open_table(API_KEYS)?;
        for key in &checked.api_keys {
            keys.insert(
                key.key_id.as_str(),
                super::disk::encode_api_key(key)?.as_slice(),
            )?;
        }
        let mut webhooks = txn.open_table(WEBHOOKS)?;
        let mut next_webhook = 1;
        for (id, record) in &checked.webhooks {
            webhooks.insert(*id, super::records::encode(record)?.as_slice())?;
            next_webhook = next_webhook.max(id.saturating_add(1));
        }
        let mut invitations = txn.open_table(INVITATIONS)?;
        for (hash, record) in &checked.invitations {
            invitations.insert(hash.as_str(), super::records::encode(record)?.as_slice())?;
        }
        let mut audit = txn.open_table(AUDIT)?;
        let mut by_action = txn.open_table(AUDIT_BY_ACTION)?;
        let mut next_audit = 1;
        for (id, entry) in &checked.audit {
            audit.insert(*id, super::records::encode(entry)?.as_slice())?;
            by_action.insert((entry.action_type.as_str(), *id), ())?;
            next_audit = next_audit.max(id.saturating_add(1));
        }
        let mut meta = txn.open_table(META)?;
        if let Some(settings) = &checked.settings {
            meta.insert(SETTINGS_KEY, super::records::encode(settings)?.as_slice())?;
            txn.writes_settings();
        }
        meta.insert(NEXT_USER_ID_KEY, next_user.to_le_bytes().as_slice())?;
        meta.insert(NEXT_AUDIT_ID_KEY, next_audit.to_le_bytes().as_slice())?;
        meta.insert(
            super::webhooks::NEXT_WEBHOOK_ID_KEY,
            next_webhook.to_le_bytes().as_slice(),
        )?;
    }
    super::audit::record(
        &txn,
        actor,
        AuditLine::new(
            "data_import",
            format!(
                "Imported {} users, {} flocks, {} API keys and {} audit entries from {}",
                counts.users,
                counts.flocks,
                counts.api_keys,
                counts.audit_entries,
                file.display()
            ),
        )
        .details(serde_json::json!(counts)),
    )?;
    txn.commit()?;
    drop(store);
    Ok(counts)
}
