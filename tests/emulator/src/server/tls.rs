//! apid's TLS front door: mTLS against the cluster CA, the ClientAuth-only
//! rule Talos adds on top, and connections that die when the API is stopped.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Future;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime, pem::PemObject};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, Error as TlsError, RootCertStore,
    ServerConfig, SignatureScheme, client::danger::HandshakeSignatureValid,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::transport::server::{Connected, TcpConnectInfo, TlsConnectInfo};

use crate::pki::CertAndKey;

/// A client that cannot finish the handshake in this time is dropped, so a stalled
/// peer does not hold a handshake task forever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("reading {what} PEM: {source}")]
    Pem {
        what: &'static str,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("building TLS configuration: {0}")]
    Rustls(#[from] TlsError),
    #[error("building client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// Server TLS config for one node: its apid certificate, client certs required and
/// verified against `ca_pem`, ALPN `h2` as grpc-go servers insist on.
pub fn server_config(
    ca_pem: &str,
    server: &CertAndKey,
) -> Result<Arc<ServerConfig>, TlsSetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let cert = cert.map_err(|source| TlsSetupError::Pem {
            what: "CA certificate",
            source,
        })?;
        roots.add(cert)?;
    }
    let webpki =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build()?;
    let verifier = Arc::new(ClientAuthOnlyVerifier { inner: webpki });

    let chain = CertificateDer::pem_slice_iter(server.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsSetupError::Pem {
            what: "server certificate",
            source,
        })?;
    let key = PrivateKeyDer::from_pem_slice(server.key_pem_for_rustls().as_bytes()).map_err(
        |source| TlsSetupError::Pem {
            what: "server key",
            source,
        },
    )?;

    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// Talos (apid `verifyExtKeyUsage`) rejects client certificates whose extended key
/// usage is anything but exactly `[ClientAuth]`; webpki alone only checks inclusion.
#[derive(Debug)]
struct ClientAuthOnlyVerifier {
    inner: Arc<dyn ClientCertVerifier>,
}

fn has_only_client_auth(der: &[u8]) -> bool {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return false;
    };
    if cert.is_ca() {
        return true;
    }
    match cert.extended_key_usage() {
        Ok(Some(eku)) => {
            let eku = eku.value;
            eku.client_auth
                && !eku.any
                && !eku.server_auth
                && !eku.code_signing
                && !eku.email_protection
                && !eku.time_stamping
                && !eku.ocsp_signing
                && eku.other.is_empty()
        }
        _ => false,
    }
}

impl ClientCertVerifier for ClientAuthOnlyVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, TlsError> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let chain = std::iter::once(end_entity).chain(intermediates);
        for cert in chain {
            if !has_only_client_auth(cert) {
                return Err(TlsError::InvalidCertificate(
                    CertificateError::InvalidPurpose,
                ));
            }
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A TLS connection that fails with `ConnectionReset` once its node's API is stopped,
/// the way clients see a crashed apid, instead of draining politely.
pub struct KillableStream {
    inner: TlsStream<TcpStream>,
    stopped: Pin<Box<WaitForCancellationFutureOwned>>,
    dead: bool,
}

impl KillableStream {
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if !self.dead && self.stopped.as_mut().poll(cx).is_ready() {
            self.dead = true;
        }
        if self.dead {
            Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "node API stopped",
            ))
        } else {
            Ok(())
        }
    }
}

impl Connected for KillableStream {
    type ConnectInfo = TlsConnectInfo<TcpConnectInfo>;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

impl AsyncRead for KillableStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Err(err) = this.check(cx) {
            return Poll::Ready(Err(err));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Err(err) = this.check(cx) {
            return Poll::Ready(Err(err));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Err(err) = this.check(cx) {
            return Poll::Ready(Err(err));
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Binds the API port. `SO_REUSEADDR` lets a stopped API come back on the same
/// address at once even while old connections sit in TIME_WAIT.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Accepts connections until `stopped` fires, completing TLS handshakes off the
/// accept path; failed handshakes are logged and never reach the gRPC server.
pub fn accept_loop(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    stopped: CancellationToken,
) -> mpsc::Receiver<io::Result<KillableStream>> {
    let (tx, rx) = mpsc::channel(64);
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = stopped.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let (tcp, peer) = match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    tracing::warn!(%err, "accepting API connection failed");
                    continue;
                }
            };
            // Small gRPC frames would otherwise wait on Nagle + delayed ACK (~40 ms each).
            if let Err(err) = tcp.set_nodelay(true) {
                tracing::debug!(%peer, %err, "could not disable Nagle");
            }
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            let stopped = stopped.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        let stream = KillableStream {
                            inner: tls,
                            stopped: Box::pin(stopped.cancelled_owned()),
                            dead: false,
                        };
                        // The server may already be gone; then the connection just closes.
                        let _ = tx.send(Ok(stream)).await;
                    }
                    Ok(Err(err)) => tracing::debug!(%peer, %err, "TLS handshake refused"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
        // Dropping the listener here is what makes new connects fail with "connection refused".
        drop(listener);
    });
    rx
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, KeyPair};

    use super::has_only_client_auth;

    fn leaf_with(usages: Vec<ExtendedKeyUsagePurpose>) -> Vec<u8> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("key");
        let mut params = CertificateParams::default();
        params.extended_key_usages = usages;
        params.self_signed(&key).expect("cert").der().to_vec()
    }

    #[test]
    fn only_exact_client_auth_passes() {
        use ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
        assert!(has_only_client_auth(&leaf_with(vec![ClientAuth])));
        assert!(!has_only_client_auth(&leaf_with(vec![
            ClientAuth, ServerAuth
        ])));
        assert!(!has_only_client_auth(&leaf_with(vec![ServerAuth])));
        assert!(!has_only_client_auth(&leaf_with(Vec::new())));
    }
}
