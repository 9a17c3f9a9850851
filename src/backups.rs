//! Backups as an operator takes them: `roost backup --out FILE` writes one directly when no
//! server holds the data directory, and otherwise asks the running server through its control
//! socket (`<data-dir>/roost.sock`, private to the server's user like the database itself),
//! since redb lets one process open the file; `--verify` and `roost restore` check a backup
//! completely before anything is replaced (`store::backup`).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::Config;
use crate::store::audit::{Actor, AuditLine};
use crate::store::backup::{BackupError, BackupHeader, unpack};
use crate::store::export::{ExportCounts, ExportError};
use crate::store::{BACKUPS_DIR, DATABASE_FILE, Store, StoreError, StoreOptions};

/// The control socket's name in the data directory.
pub const CONTROL_SOCKET: &str = "roost.sock";
/// How long the server waits for a control request's line.
const REQUEST_WAIT: Duration = Duration::from_secs(10);
/// The longest a backup through the server may take before the command gives up waiting.
const SERVER_BACKUP_WAIT: Duration = Duration::from_secs(3600);

/// Writes a backup of `config`'s database to `out`: directly with `store` when this process
/// could open it, else through the running server that holds it.
pub async fn backup(
    config: &Config,
    store: Result<Store, StoreError>,
    out: &Path,
) -> Result<BackupHeader, BackupError> {
    let out = absolute(out)?;
    match store {
        Ok(store) => {
            let writer = store.clone();
            let target = out.clone();
            let header = tokio::task::spawn_blocking(move || writer.backup(&target))
                .await
                .map_err(|error| BackupError::Store(StoreError::TaskLost(error)))??;
            record_backup(&store, Actor::cli(), &out, &header).await;
            Ok(header)
        }
        Err(StoreError::Locked { .. }) => {
            let socket = config.data_dir.join(CONTROL_SOCKET);
            tokio::task::spawn_blocking(move || ask_server(&socket, &out))
                .await
                .map_err(|error| BackupError::Store(StoreError::TaskLost(error)))?
        }
        Err(error) => Err(error.into()),
    }
}

/// Writes an export of `config`'s console to `out`: directly with `store` when this process
/// could open the database, else through the running server that holds it.
pub async fn export(
    config: &Config,
    store: Result<Store, StoreError>,
    out: &Path,
) -> Result<ExportCounts, ExportError> {
    let out = std::path::absolute(out).map_err(|source| ExportError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    let lost = |error| ExportError::Store(StoreError::TaskLost(error));
    match store {
        Ok(store) => tokio::task::spawn_blocking(move || store.export(&Actor::cli(), &out))
            .await
            .map_err(lost)?,
        Err(StoreError::Locked { .. }) => {
            let socket = config.data_dir.join(CONTROL_SOCKET);
            let answer = tokio::task::spawn_blocking(move || {
                let request = request_line("export", &out).map_err(|reason| ExportError::Io {
                    path: out.clone(),
                    source: std::io::Error::other(reason),
                })?;
                ask(&socket, &request).map_err(|error| ExportError::Io {
                    path: out.clone(),
                    source: error,
                })
            })
            .await
            .map_err(lost)??;
            serde_json::from_str(&answer).map_err(|error| ExportError::Io {
                path: config.data_dir.join(CONTROL_SOCKET),
                source: std::io::Error::other(format!("the server's answer: {error}")),
            })
        }
        Err(error) => Err(error.into()),
    }
}

/// `VERB /absolute/path`, if the path can be put on one line.
fn request_line(verb: &str, path: &Path) -> Result<String, String> {
    path.to_str()
        .filter(|text| !text.contains('\n'))
        .map(|text| format!("{verb} {text}\n"))
        .ok_or_else(|| {
            format!(
                "{} can't be named to the server (not UTF-8, or a line break)",
                path.display()
            )
        })
}

/// One request on the control socket; the answer's `ok` payload, or the server's error.
fn ask(socket: &Path, request: &str) -> std::io::Result<String> {
    let mut stream = std::os::unix::net::UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(SERVER_BACKUP_WAIT))?;
    stream.write_all(request.as_bytes())?;
    let mut answer = String::new();
    BufReader::new(&stream).read_line(&mut answer)?;
    match answer.trim_end().split_once(' ') {
        Some(("ok", payload)) => Ok(payload.to_string()),
        Some(("error", message)) => Err(std::io::Error::other(format!(
            "the server could not do it: {message}"
        ))),
        _ => Err(std::io::Error::other(format!(
            "the server answered {answer:?}"
        ))),
    }
}

/// Puts a backup on the audit trail (`backup_create`); one that can't be recorded is logged.
async fn record_backup(store: &Store, actor: Actor, out: &Path, header: &BackupHeader) {
    let line = AuditLine::new(
        "backup_create",
        format!(
            "Backup written to {} ({} records, schema {})",
            out.display(),
            header.records,
            header.schema_version
        ),
    )
    .details(serde_json::json!({
        "file": out.display().to_string(),
        "records": header.records,
        "payload_bytes": header.payload_bytes,
        "schema_version": header.schema_version,
    }));
    let recorded = store
        .write_async(move |store| store.record_event(&actor, line.clone()))
        .await;
    if let Err(error) = recorded {
        tracing::warn!(
            "backup {} written, but not recorded on the audit trail: {error}",
            out.display()
        );
    }
}

fn absolute(path: &Path) -> Result<PathBuf, BackupError> {
    std::path::absolute(path).map_err(BackupError::io(path))
}

/// `backup <absolute path>` on the control socket; the answer's payload is the header JSON.
fn ask_server(socket: &Path, out: &Path) -> Result<BackupHeader, BackupError> {
    let request = request_line("backup", out).map_err(BackupError::NotABackup)?;
    let header = ask(socket, &request).map_err(|source| BackupError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&header)
        .map_err(|error| BackupError::NotABackup(format!("the server's answer: {error}")))
}

/// Serves the control socket of a running server until the process ends.
pub fn serve_control_socket(store: Store, data_dir: &Path) -> std::io::Result<()> {
    let path = data_dir.join(CONTROL_SOCKET);
    // Left by a server that was killed: this process holds the database, so no other serves it.
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path)?;
    tokio::spawn(async move {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!("control socket: {error}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let store = store.clone();
            tokio::spawn(async move {
                if let Err(error) = answer(stream, store).await {
                    tracing::warn!("control socket: {error}");
                }
            });
        }
    });
    Ok(())
}

async fn answer(stream: tokio::net::UnixStream, store: Store) -> std::io::Result<()> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    // One short line, soon: the limits keep a stuck client from growing it or holding on.
    let mut reader = tokio::io::BufReader::new(read.take(4096));
    match tokio::time::timeout(REQUEST_WAIT, reader.read_line(&mut line)).await {
        Ok(read) => {
            read?;
        }
        Err(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no request line within 10 s",
            ));
        }
    }
    let reply = match line.trim_end().split_once(' ') {
        Some(("backup", path)) if Path::new(path).is_absolute() => {
            let out = PathBuf::from(path);
            let (writer, target) = (store.clone(), out.clone());
            let written = tokio::task::spawn_blocking(move || writer.backup(&target)).await;
            if let Ok(Ok(header)) = &written {
                record_backup(&store, Actor::named("cli (control socket)"), &out, header).await;
                tracing::info!(
                    "backup written through the control socket: {} records",
                    header.records
                );
            }
            reply_line(written)
        }
        Some(("export", path)) if Path::new(path).is_absolute() => {
            let out = PathBuf::from(path);
            let written =
                tokio::task::spawn_blocking(move || store.export(&Actor::cli(), &out)).await;
            if let Ok(Ok(counts)) = &written {
                tracing::info!(
                    "export written through the control socket: {} users, {} audit entries",
                    counts.users,
                    counts.audit_entries
                );
            }
            reply_line(written)
        }
        _ => "error unknown request (expected: backup /absolute/path or export /absolute/path)"
            .to_string(),
    };
    write.write_all(format!("{reply}\n").as_bytes()).await?;
    write.shutdown().await
}

/// The answer line for work run on the blocking pool: `ok <JSON>` or `error <message>`.
fn reply_line<T: serde::Serialize, E: std::fmt::Display>(
    done: Result<Result<T, E>, tokio::task::JoinError>,
) -> String {
    match done {
        Ok(Ok(value)) => format!("ok {}", serde_json::to_string(&value).unwrap_or_default()),
        Ok(Err(error)) => format!("error {}", one_line(&error.to_string())),
        Err(error) => format!("error {}", one_line(&error.to_string())),
    }
}

fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

/// Checks `file` completely (into a scratch copy in the data directory, removed after).
pub fn verify(config: &Config, file: &Path) -> Result<BackupHeader, BackupError> {
    let scratch = scratch_dir(&config.data_dir, "verify")?;
    let checked = unpack(file, &scratch.join(DATABASE_FILE));
    let _ = std::fs::remove_dir_all(&scratch);
    checked
}

/// Replaces the database with the backup `file` once it is checked and opens with this data
/// directory's secrets key (an older schema is migrated); the replaced file is kept in
/// `backups/`. Refused while a server holds the database.
pub fn restore(
    config: &Config,
    file: &Path,
) -> Result<(BackupHeader, Option<PathBuf>), BackupError> {
    let current = config.data_dir.join(DATABASE_FILE);
    // Opened read-only: a running server's lock refuses it, and the file is left as it is.
    if current.exists() {
        match redb::ReadOnlyDatabase::open(&current) {
            Ok(db) => drop(db),
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(BackupError::ServerRunning { path: current });
            }
            // A damaged current file is what a restore is for.
            Err(_) => {}
        }
    }
    let scratch = scratch_dir(&config.data_dir, "restore")?;
    let result = (|| {
        let header = unpack(file, &scratch.join(DATABASE_FILE))?;
        let options = StoreOptions::from_config(config);
        // The secrets key must open the backup's sealed secrets, and an older schema is
        // brought up to date, before the file takes the database's place.
        drop(Store::open_with(&scratch, &options)?);
        let kept = if current.exists() {
            let backups = config.data_dir.join(BACKUPS_DIR);
            crate::private_files::create_private_dir(&backups)
                .map_err(BackupError::io(&backups))?;
            let kept = backups.join(format!(
                "roost-before-restore-{}.redb",
                crate::store::now_unix()
            ));
            std::fs::rename(&current, &kept).map_err(BackupError::io(&current))?;
            Some(kept)
        } else {
            None
        };
        std::fs::rename(scratch.join(DATABASE_FILE), &current)
            .map_err(BackupError::io(&current))?;
        Ok((header, kept))
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

fn scratch_dir(data_dir: &Path, what: &str) -> Result<PathBuf, BackupError> {
    let dir = data_dir.join(format!(".{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    crate::private_files::create_private_dir(&dir).map_err(BackupError::io(&dir))?;
    Ok(dir)
}

/// Scheduled backups are named `roost-<UTC time>.bak`, so that names sort by time.
const SCHEDULED_PREFIX: &str = "roost-";
const SCHEDULED_SUFFIX: &str = ".bak";
/// A first or overdue backup waits this long after the start (or `every`, if shorter): a
/// restarting server doesn't write one on every start.
const FIRST_BACKUP_AFTER: Duration = Duration::from_secs(300);

/// Writes a backup every `schedule.every_secs` into the backup directory and keeps the newest
/// `schedule.keep` (none with a keep of 0).
pub fn spawn_scheduler(store: Store, schedule: crate::config::BackupSchedule, data_dir: &Path) {
    if schedule.keep == 0 {
        return;
    }
    let dir = schedule.dir_for(data_dir);
    let every = Duration::from_secs(schedule.every_secs);
    tokio::spawn(async move {
        if let Err(error) = crate::private_files::create_private_dir(&dir) {
            tracing::error!("scheduled backups are off: {}: {error}", dir.display());
            return;
        }
        let since_newest = scheduled_backups(&dir)
            .last()
            .and_then(|newest| newest.metadata().ok()?.modified().ok()?.elapsed().ok());
        let first = match since_newest {
            Some(age) if age < every => every - age,
            _ => FIRST_BACKUP_AFTER.min(every),
        };
        tokio::time::sleep(first).await;
        loop {
            let name = format!(
                "{SCHEDULED_PREFIX}{}{SCHEDULED_SUFFIX}",
                crate::timestamps::rfc3339(crate::store::now_unix()).replace(':', "-")
            );
            let out = dir.join(name);
            let writer = store.clone();
            let target = out.clone();
            match tokio::task::spawn_blocking(move || writer.backup(&target)).await {
                Ok(Ok(header)) => {
                    tracing::info!(
                        "scheduled backup {}: {} records, {} bytes",
                        out.display(),
                        header.records,
                        header.payload_bytes
                    );
                    record_backup(&store, Actor::system(), &out, &header).await;
                    prune(&dir, schedule.keep);
                }
                Ok(Err(error)) => tracing::error!("scheduled backup {}: {error}", out.display()),
                Err(error) => tracing::error!("scheduled backup {}: {error}", out.display()),
            }
            tokio::time::sleep(every).await;
        }
    });
}

/// The scheduled backups in `dir`, oldest first.
fn scheduled_backups(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| {
                    name.starts_with(SCHEDULED_PREFIX) && name.ends_with(SCHEDULED_SUFFIX)
                })
        })
        .collect();
    found.sort();
    found
}

/// Deletes all but the newest `keep` scheduled backups.
fn prune(dir: &Path, keep: usize) {
    let backups = scheduled_backups(dir);
    let excess = backups.len().saturating_sub(keep);
    for old in &backups[..excess] {
        match std::fs::remove_file(old) {
            Ok(()) => tracing::info!("removed the old scheduled backup {}", old.display()),
            Err(error) => tracing::warn!("cannot remove {}: {error}", old.display()),
        }
    }
}
