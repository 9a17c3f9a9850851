//! HTTPS without a proxy: rustls serving the certificate chain and key of two PEM files, read
//! again on SIGHUP so a renewed certificate applies without a restart. A reload that fails (a
//! file missing or unreadable, no certificate in it, a key that doesn't belong to the
//! certificate) keeps the certificate in use and logs why: a botched renewal never takes the
//! console down.

use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS certificate {path}: {reason}")]
    Certificate { path: PathBuf, reason: String },
    #[error("cannot read the TLS key {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("the TLS key {key} does not belong to the certificate {certificate}")]
    Mismatch { certificate: PathBuf, key: PathBuf },
    #[error("cannot set up TLS: {0}")]
    Setup(#[from] rustls::Error),
}

/// The PEM files the certificate and its key are read from.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub certificate: PathBuf,
    pub key: PathBuf,
}

/// The certificate rustls hands out, swapped whole by a reload.
#[derive(Debug)]
pub struct ReloadingCertificate {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadingCertificate {
    /// Reads the files once; refused (and Roost doesn't start) if they can't be used.
    pub fn load(files: TlsFiles) -> Result<ReloadingCertificate, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let current = read(&files, &provider)?;
        Ok(ReloadingCertificate {
            files,
            provider,
            current: RwLock::new(Arc::new(current)),
        })
    }

    /// Reads the files again and serves what they hold from the next handshake on; on an error
    /// the certificate in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = read(&self.files, &self.provider)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(fresh);
        Ok(())
    }

    /// The rustls configuration serving this certificate (HTTP/1.1, TLS 1.2 and 1.3).
    pub fn server_config(self: &Arc<Self>) -> Result<ServerConfig, TlsError> {
        let mut config = ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.current.read().unwrap_or_else(PoisonError::into_inner),
        ))
    }
}

fn read(files: &TlsFiles, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let certificate_error = |reason: String| TlsError::Certificate {
        path: files.certificate.clone(),
        reason,
    };
    let key_error = |reason: String| TlsError::Key {
        path: files.key.clone(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(&files.certificate)
        .map_err(|error| certificate_error(pem_reason(&error)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| certificate_error(pem_reason(&error)))?;
    if chain.is_empty() {
        return Err(certificate_error(
            "no certificate in it (a PEM file with -----BEGIN CERTIFICATE----- is expected)".into(),
        ));
    }
    let key =
        PrivateKeyDer::from_pem_file(&files.key).map_err(|error| key_error(pem_reason(&error)))?;
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|error| key_error(error.to_string()))?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(_)) => Err(TlsError::Mismatch {
            certificate: files.certificate.clone(),
            key: files.key.clone(),
        }),
        // The key's public half can't be compared (rare key types): served as given.
        Err(_) => Ok(certified),
    }
}

fn pem_reason(error: &rustls::pki_types::pem::Error) -> String {
    match error {
        rustls::pki_types::pem::Error::Io(error) => error.to_string(),
        rustls::pki_types::pem::Error::NoItemsFound => {
            "no PEM item of the expected kind in it".into()
        }
        other => format!("not a usable PEM file ({other:?})"),
    }
}

/// Reloads the certificate on every SIGHUP, for as long as the server runs. Without TLS the
/// signal is only logged: SIGHUP's default action would end the process (`systemctl reload`).
pub fn reload_on_sighup(certificate: Option<Arc<ReloadingCertificate>>) {
    use tokio::signal::unix::{SignalKind, signal};
    // Registered now, before the server says it listens: a SIGHUP from then on is handled.
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(hangups) => hangups,
        Err(error) => {
            tracing::warn!(
                "cannot listen for SIGHUP: the TLS certificate is read at start only ({error})"
            );
            return;
        }
    };
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            let Some(certificate) = &certificate else {
                tracing::info!("SIGHUP: nothing to reload (no --tls-cert)");
                continue;
            };
            match certificate.reload() {
                Ok(()) => tracing::info!(
                    "SIGHUP: serving the TLS certificate {} again from disk",
                    certificate.files().certificate.display()
                ),
                Err(error) => {
                    tracing::error!("SIGHUP: {error}; still serving the previous certificate")
                }
            }
        }
    });
}
