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

/// The connectors; which one a connection uses follows `HttpSettings::insecure`
/// and the HTTP version it offers by ALPN.
#[derive(Clone)]
pub(crate) struct TlsConnectors {
    pub(crate) verified: TlsConnector,
    pub(crate) insecure: TlsConnector,
    /// Offering `h2` only.
    pub(crate) h2_verified: TlsConnector,
    pub(crate) h2_insecure: TlsConnector,
    /// Offering `h2`, then `http/1.1`.
    pub(crate) auto_verified: TlsConnector,
    pub(crate) auto_insecure: TlsConnector,
}

impl std::fmt::Debug for TlsConnectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsConnectors")
    }
}

/// Builds every configuration with the ring provider.
pub(crate) fn connectors() -> Result<TlsConnectors, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let verified = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();

    let any_cert = AcceptAnyCertificate {
        algorithms: provider.signature_verification_algorithms,
    };
    let insecure = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(any_cert))
        .with_no_client_auth();

    let offering = |config: &ClientConfig, alpn: &[&[u8]]| {
        let mut c = config.clone();
        c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        TlsConnector::from(Arc::new(c))
    };
    Ok(TlsConnectors {
        verified: offering(&verified, &[b"http/1.1"]),
        insecure: offering(&insecure, &[b"http/1.1"]),
        h2_verified: offering(&verified, &[b"h2"]),
        h2_insecure: offering(&insecure, &[b"h2"]),
        auto_verified: offering(&verified, &[b"h2", b"http/1.1"]),
        auto_insecure: offering(&insecure, &[b"h2", b"http/1.1"]),
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
