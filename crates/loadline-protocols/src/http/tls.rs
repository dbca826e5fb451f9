//! The TLS client configurations of one HTTP protocol, built once per plan: one that
//! verifies servers against the webpki roots, and an insecure one that accepts any
//! certificate (self-signed test servers) but still checks the handshake
//! signatures, so the peer at least holds the key of the certificate it shows.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_rustls::TlsConnector;

/// The two connectors; which one a connection uses follows `HttpSettings::insecure`.
#[derive(Clone)]
pub(crate) struct TlsConnectors {
    pub(crate) verified: TlsConnector,
    pub(crate) insecure: TlsConnector,
}

impl std::fmt::Debug for TlsConnectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsConnectors")
    }
}

/// Builds both configurations with the ring provider, offering only HTTP/1.1 by ALPN.
pub(crate) fn connectors() -> Result<TlsConnectors, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let mut verified = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    verified.alpn_protocols = vec![b"http/1.1".to_vec()];

    let any_cert = AcceptAnyCertificate {
        algorithms: provider.signature_verification_algorithms,
    };
    let mut insecure = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(any_cert))
        .with_no_client_auth();
    insecure.alpn_protocols = vec![b"http/1.1".to_vec()];

    Ok(TlsConnectors {
        verified: TlsConnector::from(Arc::new(verified)),
        insecure: TlsConnector::from(Arc::new(insecure)),
    })
}

/// Trusts every certificate chain and name; verifies the handshake signatures.
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
