//! TLS for every connection: rustls with the `ring` provider, mutual
//! authentication against one private CA.
//!
//! A [`TlsConfig`] is one CA file, one certificate (chain) file and one key
//! file, all PEM, like Dask's `--tls-ca-file`, `--tls-cert` and `--tls-key`.
//! It is loaded once ([`TlsConfig::from_files`]) into a rustls server and
//! client configuration, which every connection then shares (cloning a
//! `TlsConfig` clones two `Arc`s).
//!
//! - As a server (scheduler port, worker data port) it requires a client
//!   certificate and verifies it against the CA.
//! - As a client (to the scheduler, to a worker's data port) it presents its
//!   certificate and verifies the server's chain against the CA, but does
//!   **not** require the certificate to name the address connected to:
//!   workers are reached by the IP they announce, and Dask makes the same
//!   choice for its private-CA mutual TLS. Only a certificate that is
//!   otherwise valid and signed by the CA passes ([`ChainOnlyVerifier`]).
//!
//! Every rask process is both a server and a client, so its certificate
//! must allow both uses (extended key usage `serverAuth` and `clientAuth`,
//! or none at all).

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// Why a TLS configuration could not be loaded. The message names the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsError(pub String);

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for TlsError {}

/// A loaded TLS configuration (see the module docs). Cheap to clone.
#[derive(Clone)]
pub struct TlsConfig {
    /// Where it was loaded from, for `Debug` and logs.
    origin: String,
    /// `None` for a client-only configuration built with
    /// [`TlsConfig::from_rustls`].
    server: Option<Arc<rustls::ServerConfig>>,
    client: Arc<rustls::ClientConfig>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("origin", &self.origin)
            .finish()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(what: &str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| {
        TlsError(format!(
            "cannot read the TLS {what} '{}': {e}",
            path.display()
        ))
    })
}

fn certificates(what: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(what, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            TlsError(format!(
                "the TLS {what} '{}' is not valid PEM: {e}",
                path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(TlsError(format!(
            "the TLS {what} '{}' holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        )));
    }
    Ok(certs)
}

impl TlsConfig {
    /// Loads the CA certificate(s), this side's certificate chain and its
    /// private key (PKCS#8, PKCS#1 or SEC1), all PEM files. Fails with a
    /// message naming the file: missing or unreadable, not PEM, no
    /// certificate or key in it, or a key that does not match the
    /// certificate.
    pub fn from_files(
        ca_file: impl AsRef<Path>,
        cert_file: impl AsRef<Path>,
        key_file: impl AsRef<Path>,
    ) -> Result<TlsConfig, TlsError> {
        let (ca_file, cert_file, key_file) =
            (ca_file.as_ref(), cert_file.as_ref(), key_file.as_ref());
        let mut roots = RootCertStore::empty();
        for c in certificates("CA file", ca_file)? {
            roots.add(c).map_err(|e| {
                TlsError(format!(
                    "the TLS CA file '{}' holds an unusable certificate: {e}",
                    ca_file.display()
                ))
            })?;
        }
        let roots = Arc::new(roots);
        let chain = certificates("certificate file", cert_file)?;
        let key_pem = read("key file", key_file)?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
            TlsError(format!(
                "the TLS key file '{}' holds no usable PEM private key: {e}",
                key_file.display()
            ))
        })?;
        let key_error = |e: rustls::Error| {
            TlsError(format!(
                "the TLS key file '{}' does not fit the certificate '{}': {e}",
                key_file.display(),
                cert_file.display()
            ))
        };
        let provider = provider();
        let client_verifier =
            WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
                .build()
                .map_err(|e| TlsError(format!("the TLS CA file '{}': {e}", ca_file.display())))?;
        let server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError(e.to_string()))?
            .with_client_cert_verifier(client_verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(key_error)?;
        let server_verifier = ChainOnlyVerifier::new(roots)
            .map_err(|e| TlsError(format!("the TLS CA file '{}': {e}", ca_file.display())))?;
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(server_verifier)
            .with_client_auth_cert(chain, key)
            .map_err(key_error)?;
        Ok(TlsConfig {
            origin: format!(
                "ca {}, cert {}, key {}",
                ca_file.display(),
                cert_file.display(),
                key_file.display()
            ),
            server: Some(Arc::new(server)),
            client: Arc::new(client),
        })
    }

    /// [`Self::from_files`] for the three optional settings of a command
    /// line or the C API: all three give a configuration, none gives
    /// `None`, anything else is an error naming what is missing.
    pub fn from_options(
        ca_file: Option<&Path>,
        cert_file: Option<&Path>,
        key_file: Option<&Path>,
    ) -> Result<Option<TlsConfig>, TlsError> {
        match (ca_file, cert_file, key_file) {
            (None, None, None) => Ok(None),
            (Some(ca), Some(cert), Some(key)) => TlsConfig::from_files(ca, cert, key).map(Some),
            _ => {
                let missing: Vec<&str> = [
                    (ca_file, "CA file"),
                    (cert_file, "certificate file"),
                    (key_file, "key file"),
                ]
                .iter()
                .filter(|(p, _)| p.is_none())
                .map(|(_, n)| *n)
                .collect();
                Err(TlsError(format!(
                    "TLS needs a CA file, a certificate file and a key file together; \
                     missing: {}",
                    missing.join(", ")
                )))
            }
        }
    }

    /// A configuration from rustls configurations built elsewhere (another
    /// verifier, keys from memory). With `server` `None` it can only
    /// connect: a scheduler or worker given it fails to start.
    pub fn from_rustls(
        client: Arc<rustls::ClientConfig>,
        server: Option<Arc<rustls::ServerConfig>>,
    ) -> TlsConfig {
        TlsConfig {
            origin: "rustls configuration".into(),
            server,
            client,
        }
    }

    /// The server side, or an error if this configuration has none.
    pub fn server(&self) -> Result<&Arc<rustls::ServerConfig>, TlsError> {
        self.server.as_ref().ok_or_else(|| {
            TlsError(format!(
                "the TLS configuration ({}) has no server side",
                self.origin
            ))
        })
    }

    /// The client side.
    pub fn client(&self) -> &Arc<rustls::ClientConfig> {
        &self.client
    }

    /// Where it came from (file names), for logs.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

/// Verifies a server's certificate chain against the CA like rustls'
/// WebPKI verifier, and accepts a certificate that fails only because it
/// does not name the host connected to (see the module docs). Any other
/// failure (unknown issuer, expired, bad signature, wrong key usage) still
/// fails: WebPKI checks the name last, after the chain.
#[derive(Debug)]
pub struct ChainOnlyVerifier(Arc<WebPkiServerVerifier>);

impl ChainOnlyVerifier {
    /// A verifier trusting `roots` (with the `ring` provider).
    pub fn new(roots: Arc<RootCertStore>) -> Result<Arc<ChainOnlyVerifier>, TlsError> {
        let inner = WebPkiServerVerifier::builder_with_provider(roots, provider())
            .build()
            .map_err(|e| TlsError(e.to_string()))?;
        Ok(Arc::new(ChainOnlyVerifier(inner)))
    }
}

impl ServerCertVerifier for ChainOnlyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
