//! The listener: bind, accept (at most `max_connections` at once), TLS handshake (bounded by the
//! header-read timeout), serve HTTP/1.1 or HTTP/2 (hyper-util's auto builder), close connections
//! idle for `idle_timeout` (no request in progress: keep-alive, PINGs only, or nothing at all after
//! the handshake, so idle connections cannot hold every slot), and shut down gracefully: stop
//! accepting, let in-flight requests finish within a grace period, then drop the remaining
//! connections. Handler tasks are never aborted; the gateway awaits them.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use super::config::{Limits, ServerConfig, Transport};
use super::health::Readiness;
use super::router::{self, Shared};
use super::tls::{self, PeerIdentity, ServerTlsError};
use crate::payment::Pipeline;
use crate::scheme::InFlight;
use crate::scheme::native::auth::AuthConfigError;
use crate::scheme::{Scheme, native};
use crate::tls::pki::Pki;

/// The server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Plaintext asked for on an address that is not loopback.
    #[error(
        "refusing plaintext HTTP on {0}: plaintext is allowed only on a loopback address \
         (127.0.0.0/8 or ::1); configure TLS for anything else"
    )]
    PlaintextNotLoopback(SocketAddr),
    /// Binding failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// TLS material unusable.
    #[error("TLS: {0}")]
    Tls(#[from] ServerTlsError),
    /// The schemes cannot be served together.
    #[error("schemes: {0}")]
    Schemes(String),
    /// Authentication settings unusable.
    #[error("authentication: {0}")]
    Auth(#[from] AuthConfigError),
    /// A limit is out of range.
    #[error("limits: {0}")]
    Limits(String),
}

/// What a graceful shutdown achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Every connection finished its in-flight requests within the grace period.
    pub drained: bool,
    /// Connections dropped at the end of the grace period.
    pub connections_dropped: usize,
    /// Handler tasks still running (they go on; await [`RunningServer::handlers`]).
    pub handlers_running: usize,
}

/// A started server. Keep it for as long as the server should run: dropping it stops accepting and
/// closes connections gracefully, without waiting (use [`RunningServer::shutdown`] to wait).
pub struct RunningServer {
    local_addr: SocketAddr,
    generated: Option<Pki>,
    stop: watch::Sender<bool>,
    accept: JoinHandle<JoinSet<()>>,
    handlers: InFlight,
    connections: InFlight,
    schemes: Vec<Arc<dyn Scheme>>,
}

impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer")
            .field("local_addr", &self.local_addr)
            .field("connections", &self.connections.count())
            .field("handlers", &self.handlers.count())
            .finish()
    }
}

fn check(limits: &Limits) -> Result<(), ServerError> {
    let bad = |s: &str| Err(ServerError::Limits(s.to_owned()));
    if limits.max_header_bytes < 8192 {
        return bad("max_header_bytes must be at least 8192");
    }
    if u32::try_from(limits.max_header_bytes).is_err() {
        return bad("max_header_bytes must fit in 32 bits");
    }
    if limits.max_headers == 0 || limits.max_connections == 0 || limits.max_concurrent_streams == 0
    {
        return bad("max_headers, max_connections and max_concurrent_streams must be at least 1");
    }
    if limits.max_body_bytes == 0 {
        return bad("max_body_bytes must be at least 1");
    }
    let day = Duration::from_secs(86_400);
    for t in [
        limits.request_timeout,
        limits.header_read_timeout,
        limits.idle_timeout,
    ] {
        if t.is_zero() || t > day {
            return bad("timeouts must be positive and at most a day");
        }
    }
    Ok(())
}

/// Options of [`RunningServer::start_with_options`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ServeOptions {
    /// Serve `GET /metrics` (Prometheus text) on this listener. Off by default: a deployment
    /// serves metrics on its operator listener (`[operator] listen`), not to wallets.
    pub metrics: bool,
}

impl RunningServer {
    /// Binds and starts serving `api` in the native scheme (Wallet API v1) only. Plaintext only
    /// on loopback; TLS 1.3 otherwise.
    pub async fn start<A: Pipeline>(
        config: ServerConfig,
        api: Arc<A>,
        readiness: Readiness,
    ) -> Result<RunningServer, ServerError> {
        RunningServer::start_with_schemes(config, Vec::new(), api, readiness).await
    }

    /// Binds and starts serving `api` in the native scheme (built from `config.auth`, unless
    /// `schemes` holds one) and in each of `schemes` (wallet schemes from the registry). Prefixes
    /// must not overlap.
    pub async fn start_with_schemes<A: Pipeline>(
        config: ServerConfig,
        schemes: Vec<Arc<dyn Scheme>>,
        api: Arc<A>,
        readiness: Readiness,
    ) -> Result<RunningServer, ServerError> {
        RunningServer::start_with_options(config, schemes, api, readiness, ServeOptions::default())
            .await
    }

    /// [`RunningServer::start_with_schemes`], with options (e.g. `GET /metrics` on this listener).
    pub async fn start_with_options<A: Pipeline>(
        config: ServerConfig,
        schemes: Vec<Arc<dyn Scheme>>,
        api: Arc<A>,
        readiness: Readiness,
        options: ServeOptions,
    ) -> Result<RunningServer, ServerError> {
        check(&config.limits)?;
        // A native scheme in `schemes` replaces the one built from `config.auth`.
        let mut all: Vec<Arc<dyn Scheme>> = Vec::new();
        if !schemes.iter().any(|s| s.name() == native::NAME) {
            all.push(native::shared(config.auth.clone())?);
        }
        for s in schemes {
            if let Some(other) = all
                .iter()
                .find(|o| o.prefix().starts_with(s.prefix()) || s.prefix().starts_with(o.prefix()))
            {
                return Err(ServerError::Schemes(format!(
                    "scheme {} (prefix {}) overlaps scheme {} (prefix {})",
                    s.name(),
                    s.prefix(),
                    other.name(),
                    other.prefix()
                )));
            }
            all.push(s);
        }
        let (acceptor, generated, clients) = match &config.transport {
            Transport::PlaintextLoopback => {
                if !config.listen.ip().is_loopback() {
                    return Err(ServerError::PlaintextNotLoopback(config.listen));
                }
                (None, None, None)
            }
            Transport::Tls(settings) => {
                let built = tls::build(settings)?;
                (
                    Some(TlsAcceptor::from(built.config)),
                    built.generated,
                    built.clients,
                )
            }
        };
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServerError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;

        let (stop, stopping) = watch::channel(false);
        let handlers = InFlight::new();
        let connections = InFlight::new();
        let limits = config.limits;
        let served = all.clone();
        let shared = Arc::new(Shared {
            api,
            schemes: all,
            limits,
            readiness,
            stopping: stopping.clone(),
            handlers: handlers.clone(),
            serve_metrics: options.metrics,
        });
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_buf_size(limits.max_header_bytes)
            .max_headers(limits.max_headers);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
            .max_concurrent_streams(limits.max_concurrent_streams)
            .keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10));
        let accept = tokio::spawn(accept_loop(AcceptState {
            listener,
            acceptor,
            clients: clients.map(Arc::new),
            shared,
            builder: Arc::new(builder),
            stopping,
            slots: Arc::new(Semaphore::new(limits.max_connections)),
            connections: connections.clone(),
            handshake_timeout: limits.header_read_timeout,
            idle_timeout: limits.idle_timeout,
        }));
        Ok(RunningServer {
            local_addr,
            generated,
            stop,
            accept,
            handlers,
            connections,
            schemes: served,
        })
    }

    /// The schemes served, the native one first (for the notification deliverer).
    pub fn schemes(&self) -> Vec<Arc<dyn Scheme>> {
        self.schemes.clone()
    }

    /// The bound address (the real port when `:0` was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The private CA and certificates generated at start when TLS had no configured identity
    /// (`ca_cert` is what clients must trust).
    pub fn generated_pki(&self) -> Option<&Pki> {
        self.generated.as_ref()
    }

    /// Handler tasks in flight. After [`RunningServer::shutdown`], the gateway awaits
    /// `handlers().wait_idle()` before closing its journal.
    pub fn handlers(&self) -> InFlight {
        self.handlers.clone()
    }

    /// Open connections now.
    pub fn open_connections(&self) -> usize {
        self.connections.count()
    }

    /// Stops accepting, asks every connection to finish (HTTP/1.1: after the current response;
    /// HTTP/2: GOAWAY, open streams complete), waits up to `grace`, then drops what is left.
    pub async fn shutdown(self, grace: Duration) -> ShutdownReport {
        let _ = self.stop.send(true);
        let mut tasks = self.accept.await.unwrap_or_default();
        let drained =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} })
                .await
                .is_ok();
        let connections_dropped = tasks.len();
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        ShutdownReport {
            drained,
            connections_dropped,
            handlers_running: self.handlers.count(),
        }
    }
}

/// Decrements the open-connections gauge when the connection's task ends.
struct OpenConnection(prometheus_client::metrics::gauge::Gauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

struct AcceptState<A> {
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    clients: Option<Arc<std::collections::BTreeMap<String, String>>>,
    shared: Arc<Shared<A>>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    stopping: watch::Receiver<bool>,
    slots: Arc<Semaphore>,
    connections: InFlight,
    handshake_timeout: Duration,
    idle_timeout: Duration,
}

async fn accept_loop<A: Pipeline>(mut s: AcceptState<A>) -> JoinSet<()> {
    let mut tasks = JoinSet::new();
    loop {
        while tasks.try_join_next().is_some() {}
        let permit = tokio::select! {
            () = stopped(&mut s.stopping) => break,
            p = s.slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let (tcp, _peer) = tokio::select! {
            () = stopped(&mut s.stopping) => break,
            r = s.listener.accept() => match r {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    // EMFILE and friends: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let shared = s.shared.clone();
        let builder = s.builder.clone();
        let stopping = s.stopping.clone();
        let counted = s.connections.enter();
        let acceptor = s.acceptor.clone();
        let clients = s.clients.clone();
        let handshake_timeout = s.handshake_timeout;
        let idle = s.idle_timeout;
        let open = crate::telemetry::metrics::global().open_connections.clone();
        open.inc();
        tasks.spawn(async move {
            let _slot = permit;
            let _counted = counted;
            let _open = OpenConnection(open);
            match acceptor {
                None => {
                    serve(
                        TokioIo::new(tcp),
                        PeerIdentity::None,
                        shared,
                        builder,
                        stopping,
                        idle,
                    )
                    .await
                }
                Some(acceptor) => {
                    let tls =
                        match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                            Ok(Ok(tls)) => tls,
                            Ok(Err(e)) => {
                                tracing::debug!("TLS handshake refused: {e}");
                                return;
                            }
                            Err(_) => return,
                        };
                    let peer =
                        tls::peer_identity(clients.as_deref(), tls.get_ref().1.peer_certificates());
                    serve(TokioIo::new(tls), peer, shared, builder, stopping, idle).await;
                }
            }
        });
    }
    tasks
}

/// How long a connection asked to close (GOAWAY for HTTP/2) may take before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Requests in progress on one connection and when the last one ended.
struct Activity {
    opened: Instant,
    busy: AtomicUsize,
    /// Milliseconds after `opened` when the last request ended (0: none yet).
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Arc<Activity> {
        Arc::new(Activity {
            opened: Instant::now(),
            busy: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
        })
    }

    fn start(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::AcqRel);
        Busy(self.clone())
    }

    /// When the connection becomes idle for `idle`, or `None` while a request is in progress.
    fn idle_at(&self, idle: Duration) -> Option<Instant> {
        if self.busy.load(Ordering::Acquire) > 0 {
            return None;
        }
        let last = Duration::from_millis(self.last_ms.load(Ordering::Acquire));
        Some(self.opened + last + idle)
    }
}

/// A request in progress; its end is the connection's latest activity.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        let ms = u64::try_from(self.0.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.last_ms.fetch_max(ms, Ordering::AcqRel);
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn serve<A, I>(
    io: TokioIo<I>,
    peer: PeerIdentity,
    shared: Arc<Shared<A>>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    mut stopping: watch::Receiver<bool>,
    idle: Duration,
) where
    A: Pipeline,
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let peer = Arc::new(peer);
    let activity = Activity::new();
    let seen = activity.clone();
    let service = service_fn(move |req| {
        let shared = shared.clone();
        let peer = peer.clone();
        let busy = seen.start();
        async move {
            let response = router::handle(shared, peer, req).await;
            drop(busy);
            Ok::<_, Infallible>(response)
        }
    });
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    // Checked at most every second of `idle` (and when the last request would make it idle).
    let mut check = Instant::now() + idle;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!("connection: {e}");
                }
                return;
            }
            () = stopped(&mut stopping) => {
                conn.as_mut().graceful_shutdown();
                if let Err(e) = conn.await {
                    tracing::debug!("connection during shutdown: {e}");
                }
                return;
            }
            () = tokio::time::sleep_until(check) => {
                let now = Instant::now();
                match activity.idle_at(idle) {
                    Some(at) if at <= now => {
                        tracing::debug!("connection idle for {idle:?}: closing");
                        conn.as_mut().graceful_shutdown();
                        match tokio::time::timeout(CLOSE_GRACE, conn.as_mut()).await {
                            Ok(Err(e)) => tracing::debug!("closing an idle connection: {e}"),
                            Ok(Ok(())) => {}
                            Err(_) => tracing::debug!("idle connection dropped after {CLOSE_GRACE:?}"),
                        }
                        return;
                    }
                    Some(at) => check = at,
                    None => check = now + idle,
                }
            }
        }
    }
}

/// Resolves once shutdown was asked for (the watch guard is dropped before returning).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    if rx.wait_for(|stop| *stop).await.is_err() {
        // The sender is gone: the server handle was dropped, which also means stop.
    }
}
