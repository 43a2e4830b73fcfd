//! TLS to NATS with the CA file of `USER_ENGINE_NATS_CA_FILE`, checked exactly as
//! webpki checks it, with the reason of a refusal kept: async-nats reports a refused
//! handshake only as an I/O error, and an operator needs to know whether the CA is the
//! wrong one or the name is not on the certificate.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Why the last handshake refused the server's certificate, until one accepts it.
pub(crate) type Refusal = Arc<Mutex<Option<String>>>;

/// A client configuration trusting only the certificates of `ca_file`, whose verifier
/// records in `refusal` why it refused a server.
///
/// # Errors
/// When the file cannot be read, holds no certificate, or one is not a valid CA.
pub(crate) fn client_config(
    ca_file: &Path,
    refusal: Refusal,
) -> Result<rustls::ClientConfig, String> {
    let unusable = |error: &dyn std::fmt::Display| {
        format!("cannot use the NATS CA file {}: {error}", ca_file.display())
    };
    let mut roots = RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(ca_file).map_err(|error| unusable(&error))? {
        roots
            .add(certificate.map_err(|error| unusable(&error))?)
            .map_err(|error| unusable(&error))?;
    }
    if roots.is_empty() {
        return Err(unusable(&"it holds no PEM certificate"));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|error| unusable(&error))?;
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| unusable(&error))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Explaining { inner, refusal }))
        .with_no_client_auth())
}

/// Webpki's verdict, its refusals recorded.
#[derive(Debug)]
struct Explaining {
    inner: Arc<WebPkiServerVerifier>,
    refusal: Refusal,
}

impl ServerCertVerifier for Explaining {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        if let Ok(mut refusal) = self.refusal.lock() {
            *refusal = verdict.as_ref().err().map(|error| {
                let why = match error {
                    rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer) => {
                        "not signed by a CA of USER_ENGINE_NATS_CA_FILE".to_owned()
                    }
                    other => other.to_string(),
                };
                format!("the server's certificate was refused: {why}")
            });
        }
        verdict
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
