//! The TLS client configuration shared by every connection.

use std::sync::{Arc, OnceLock};

use rustls::{ClientConfig, RootCertStore};

use crate::transport::ClientError;

/// rustls with aws-lc-rs, trusting Mozilla's roots (webpki-roots) and the
/// platform's store. The platform store honours `SSL_CERT_FILE` and
/// `SSL_CERT_DIR`, which is how a private CA is added. Built once per
/// process; certificates the platform store cannot parse are skipped.
pub(crate) fn client_config() -> Result<Arc<ClientConfig>, ClientError> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            let native = rustls_native_certs::load_native_certs();
            let (added, skipped) = roots.add_parsable_certificates(native.certs);
            tracing::debug!(added, skipped, "platform TLS roots loaded");
            ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::aws_lc_rs::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
            .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|e| ClientError::Protocol(format!("no TLS configuration: {e}")))
}
