//! Optional TLS on the gRPC listener, and mutual TLS when a client CA is configured.
//!
//! Key and certificate paths resolve like tokens (relative to `$CREDENTIALS_DIRECTORY` when
//! set), so a systemd unit can hand the private key over with `LoadCredential=`.

use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::config::{credential_path, TlsConfig};

/// Why TLS could not be set up; the daemon refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read.
    #[error("`{key}`: cannot read {path}: {source}")]
    Read {
        /// Config key naming the file.
        key: &'static str,
        /// Where we looked.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file holds no PEM block.
    #[error("`{key}`: {path} holds no PEM data")]
    NotPem {
        /// Config key naming the file.
        key: &'static str,
        /// Where we looked.
        path: PathBuf,
    },
}

/// The tonic TLS settings, or `None` for plaintext (no `tls.cert_file`).
pub fn server_config(cfg: &TlsConfig) -> Result<Option<ServerTlsConfig>, TlsError> {
    let (Some(cert), Some(key)) = (&cfg.cert_file, &cfg.key_file) else {
        return Ok(None);
    };
    let identity = Identity::from_pem(
        read_pem("tls.cert_file", cert)?,
        read_pem("tls.key_file", key)?,
    );
    let mut tls = ServerTlsConfig::new().identity(identity);
    if let Some(ca) = &cfg.client_ca_file {
        // Client certificates become mandatory (client_auth_optional stays false).
        tls = tls.client_ca_root(Certificate::from_pem(read_pem("tls.client_ca_file", ca)?));
    }
    Ok(Some(tls))
}

/// Whether clients must present a certificate.
pub fn mutual(cfg: &TlsConfig) -> bool {
    cfg.cert_file.is_some() && cfg.client_ca_file.is_some()
}

fn read_pem(key: &'static str, file: &Path) -> Result<Vec<u8>, TlsError> {
    let path = credential_path(file);
    let bytes = std::fs::read(&path).map_err(|source| TlsError::Read {
        key,
        path: path.clone(),
        source,
    })?;
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(TlsError::NotPem { key, path });
    }
    Ok(bytes)
}
