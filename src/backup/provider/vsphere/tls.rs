//! How the vSphere client trusts vCenter's certificate: the system's CA
//! store, a CA file, a pinned SHA-256 thumbprint (as govc's known-hosts file
//! pins one), or — only when named — nothing.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    System,
    CaFile(PathBuf),
    /// The certificate's SHA-256, 64 lowercase hex digits.
    Thumbprint(String),
    Insecure,
}

/// `AB:CD:…` or `abcd…` as 64 lowercase hex digits; None when it is not a SHA-256.
pub fn thumbprint(text: &str) -> Option<String> {
    let hex: String = text
        .chars()
        .filter(|c| *c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit())).then_some(hex)
}

/// Accepts exactly the certificate with this SHA-256, whatever signed it
/// (vCenter's self-signed default), checking its handshake signatures.
#[derive(Debug)]
struct Pinned {
    sha256: String,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let seen: String = Sha256::digest(end_entity.as_ref())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if seen == self.sha256 {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "vCenter's certificate has SHA-256 {seen}, not the pinned {}",
                self.sha256
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// An HTTPS client for vCenter: cookies kept (the SOAP session), every
/// request within `timeout`.
pub fn client(trust: &Trust, timeout: Duration) -> Result<reqwest::Client, String> {
    let builder = reqwest::Client::builder()
        .cookie_store(true)
        .https_only(true)
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(10));
    let builder = match trust {
        Trust::System => builder,
        Trust::Insecure => builder.danger_accept_invalid_certs(true),
        Trust::CaFile(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| format!("cannot read the CA file {}: {e}", path.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("the CA file {} is not PEM: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "the CA file {} holds no certificate",
                    path.display()
                ));
            }
            certs
                .into_iter()
                .fold(builder.tls_built_in_root_certs(false), |b, c| {
                    b.add_root_certificate(c)
                })
        }
        Trust::Thumbprint(sha256) => {
            // ring, as reqwest's own rustls uses: post-quantum key exchange
            // would need aws-lc-rs (a C build), and vCenter offers none.
            #[allow(deprecated)]
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS: {e}"))?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Pinned {
                    sha256: sha256.clone(),
                    provider,
                }))
                .with_no_client_auth();
            builder.use_preconfigured_tls(config)
        }
    };
    builder
        .build()
        .map_err(|e| format!("cannot set up HTTPS: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprints_with_or_without_colons() {
        let hex = "448f628a8a65aa18560e53a80c53acb38c51b427df0334082349141147dc9bf6";
        assert_eq!(thumbprint(hex).as_deref(), Some(hex));
        let colons: String = hex
            .to_ascii_uppercase()
            .as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(thumbprint(&colons).as_deref(), Some(hex));
        assert_eq!(thumbprint("ab:cd"), None);
        // A SHA-1 (govc's older form) is not a SHA-256.
        assert_eq!(thumbprint(&hex[..40]), None);
    }
}
