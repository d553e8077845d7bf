//! TLS through rustls (ring provider): the platform's root certificates plus any extra CA the
//! application trusts (e.g. a test server's self-signed certificate).
//!
//! One `rustls::ClientConfig` (and one HTTP client, see `http.rs`) exists per distinct set of extra
//! CAs in the process, shared by every connection that uses it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::error::{Error, Result};

/// TLS settings of a connection. Equal options share one rustls configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TlsOptions {
    /// Extra trusted CA certificates (DER), on top of the platform's roots.
    pub extra_roots: Vec<CertificateDer<'static>>,
}

impl TlsOptions {
    /// Adds every certificate of a PEM document to the trusted roots.
    pub fn add_pem(&mut self, pem: &[u8]) -> Result<()> {
        let mut found = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| {
                Error::InvalidArgument(format!("CA certificate PEM could not be parsed: {e}"))
            })?;
            self.extra_roots.push(cert);
            found += 1;
        }
        if found == 0 {
            return Err(Error::InvalidArgument(
                "CA certificate PEM holds no CERTIFICATE block".into(),
            ));
        }
        Ok(())
    }

    /// Adds every certificate of a PEM file.
    pub fn add_pem_file(&mut self, path: &std::path::Path) -> Result<()> {
        let bytes = std::fs::read(path).map_err(|e| {
            Error::InvalidArgument(format!("cannot read CA certificate file {}: {e}", path.display()))
        })?;
        self.add_pem(&bytes)
    }
}

/// The platform's roots, loaded once per process (reading them is slow).
fn native_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let loaded = rustls_native_certs::load_native_certs();
        for e in &loaded.errors {
            tracing::warn!("could not load a platform root certificate: {e}");
        }
        let mut store = RootCertStore::empty();
        let (added, ignored) = store.add_parsable_certificates(loaded.certs);
        tracing::debug!(added, ignored, "loaded platform root certificates");
        store
    })
}

/// The shared rustls configuration for `options`.
pub(crate) fn client_config(options: &TlsOptions) -> Result<Arc<rustls::ClientConfig>> {
    static CONFIGS: OnceLock<Mutex<HashMap<TlsOptions, Arc<rustls::ClientConfig>>>> = OnceLock::new();
    let configs = CONFIGS.get_or_init(Default::default);
    if let Some(found) = configs.lock().unwrap_or_else(|p| p.into_inner()).get(options) {
        return Ok(found.clone());
    }
    let mut roots = native_roots().clone();
    for cert in &options.extra_roots {
        roots.add(cert.clone()).map_err(|e| {
            Error::InvalidArgument(format!("extra CA certificate is not usable as a root: {e}"))
        })?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Internal(format!("TLS set-up failed: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let config = Arc::new(config);
    configs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(options.clone())
        .or_insert(config.clone());
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_without_certificate_is_rejected_with_a_clear_error() {
        let mut o = TlsOptions::default();
        let e = o.add_pem(b"not a pem").unwrap_err();
        assert!(e.to_string().contains("no CERTIFICATE block"), "{e}");
    }

    #[test]
    fn same_options_share_one_config() {
        let o = TlsOptions::default();
        let a = client_config(&o).unwrap();
        let b = client_config(&o).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
    }
}
