//! TLS for the broker connection: rustls with the `ring` provider, a custom
//! CA (or the system's roots), an optional client certificate, and an
//! explicit opt-in to skip verification.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::config::{Invalid, MqttConfig};

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates of a PEM file; `key` names the setting in errors
/// (`mqtt.ca_file`).
fn read_certs(key: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, Invalid> {
    let bad = |m: String| Invalid::new(key, format!("{}: {m}", path.display()));
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(bad("no certificate in the file".into()));
    }
    Ok(certs)
}

/// The roots a server's certificate is verified against: the CA of
/// `ca_file` (the setting `ca_key` names it in errors), or the system's.
fn root_store(ca_key: &str, ca_file: Option<&Path>) -> Result<RootCertStore, Invalid> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            for cert in read_certs(ca_key, path)? {
                roots
                    .add(cert)
                    .map_err(|e| Invalid::new(ca_key, format!("{}: {e}", path.display())))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(Invalid::new(
                    ca_key,
                    format!(
                        "unset, and no trusted root certificates found on this system for TLS \
                         (install ca-certificates, or set {ca_key})"
                    ),
                ));
            }
        }
    }
    Ok(roots)
}

/// A rustls configuration (the `ring` provider) that verifies the server
/// against `ca_file` or the system's roots, with no client certificate:
/// the history's PostgreSQL (`ca_key` is `history.ca_file`).
pub fn verifying_config(ca_key: &str, ca_file: Option<&Path>) -> Result<ClientConfig, Invalid> {
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Invalid::new(ca_key, format!("TLS: {e}")))?
        .with_root_certificates(root_store(ca_key, ca_file)?)
        .with_no_client_auth())
}

/// The rustls configuration for `config` (only called for `mqtts://`).
pub fn client_config(config: &MqttConfig) -> Result<ClientConfig, Invalid> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Invalid::new("mqtt.url", format!("TLS: {e}")))?;
    let builder = if config.insecure_skip_verify {
        tracing::warn!("mqtt.insecure_skip_verify = true: the broker's certificate is NOT checked");
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider())))
    } else {
        builder.with_root_certificates(root_store("mqtt.ca_file", config.ca_file.as_deref())?)
    };
    match (&config.client_cert_file, &config.client_key_file) {
        (Some(cert), Some(key)) => {
            let chain = read_certs("mqtt.client_cert_file", cert)?;
            let bad_key = |m: String| Invalid::new("mqtt.client_key_file", format!("{}: {m}", key.display()));
            let key_bytes = std::fs::read(key).map_err(|e| bad_key(e.to_string()))?;
            let key =
                PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| bad_key(format!("no PEM private key: {e}")))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| Invalid::new("mqtt.client_cert_file", format!("with client_key_file: {e}")))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// Whether the server at `host:port` answers a TLS ClientHello with a TLS
/// record (a handshake or an alert): a port that speaks TLS. For the hint
/// when a plain `mqtt://` connection is reset. Blocking, within `timeout`.
pub fn speaks_tls(host: &str, port: u16, timeout: std::time::Duration) -> bool {
    use std::io::{Read, Write};
    use std::net::ToSocketAddrs;
    let Some(addr) = (host, port).to_socket_addrs().ok().and_then(|mut a| a.next()) else {
        return false;
    };
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&addr, timeout) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map(|b| {
            b.dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerification(provider())))
                .with_no_client_auth()
        });
    let Ok(config) = config else { return false };
    let name = ServerName::try_from(host.to_string()).unwrap_or_else(|_| ServerName::try_from("broker").unwrap());
    let Ok(mut conn) = rustls::ClientConnection::new(Arc::new(config), name) else {
        return false;
    };
    let mut hello = Vec::new();
    if conn.write_tls(&mut hello).is_err() || stream.write_all(&hello).is_err() {
        return false;
    }
    let mut first = [0u8; 1];
    // 0x16: handshake (ServerHello), 0x15: alert; both are TLS talking.
    matches!(stream.read(&mut first), Ok(1) if first[0] == 0x16 || first[0] == 0x15)
}

/// Accepts any certificate (signatures are still checked, so the
/// handshake is well-formed): `insecure_skip_verify`.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
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
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let c = MqttConfig {
            url: "mqtts://127.0.0.1".into(),
            ca_file: Some(dir.path().join("nope.pem")),
            ..MqttConfig::default()
        };
        let e = client_config(&c).unwrap_err();
        assert_eq!(e.key, "mqtt.ca_file");
        assert!(e.to_string().contains("nope.pem"), "{e}");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let c = MqttConfig {
            ca_file: Some(junk),
            ..c
        };
        let e = client_config(&c).unwrap_err();
        assert!(e.to_string().contains("no certificate"), "{e}");
    }

    #[test]
    fn skipping_verification_needs_no_ca() {
        let c = MqttConfig {
            url: "mqtts://127.0.0.1".into(),
            insecure_skip_verify: true,
            ..MqttConfig::default()
        };
        assert!(client_config(&c).is_ok());
    }
}
