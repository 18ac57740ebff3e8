//! HTTPS for the admin API: the PEM certificate chain and key named by
//! `admin_tls_cert` and `admin_tls_key`, loaded once at start (rustls on ring).

use std::{path::Path, sync::Arc};

use rustls::ServerConfig;
use rustls_pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::{config::TlsFiles, fleet::FleetError};

/// The acceptor for `files`, or an error naming the key and file at fault.
pub(super) fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, FleetError> {
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| bad("admin_tls_cert", &files.cert, pem_error(&e, "CERTIFICATE")))?;
    if certs.is_empty() {
        return Err(bad(
            "admin_tls_cert",
            &files.cert,
            "no PEM certificate (BEGIN CERTIFICATE) in the file".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| bad("admin_tls_key", &files.key, pem_error(&e, "PRIVATE KEY")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("admin_tls_cert", &files.cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            bad(
                "admin_tls_key",
                &files.key,
                format!("cannot be used with the certificate of admin_tls_cert: {e}"),
            )
        })?;
    // The server speaks HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// What is wrong with a PEM file, without any of its content.
fn pem_error(e: &rustls_pki_types::pem::Error, kind: &str) -> String {
    use rustls_pki_types::pem::Error;
    match e {
        Error::NoItemsFound => format!("no PEM {kind} in the file"),
        Error::Io(e) => format!("cannot read: {e}"),
        Error::MissingSectionEnd { .. } | Error::IllegalSectionStart { .. } => {
            "not a well-formed PEM file (a section is not closed)".into()
        }
        Error::Base64Decode(_) => "not a well-formed PEM file (bad base64)".into(),
        _ => "not a well-formed PEM file".into(),
    }
}

fn bad(key: &'static str, path: &Path, why: String) -> FleetError {
    FleetError::AdminTls {
        key,
        path: path.display().to_string(),
        why,
    }
}
