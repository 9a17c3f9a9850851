//! When the server backs itself up, where to, and how many backups it keeps.

use std::path::{Path, PathBuf};

use clap::Args;

use super::parse;

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct BackupSchedule {
    /// How often the server writes a backup of its database (e.g. 24h, 6h)
    #[arg(
        long = "backup-every",
        value_name = "BACKUP_EVERY",
        env = "ROOST_BACKUP_EVERY",
        default_value = "24h",
        value_parser = parse::seconds("--backup-every"),
        global = true
    )]
    pub every_secs: u64,
    /// Where scheduled backups go [default: <data-dir>/backups]
    #[arg(long = "backup-dir", env = "ROOST_BACKUP_DIR", global = true)]
    pub dir: Option<PathBuf>,
    /// Scheduled backups kept; older ones are deleted (0: no scheduled backups)
    #[arg(
        long = "backup-keep",
        env = "ROOST_BACKUP_KEEP",
        default_value_t = 7,
        global = true
    )]
    pub keep: usize,
}

impl BackupSchedule {
    /// The directory scheduled backups go to, for a data directory.
    pub fn dir_for(&self, data_dir: &Path) -> PathBuf {
        self.dir
            .clone()
            // The directory the store copies a file to before migrating it.
            .unwrap_or_else(|| data_dir.join("backups"))
    }
}
