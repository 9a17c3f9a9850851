//! Secrets at rest: TOTP secrets are stored sealed with XChaCha20-Poly1305 under a key kept
//! apart from the database (`secrets.key`, 0600), so the database file or a backup of it alone
//! can't generate anyone's codes. Each sealed value is bound to what it belongs to (the user id)
//! by the AEAD's associated data, so sealed values can't be swapped between users in the file.

use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};

use super::{StoreError, StoreResult};
use crate::private_files::write_new_private;

/// What a sealed value starts with; base32 TOTP secrets (what schema 1 stored) never contain a
/// colon, so the two can't be confused.
const SEALED_PREFIX: &str = "sealed:v1:";
const NONCE_BYTES: usize = 24;
const KEY_BYTES: usize = 32;

/// The key that seals and opens secrets at rest.
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer([redacted])")
    }
}

/// A secret as it is stored: sealed. Its `Debug` shows nothing of it, and it has no `Serialize`:
/// `User` carries it to every handler, and only the store may write its text to the file.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret(String);

impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealedSecret([redacted])")
    }
}

impl SealedSecret {
    /// Whether the stored text is sealed (schema 1 stored TOTP secrets in clear).
    pub fn is_sealed(text: &str) -> bool {
        text.starts_with(SEALED_PREFIX)
    }

    /// The value as read from the file.
    pub(super) fn from_stored(text: String) -> SealedSecret {
        SealedSecret(text)
    }

    /// The text the file holds.
    pub(super) fn as_stored(&self) -> &str {
        &self.0
    }

    pub(super) fn into_stored(self) -> String {
        self.0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read the secrets key {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create the secrets key {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the secrets key {path} is not a key: it must hold {KEY_BYTES} bytes, written as 64 hex characters"
    )]
    Malformed { path: PathBuf },
}

impl Sealer {
    pub fn from_key(key: [u8; KEY_BYTES]) -> Sealer {
        Sealer {
            cipher: XChaCha20Poly1305::new(&key.into()),
        }
    }

    /// Reads the key at `path`, or creates one there (0600, never readable by others) when the
    /// file doesn't exist. Returns the sealer and whether the key is new.
    pub fn load_or_create(path: &Path) -> Result<(Sealer, bool), KeyFileError> {
        match std::fs::read(path) {
            Ok(bytes) => Ok((Sealer::from_key(parse_key(&bytes, path)?), false)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; KEY_BYTES];
                rand::fill(&mut key);
                write_new_private(path, format!("{}\n", hex::encode(key)).as_bytes()).map_err(
                    |source| KeyFileError::Create {
                        path: path.to_path_buf(),
                        source,
                    },
                )?;
                Ok((Sealer::from_key(key), true))
            }
            Err(source) => Err(KeyFileError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Seals `plaintext` for `context` (what it belongs to) with a fresh random nonce.
    pub fn seal(&self, plaintext: &str, context: &str) -> StoreResult<SealedSecret> {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::fill(&mut nonce);
        let nonce = XNonce::from(nonce);
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| StoreError::Sealing("sealing a secret failed".into()))?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Ok(SealedSecret(format!(
            "{SEALED_PREFIX}{}",
            hex::encode(bytes)
        )))
    }

    /// The plaintext of a value sealed for `context`; fails if it was sealed under another key or
    /// for another context, or was altered.
    pub fn open(&self, sealed: &SealedSecret, context: &str) -> StoreResult<String> {
        let refused = || {
            StoreError::Sealing(
                "a stored secret can't be opened with this secrets key (wrong key, or altered)"
                    .into(),
            )
        };
        let hex_text = sealed.0.strip_prefix(SEALED_PREFIX).ok_or_else(|| {
            StoreError::Sealing(
                "a secret is stored in clear; the schema migration did not run".into(),
            )
        })?;
        let bytes = hex::decode(hex_text).map_err(|_| refused())?;
        if bytes.len() < NONCE_BYTES {
            return Err(refused());
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| refused())?;
        let plaintext = self
            .cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| refused())?;
        String::from_utf8(plaintext).map_err(|_| refused())
    }
}

/// The context a user's TOTP secret (enrolled or pending) is sealed for.
pub fn totp_context(user_id: u64) -> String {
    format!("roost totp secret of user {user_id}")
}

fn parse_key(bytes: &[u8], path: &Path) -> Result<[u8; KEY_BYTES], KeyFileError> {
    let malformed = || KeyFileError::Malformed {
        path: path.to_path_buf(),
    };
    if bytes.len() == KEY_BYTES {
        return bytes.try_into().map_err(|_| malformed());
    }
    let text = std::str::from_utf8(bytes).map_err(|_| malformed())?.trim();
    let decoded = hex::decode(text).map_err(|_| malformed())?;
    decoded.as_slice().try_into().map_err(|_| malformed())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SECRETS_KEY_FILE;

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_context() {
        let sealer = Sealer::from_key([7; 32]);
        let sealed = sealer.seal("JBSWY3DPEHPK3PXP", &totp_context(1)).unwrap();
        assert!(SealedSecret::is_sealed(&sealed.0));
        assert!(!sealed.0.contains("JBSWY3DPEHPK3PXP"));
        assert_eq!(format!("{sealed:?}"), "SealedSecret([redacted])");
        assert_eq!(
            sealer.open(&sealed, &totp_context(1)).unwrap(),
            "JBSWY3DPEHPK3PXP"
        );
        // Another user's context, another key, an altered value, a clear value: all refused.
        assert!(sealer.open(&sealed, &totp_context(2)).is_err());
        assert!(
            Sealer::from_key([8; 32])
                .open(&sealed, &totp_context(1))
                .is_err()
        );
        let mut altered = sealed.0.clone();
        let last = if altered.ends_with('0') { "1" } else { "0" };
        altered.replace_range(altered.len() - 1.., last);
        assert!(
            sealer
                .open(&SealedSecret(altered), &totp_context(1))
                .is_err()
        );
        assert!(
            sealer
                .open(&SealedSecret("JBSWY3DP".into()), &totp_context(1))
                .is_err()
        );
        // Two seals of the same secret differ (fresh nonces).
        assert_ne!(
            sealed,
            sealer.seal("JBSWY3DPEHPK3PXP", &totp_context(1)).unwrap()
        );
    }

    #[test]
    fn key_files_are_created_private_and_read_back_in_either_form() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SECRETS_KEY_FILE);
        let (sealer, created) = Sealer::load_or_create(&path).unwrap();
        assert!(created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let sealed = sealer.seal("s", "c").unwrap();
        let (again, created) = Sealer::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(again.open(&sealed, "c").unwrap(), "s");
        let raw = dir.path().join("raw.key");
        std::fs::write(&raw, [9u8; 32]).unwrap();
        assert!(Sealer::load_or_create(&raw).is_ok());
        std::fs::write(&raw, "not a key").unwrap();
        assert!(matches!(
            Sealer::load_or_create(&raw),
            Err(KeyFileError::Malformed { .. })
        ));
    }
}
