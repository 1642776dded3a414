//! TLS on rustls: [`TlsConfig`] (PEM files and settings), [`TlsListener`] (handshakes run
//! beside the accept loop, bounded in number and time), and [`TlsReloadHandle`] (a new
//! certificate for new handshakes, with open connections left alone).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use asgi_core::ServerAddr;
use asgi_core::extensions::TlsInfo;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
    SupportedProtocolVersion,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::listener::{Listener, Peer};

/// Default of [`TlsConfig::handshake_timeout`]: 10 seconds. A real client finishes its
/// handshake in a few round trips; one that opens a socket and stalls is cut off then, so it
/// cannot hold a handshake slot for long.
pub const DEFAULT_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Default of [`TlsConfig::max_handshakes`]: 256 handshakes in flight at once. A handshake
/// costs a little CPU and a buffer; past this many, new connections wait in the kernel's
/// listen backlog until handshakes finish, so a flood of slow handshakes cannot take the
/// process's memory.
pub const DEFAULT_MAX_TLS_HANDSHAKES: usize = 256;

/// The protocols offered by ALPN, preferred first: HTTP/2 without prior knowledge, then
/// HTTP/1.1.
const ALPN_PROTOCOLS: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Whether clients must show a certificate signed by the client CA (mutual TLS), and what
/// happens to one whose certificate fails verification.
///
/// | mode | no certificate | a certificate that fails verification |
/// |---|---|---|
/// | [`Required`](ClientAuth::Required) | handshake fails | handshake fails |
/// | [`Optional`](ClientAuth::Optional) | let in | handshake fails |
/// | [`OptionalReportErrors`](ClientAuth::OptionalReportErrors) | let in | let in, with `client_cert_error` set |
///
/// In the first two modes a connection has a verified certificate or none, so the scope's
/// `client_cert_error` is always `None`. These are what Python's `ssl.CERT_REQUIRED` and
/// `ssl.CERT_OPTIONAL` (under uvicorn, hypercorn) and nginx's `ssl_verify_client on` do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAuth {
    /// A client without a valid certificate fails the handshake.
    Required,
    /// A client may send no certificate (the scope's `client_cert_chain` is then empty); one
    /// that sends a certificate the CA did not sign, an expired one or a malformed one still
    /// fails the handshake.
    Optional,
    /// A client may send no certificate, or one that fails verification: the handshake goes
    /// on, and the scope's `client_cert_error` says why the certificate was not trusted
    /// (`client_cert_chain` and `client_cert_name` still show what the client sent). For a
    /// page that tells a person what is wrong with their certificate, as nginx's
    /// `ssl_verify_client optional_no_ca` with `$ssl_client_verify` allows.
    ///
    /// The client must still prove it holds the certificate's private key (the handshake's
    /// signature is checked as in the other modes): what is not established is that the
    /// CA vouches for it. An app that authenticates by certificate in this mode must check
    /// that `client_cert_error` is `None` before it trusts `client_cert_name`.
    OptionalReportErrors,
}

/// The oldest TLS version the server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsVersion {
    /// TLS 1.2 and 1.3.
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

/// The TLS settings: the certificate chain and key (PEM files), optional client
/// certificates, the oldest protocol version, and the handshake bounds.
///
/// Files are read when the server starts (a bad file makes
/// [`Server::serve`](super::Server::serve) fail before it binds), and again on every reload.
///
/// # Example
///
/// ```no_run
/// use std::time::Duration;
/// use asgi_http::server::{ClientAuth, Server, TlsConfig, TlsVersion};
///
/// let tls = TlsConfig::new("/etc/app/cert.pem", "/etc/app/key.pem")
///     .client_ca("/etc/app/clients-ca.pem", ClientAuth::Required)
///     .min_version(TlsVersion::Tls13)
///     .handshake_timeout(Some(Duration::from_secs(5)));
/// let builder = Server::builder().bind("0.0.0.0:8443".parse().unwrap()).tls(tls);
/// ```
#[derive(Debug, Clone)]
pub struct TlsConfig {
    cert: PathBuf,
    key: PathBuf,
    client_ca: Option<(PathBuf, ClientAuth)>,
    min_version: TlsVersion,
    handshake_timeout: Option<Duration>,
    max_handshakes: usize,
}

impl TlsConfig {
    /// TLS with the certificate chain in `cert` (PEM, the server's certificate first, then
    /// intermediates) and its private key in `key` (PEM: PKCS#8, PKCS#1 or SEC1); no client
    /// certificates, TLS 1.2 and 1.3.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        TlsConfig {
            cert: cert.into(),
            key: key.into(),
            client_ca: None,
            min_version: TlsVersion::Tls12,
            handshake_timeout: Some(DEFAULT_TLS_HANDSHAKE_TIMEOUT),
            max_handshakes: DEFAULT_MAX_TLS_HANDSHAKES,
        }
    }

    /// Asks clients for certificates signed by a CA in `path` (PEM): mutual TLS.
    ///
    /// Default is no client certificates.
    pub fn client_ca(mut self, path: impl Into<PathBuf>, auth: ClientAuth) -> Self {
        self.client_ca = Some((path.into(), auth));
        self
    }

    /// The oldest TLS version accepted.
    ///
    /// Default is TLS 1.2 ([`TlsVersion::Tls12`]).
    pub fn min_version(mut self, version: TlsVersion) -> Self {
        self.min_version = version;
        self
    }

    /// How long a client may take to finish its handshake; the connection is closed then.
    ///
    /// Default is 10 seconds ([`DEFAULT_TLS_HANDSHAKE_TIMEOUT`]). Pass `None` to disable
    /// (then only [`max_handshakes`](TlsConfig::max_handshakes) bounds stalled handshakes).
    pub fn handshake_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The most handshakes in flight at once; more connections wait in the listen backlog.
    /// At least 1.
    ///
    /// Default is 256 ([`DEFAULT_MAX_TLS_HANDSHAKES`]).
    pub fn max_handshakes(mut self, max: usize) -> Self {
        self.max_handshakes = max.max(1);
        self
    }

    /// Reads the files and builds the rustls configuration.
    fn load(&self) -> Result<Loaded, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain = read_certs(&self.cert)?;
        let key = PrivateKeyDer::from_pem_file(&self.key).map_err(|e| {
            TlsError::new(
                format!("cannot read the private key {}", self.key.display()),
                e,
            )
        })?;
        let versions: &[&'static SupportedProtocolVersion] = match self.min_version {
            TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
            TlsVersion::Tls13 => &[&rustls::version::TLS13],
        };
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(|e| TlsError::new("unsupported TLS versions".to_owned(), e))?;
        let (builder, report_errors) = match &self.client_ca {
            None => (builder.with_no_client_auth(), None),
            Some((path, auth)) => {
                let verifier = client_verifier(path, *auth, &provider)?;
                match auth {
                    ClientAuth::OptionalReportErrors => (
                        builder.with_client_cert_verifier(Arc::new(ReportErrors {
                            verifier: verifier.clone(),
                        })),
                        Some(verifier),
                    ),
                    _ => (builder.with_client_cert_verifier(verifier), None),
                }
            }
        };
        let server_cert = chain.first().map(|cert| pem("CERTIFICATE", cert));
        let mut config = builder.with_single_cert(chain, key).map_err(|e| {
            TlsError::new(
                format!(
                    "the certificate {} and key {} do not make a usable pair",
                    self.cert.display(),
                    self.key.display()
                ),
                e,
            )
        })?;
        config.alpn_protocols = ALPN_PROTOCOLS.iter().map(|p| p.to_vec()).collect();
        Ok(Loaded {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            server_cert,
            report_errors,
        })
    }
}

fn client_verifier(
    path: &Path,
    auth: ClientAuth,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(path)? {
        roots.add(cert).map_err(|e| {
            TlsError::new(
                format!("a client CA certificate in {} is invalid", path.display()),
                e,
            )
        })?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    let verifier = match auth {
        ClientAuth::Required => verifier,
        ClientAuth::Optional | ClientAuth::OptionalReportErrors => verifier.allow_unauthenticated(),
    };
    verifier
        .build()
        .map_err(|e| TlsError::new(format!("cannot use the client CA {}", path.display()), e))
}

/// The verifier of [`ClientAuth::OptionalReportErrors`]: lets a client certificate that
/// `verifier` refuses through the handshake. Everything else is `verifier`'s: the CA names
/// offered to clients, the signature schemes, and the check of the handshake's signature,
/// which proves the client holds the certificate's key.
///
/// rustls gives a verifier no handle on the connection, so a failure's reason could not reach
/// the connection's scope from here: [`tls_info`] verifies the chain with `verifier` once the
/// handshake is done, and writes the reason into `client_cert_error`.
#[derive(Debug)]
struct ReportErrors {
    verifier: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for ReportErrors {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.verifier.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Accepted for the handshake whatever the CA says: `tls_info` verifies the chain and
        // reports a failure.
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.verifier.supported_verify_schemes()
    }
}

/// Every certificate of a PEM file; none at all is an error.
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let context = || format!("cannot read certificates from {}", path.display());
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| TlsError::new(context(), e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::new(context(), e))?;
    if certs.is_empty() {
        return Err(TlsError::new(
            context(),
            io::Error::new(io::ErrorKind::InvalidData, "no certificate in the file"),
        ));
    }
    Ok(certs)
}

/// A DER object in PEM form, as the ASGI TLS extension gives certificates.
fn pem(label: &str, der: &[u8]) -> String {
    let base64 = data_encoding::BASE64.encode(der);
    let mut out = String::with_capacity(base64.len() + base64.len() / 64 + 64);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    // PEM lines are 64 characters (RFC 7468); base64 is ASCII, so byte chunks are chars.
    for line in base64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// The configuration new handshakes use.
struct Loaded {
    acceptor: TlsAcceptor,
    /// The server's certificate in PEM, for the scopes' `server_cert`.
    server_cert: Option<String>,
    /// Under [`ClientAuth::OptionalReportErrors`], the CA's verifier, to say why a client
    /// certificate let through the handshake is not trusted.
    report_errors: Option<Arc<dyn ClientCertVerifier>>,
}

/// Why TLS could not be set up: a certificate, key or CA file that is missing, unreadable,
/// or not usable. The message names the file.
#[derive(Debug)]
pub struct TlsError {
    context: String,
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl TlsError {
    fn new(context: String, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        TlsError {
            context,
            source: source.into(),
        }
    }
}

impl TlsError {
    pub(crate) fn not_configured() -> Self {
        TlsError::new(
            "cannot reload TLS".to_owned(),
            "the server has no TLS settings, or has not loaded them yet",
        )
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.context, self.source)
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// Reloads a [`TlsListener`]'s certificate, key and client CA from their files: handshakes
/// that start afterwards use the new ones, connections already open go on with theirs.
///
/// Cheap to clone. [`ServerHandle::reload_tls`](super::ServerHandle::reload_tls) and SIGHUP
/// use it for a server built with [`Builder::tls`](super::Builder::tls).
#[derive(Clone)]
pub struct TlsReloadHandle {
    config: Arc<TlsConfig>,
    current: Arc<RwLock<Arc<Loaded>>>,
}

impl fmt::Debug for TlsReloadHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsReloadHandle")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl TlsReloadHandle {
    /// Reads the files again and, if they are good, uses them for new handshakes.
    ///
    /// # Errors
    ///
    /// When a file is missing or bad: the certificate in use stays, and the error is logged
    /// too.
    pub fn reload(&self) -> Result<(), TlsError> {
        match self.config.load() {
            Ok(loaded) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(loaded);
                tracing::info!(cert = %self.config.cert.display(), "TLS certificate reloaded");
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "TLS reload failed: keeping the certificate in use");
                Err(e)
            }
        }
    }

    /// Reads the files of `config` once, for listeners and reloads to share.
    pub(crate) fn load(config: &TlsConfig) -> Result<TlsReloadHandle, TlsError> {
        let loaded = config.load()?;
        Ok(TlsReloadHandle {
            config: Arc::new(config.clone()),
            current: Arc::new(RwLock::new(Arc::new(loaded))),
        })
    }

    fn current(&self) -> Arc<Loaded> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// A count of failed TLS handshakes (plaintext to the TLS port, an unknown CA, a timeout):
/// each one closed its connection and was logged at DEBUG level.
#[derive(Debug, Clone, Default)]
pub struct HandshakeFailures(Arc<AtomicU64>);

impl HandshakeFailures {
    /// How many handshakes failed so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A [`Listener`] that runs a TLS handshake on each connection of another one and yields only
/// connections whose handshake finished.
///
/// Handshakes run concurrently in tasks of their own, at most
/// [`max_handshakes`](TlsConfig::max_handshakes) at once, each cut off after the
/// [`handshake_timeout`](TlsConfig::handshake_timeout): a slow or silent client never delays
/// another's. A failed handshake closes its connection, is logged at DEBUG level and counted
/// ([`handshake_failures`](TlsListener::handshake_failures)). ALPN offers `h2` and
/// `http/1.1`. Accepted connections are [`Peer::secure`] (scheme `https`/`wss`) and carry
/// the ASGI TLS extension's data.
///
/// [`Builder::tls`](super::Builder::tls) wraps the server's own listener in one; build one
/// yourself to put TLS over a listener of yours.
///
/// # Example
///
/// ```no_run
/// use asgi_http::server::{Server, TlsConfig, TlsListener};
/// # async fn app(_: asgi_core::Scope, _: asgi_core::Receiver, _: asgi_core::Sender) -> Result<(), asgi_core::Error> { Ok(()) }
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let tcp = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
/// let tls = TlsListener::new(tcp, &TlsConfig::new("cert.pem", "key.pem"))?;
/// let reload = tls.reload_handle();
/// Server::builder().listener(tls).serve(app).await?;
/// # Ok(()) }
/// ```
///
/// # Cancel safety
///
/// `accept` is cancel safe when the inner listener's is: a handshake in flight goes on in its
/// task and is yielded by a later call.
pub struct TlsListener<L: Listener> {
    inner: L,
    reload: TlsReloadHandle,
    handshakes: JoinSet<Option<(TlsStream<L::Io>, Peer)>>,
    timeout: Option<Duration>,
    max_handshakes: usize,
    failures: HandshakeFailures,
}

impl<L: Listener> fmt::Debug for TlsListener<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsListener")
            .field("handshakes", &self.handshakes.len())
            .field("timeout", &self.timeout)
            .field("max_handshakes", &self.max_handshakes)
            .field("failures", &self.failures.get())
            .finish_non_exhaustive()
    }
}

impl<L: Listener> TlsListener<L> {
    /// TLS over `inner`, with the files and settings of `config` (read now).
    ///
    /// # Errors
    ///
    /// When a certificate, key or CA file is missing or unusable.
    pub fn new(inner: L, config: &TlsConfig) -> Result<Self, TlsError> {
        Ok(TlsListener::with_handle(
            inner,
            TlsReloadHandle::load(config)?,
            HandshakeFailures::default(),
        ))
    }

    /// TLS over `inner` with files already loaded, counting failures into `failures`.
    pub(crate) fn with_handle(
        inner: L,
        reload: TlsReloadHandle,
        failures: HandshakeFailures,
    ) -> Self {
        TlsListener {
            inner,
            timeout: reload.config.handshake_timeout,
            max_handshakes: reload.config.max_handshakes.max(1),
            reload,
            handshakes: JoinSet::new(),
            failures,
        }
    }

    /// A handle that reloads the certificate files.
    pub fn reload_handle(&self) -> TlsReloadHandle {
        self.reload.clone()
    }

    /// The count of failed handshakes, readable after the listener moved into the server.
    pub fn handshake_failures(&self) -> HandshakeFailures {
        self.failures.clone()
    }

    /// The inner listener.
    pub fn get_ref(&self) -> &L {
        &self.inner
    }
}

impl<L: Listener> Listener for TlsListener<L> {
    type Io = TlsStream<L::Io>;

    async fn accept(&mut self) -> io::Result<(Self::Io, Peer)> {
        loop {
            let room = self.handshakes.len() < self.max_handshakes;
            tokio::select! {
                Some(done) = self.handshakes.join_next(), if !self.handshakes.is_empty() => {
                    match done {
                        Ok(Some(connection)) => return Ok(connection),
                        // Failed: the task logged and counted it.
                        Ok(None) => {}
                        Err(e) => tracing::debug!(error = %e, "a TLS handshake task ended"),
                    }
                }
                accepted = self.inner.accept(), if room => {
                    let (io, peer) = accepted?;
                    let loaded = self.reload.current();
                    self.handshakes.spawn(handshake(
                        io,
                        peer,
                        loaded,
                        self.timeout,
                        self.failures.clone(),
                    ));
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<ServerAddr> {
        self.inner.local_addr()
    }
}

/// A listener with its types erased (its stream boxed), for the server to put TLS over a
/// listener it only knows as an accept loop. One allocation per connection, next to a TLS
/// handshake's many.
pub(crate) struct ErasedListener {
    inner: Box<dyn DynListener>,
}

impl ErasedListener {
    pub(crate) fn new(listener: impl Listener) -> Self {
        ErasedListener {
            inner: Box::new(listener),
        }
    }
}

/// A stream of any type.
pub(crate) trait Stream:
    tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send
{
}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}

type AcceptFuture<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = io::Result<(Box<dyn Stream>, Peer)>> + Send + 'a>,
>;

/// [`Listener`] in an object-safe form.
trait DynListener: Send + 'static {
    fn accept(&mut self) -> AcceptFuture<'_>;
    fn local_addr(&self) -> io::Result<ServerAddr>;
}

impl<L: Listener> DynListener for L {
    fn accept(&mut self) -> AcceptFuture<'_> {
        Box::pin(async move {
            let (io, peer) = Listener::accept(self).await?;
            Ok((Box::new(io) as Box<dyn Stream>, peer))
        })
    }

    fn local_addr(&self) -> io::Result<ServerAddr> {
        Listener::local_addr(self)
    }
}

impl Listener for ErasedListener {
    type Io = Box<dyn Stream>;

    fn accept(&mut self) -> impl std::future::Future<Output = io::Result<(Self::Io, Peer)>> + Send {
        self.inner.accept()
    }

    fn local_addr(&self) -> io::Result<ServerAddr> {
        self.inner.local_addr()
    }
}

/// One handshake, bounded by `timeout`: the connection and its peer (secure, with the TLS
/// extension's data), or `None` once the failure is logged and counted.
async fn handshake<Io>(
    io: Io,
    peer: Peer,
    loaded: Arc<Loaded>,
    timeout: Option<Duration>,
    failures: HandshakeFailures,
) -> Option<(TlsStream<Io>, Peer)>
where
    Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let accept = loaded.acceptor.accept(io);
    let result = match timeout {
        Some(timeout) => tokio::time::timeout(timeout, accept)
            .await
            .unwrap_or_else(|_| {
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "handshake timed out",
                ))
            }),
        None => accept.await,
    };
    match result {
        Ok(stream) => {
            let info = tls_info(&stream, &loaded);
            let mut peer = peer.secure(true);
            peer.tls = Some(Arc::new(info));
            Some((stream, peer))
        }
        Err(e) => {
            failures.0.fetch_add(1, Ordering::Relaxed);
            let client = peer.client.map(|addr| addr.to_string());
            tracing::debug!(client = client.as_deref().unwrap_or("unix"), error = %e, "TLS handshake failed");
            None
        }
    }
}

/// The ASGI TLS extension's data for an established connection.
fn tls_info<Io>(stream: &TlsStream<Io>, loaded: &Loaded) -> TlsInfo {
    let (_, connection) = stream.get_ref();
    let chain = connection.peer_certificates().unwrap_or_default();
    let mut info = TlsInfo::default();
    info.server_cert = loaded.server_cert.clone();
    info.client_cert_chain = chain.iter().map(|cert| pem("CERTIFICATE", cert)).collect();
    info.client_cert_name = chain.first().and_then(|cert| subject_name(cert));
    // Under `Required` and `Optional`, rustls fails the handshake on a certificate it cannot
    // verify: a connection that got this far has a verified certificate, or none. Under
    // `OptionalReportErrors` the certificate is verified here.
    info.client_cert_error = match (&loaded.report_errors, chain.split_first()) {
        (Some(verifier), Some((end_entity, intermediates))) => verifier
            .verify_client_cert(end_entity, intermediates, UnixTime::now())
            .err()
            .map(|e| e.to_string()),
        _ => None,
    };
    info.tls_version = connection.protocol_version().map(u16::from);
    info.cipher_suite = connection
        .negotiated_cipher_suite()
        .map(|suite| u16::from(suite.suite()));
    info
}

/// The certificate's subject as an RFC 4514 string (`CN=alice,O=Example`).
fn subject_name(der: &CertificateDer<'_>) -> Option<String> {
    use x509_cert::der::Decode;
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    Some(cert.tbs_certificate.subject.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_wraps_base64_at_64_columns() {
        let text = pem("CERTIFICATE", &[0u8; 100]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "-----BEGIN CERTIFICATE-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines.last(), Some(&"-----END CERTIFICATE-----"));
        let body: String = lines[1..lines.len() - 1].concat();
        assert_eq!(
            data_encoding::BASE64.decode(body.as_bytes()).unwrap(),
            vec![0u8; 100]
        );
    }

    #[test]
    fn missing_files_are_named_in_the_error() {
        let err = TlsConfig::new("/nonexistent/cert.pem", "/nonexistent/key.pem")
            .load()
            .err()
            .unwrap();
        assert!(err.to_string().contains("/nonexistent/cert.pem"), "{err}");
    }
}
