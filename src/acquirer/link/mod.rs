//! The link to the domestic acquirer: a pool of [`LinkConfig::links`] persistent TLS 1.3
//! connections with mutual TLS (one by default) to the same endpoint, under one DE32 / DE41 and one
//! STAN sequence; many requests in flight on each, each matched to its caller by STAN + DE7 + DE41
//! (and the response MTI) on the connection that sent it.
//!
//! * Each connection on its own: connect → sign-on (0800, DE70 = 001) before any request; echo
//!   (0800, DE70 = 301) when it has been idle; reconnect with exponential backoff after any failure.
//! * An authorisation goes to a signed-on connection with the fewest requests waiting (ties taken
//!   in turn); a connection that is down is skipped; only when none is signed on is it refused
//!   (`NotConnected`, nothing sent). The link is ready while at least one connection is.
//! * Reversals (0400 / 0401) go out on any signed-on connection of the pool, so a reversal is never
//!   held behind a dead connection while another is up.
//! * A response that matches nothing waiting is logged and dropped, never handed to another caller.
//! * The acquirer may originate too, on any connection: an 0800 echo (answered 0810) and refund
//!   advices (0220 / 0221, `acquirer::advice`), handed to the installed [`AdviceHandler`] and
//!   answered 0230 with its decision on the connection they came on, at most
//!   [`MAX_ADVICES_IN_FLIGHT`] at once per link (pool), each within [`Timers::request`].
//! * STAN unique per DE32 / DE41 per UTC day across every connection of the pool, and across
//!   restarts too (blocks reserved in the store, `stan.rs`).
//! * [`Link::authorise`] has a deadline. If nothing was sent, the caller gets a [`LinkError`] (nothing
//!   reached the acquirer). Once bytes may have reached the acquirer, every failure (deadline,
//!   connection lost, an unusable answer) gives [`Outcome::Unknown`] and a reversal is queued in the
//!   [`ReversalStore`] and driven to a 0410 or to manual review (`saf.rs`). Never a blind resend.
//!
//! This module and the simulator are the only places in `acquirer/` doing I/O.

mod conn;
mod saf;
mod stan;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::advice::AdviceHandler;
use super::frame::{DEFAULT_MAX_FRAME, FrameError, Framing};
use super::iso8583::{self, CodecError, Message, Mti, Spec};
use super::message::{
    self, Answer, Approval, Decline, MessageError, Purchase, ReversalReason, Stan, Terminal, Trace,
};
use super::reversal::{
    NewReversal, RetryPolicy, ReversalId, ReversalRecord, ReversalStore, StoreError,
};
use crate::time::fields as clock;

/// At most this many acquirer advices are handled at once per link (all its connections); more
/// are left unanswered (the acquirer repeats them) and counted.
pub const MAX_ADVICES_IN_FLIGHT: usize = 64;

/// The most connections one link (pool) may hold.
pub const MAX_LINKS: usize = 16;

/// Timers of the link (see `spec/acquirer-iso8583.md`, "Timers and retries").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// TCP connect + TLS handshake.
    pub connect: Duration,
    /// Waiting for the 0810 to a sign-on.
    pub sign_on: Duration,
    /// Default deadline of an authorisation (from the call to the 0210).
    pub request: Duration,
    /// Send an echo after this long without receiving anything; its 0810 must come within `sign_on`.
    pub echo_idle: Duration,
    /// First pause before reconnecting; doubles up to `reconnect_max`.
    pub reconnect_min: Duration,
    /// Longest pause before reconnecting.
    pub reconnect_max: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            connect: Duration::from_secs(5),
            sign_on: Duration::from_secs(5),
            request: Duration::from_secs(10),
            echo_idle: Duration::from_secs(30),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(10),
        }
    }
}

/// Everything a link needs.
#[derive(Clone)]
pub struct LinkConfig {
    /// `host:port` of the acquirer.
    pub addr: String,
    /// Name the acquirer's certificate must carry (DNS name or IP address).
    pub server_name: String,
    /// Client TLS configuration (see [`crate::tls::client_config`]).
    pub tls: Arc<rustls::ClientConfig>,
    /// DE32 / DE41.
    pub terminal: Terminal,
    /// Length framing.
    pub framing: Framing,
    /// Largest frame accepted.
    pub max_frame: usize,
    /// Timers.
    pub timers: Timers,
    /// Reversal repeats.
    pub reversal: RetryPolicy,
    /// Connections in the pool, 1 to [`MAX_LINKS`] (all to `addr`, one STAN sequence).
    pub links: usize,
}

impl LinkConfig {
    /// A configuration with default framing, limits and timers.
    pub fn new(
        addr: impl Into<String>,
        server_name: impl Into<String>,
        tls: Arc<rustls::ClientConfig>,
        terminal: Terminal,
    ) -> Self {
        LinkConfig {
            addr: addr.into(),
            server_name: server_name.into(),
            tls,
            terminal,
            framing: Framing::Binary2,
            max_frame: DEFAULT_MAX_FRAME,
            timers: Timers::default(),
            reversal: RetryPolicy::default(),
            links: 1,
        }
    }
}

impl fmt::Debug for LinkConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkConfig")
            .field("addr", &self.addr)
            .field("server_name", &self.server_name)
            .field("terminal", &self.terminal)
            .field("framing", &self.framing)
            .field("timers", &self.timers)
            .field("links", &self.links)
            .finish_non_exhaustive()
    }
}

/// Which side a failure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkSide {
    /// Our configuration, data or state.
    Ours,
    /// The acquirer answered wrongly or refused.
    Acquirer,
    /// The network or TLS between us.
    Network,
}

/// Link failures. When [`Link::authorise`] returns one, nothing reached the acquirer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LinkError {
    /// The link was not signed on before the deadline.
    #[error("link not signed on within the deadline{}", last.as_ref().map(|e| format!(" (last error: {e})")).unwrap_or_default())]
    NotConnected {
        /// The last connection error, if any.
        last: Option<Box<LinkError>>,
    },
    /// TCP connect failed.
    #[error("connecting to {addr}: {source}")]
    Connect {
        /// Address.
        addr: String,
        /// Cause.
        source: Arc<std::io::Error>,
    },
    /// TCP connect or TLS handshake did not finish in time.
    #[error("connecting to {addr}: timed out")]
    ConnectTimeout {
        /// Address.
        addr: String,
    },
    /// The TLS handshake failed (certificate refused on either side, protocol error).
    #[error("TLS with {addr}: {source}")]
    Tls {
        /// Address.
        addr: String,
        /// Cause.
        source: Arc<std::io::Error>,
    },
    /// The acquirer answered the sign-on with a non-approval.
    #[error("sign-on refused with response code {code}")]
    SignOnRefused {
        /// DE39.
        code: String,
    },
    /// No 0810 to a sign-on or echo in time.
    #[error("no answer to the {what} in time")]
    NoAnswer {
        /// `"sign-on"` or `"echo"`.
        what: &'static str,
    },
    /// Reading or writing the connection failed (a TLS alert from the acquirer lands here too).
    #[error("connection: {0}")]
    Io(Arc<std::io::Error>),
    /// The acquirer closed the connection.
    #[error("connection closed by the acquirer")]
    Closed,
    /// The acquirer broke the framing; the connection was dropped.
    #[error("framing: {0}")]
    Frame(FrameError),
    /// Our request could not be built.
    #[error("building the request: {0}")]
    Message(MessageError),
    /// Our request could not be encoded.
    #[error("encoding the request: {0}")]
    Codec(CodecError),
    /// Too many requests queued for the connection before the deadline.
    #[error("link busy: request not sent before the deadline")]
    Busy,
    /// The reversal store failed.
    #[error("reversal store: {0}")]
    Store(StoreError),
    /// The link was shut down.
    #[error("link shut down")]
    Shutdown,
    /// The link configuration is unusable.
    #[error("link configuration: {0}")]
    Config(String),
}

impl LinkError {
    /// Which side failed.
    pub fn side(&self) -> LinkSide {
        match self {
            LinkError::NotConnected { last } => {
                last.as_ref().map_or(LinkSide::Network, |e| e.side())
            }
            LinkError::Connect { .. }
            | LinkError::ConnectTimeout { .. }
            | LinkError::Tls { .. }
            | LinkError::Io(_) => LinkSide::Network,
            LinkError::SignOnRefused { .. }
            | LinkError::NoAnswer { .. }
            | LinkError::Closed
            | LinkError::Frame(_) => LinkSide::Acquirer,
            LinkError::Message(_)
            | LinkError::Codec(_)
            | LinkError::Busy
            | LinkError::Store(_)
            | LinkError::Shutdown
            | LinkError::Config(_) => LinkSide::Ours,
        }
    }

    /// Whether a deadline expired.
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            LinkError::NotConnected { .. }
                | LinkError::ConnectTimeout { .. }
                | LinkError::NoAnswer { .. }
                | LinkError::Busy
        )
    }
}

/// Why an outcome is unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnknownCause {
    /// No 0210 before the deadline.
    Timeout,
    /// The connection dropped after the 0200 was handed to it.
    ConnectionLost,
    /// A 0210 that cannot be trusted or that says "unknown" (e.g. 91, 96, a different amount).
    UnusableAnswer(String),
}

impl fmt::Display for UnknownCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnknownCause::Timeout => f.write_str("no answer from the acquirer within the deadline"),
            UnknownCause::ConnectionLost => {
                f.write_str("the connection to the acquirer closed after the request was sent")
            }
            UnknownCause::UnusableAnswer(why) => {
                write!(f, "the acquirer's answer leaves the outcome open: {why}")
            }
        }
    }
}

impl UnknownCause {
    /// Whether the deadline expired.
    pub fn is_timeout(&self) -> bool {
        matches!(self, UnknownCause::Timeout)
    }

    fn reason(&self) -> ReversalReason {
        match self {
            UnknownCause::Timeout => ReversalReason::Timeout,
            UnknownCause::ConnectionLost => ReversalReason::ConnectionLost,
            UnknownCause::UnusableAnswer(_) => ReversalReason::UnusableAnswer,
        }
    }
}

/// An unknown outcome: the payment is being reversed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unknown {
    /// Why.
    pub cause: UnknownCause,
    /// The queued reversal; `None` only if the store refused it (then a person must look).
    pub reversal: Option<ReversalId>,
    /// DE11 of the 0200.
    pub stan: Stan,
}

/// The result of an authorisation. A decline is a value, not an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Approved by the acquirer.
    Approved(Approval),
    /// Declined by the acquirer; no money moved.
    Declined(Decline),
    /// Unknown; a reversal runs until acknowledged or flagged for manual review.
    Unknown(Unknown),
}

/// Counters of one link, or of one connection of its pool (since it started).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// TLS connections established.
    pub connects: u64,
    /// Successful sign-ons.
    pub sign_ons: u64,
    /// Authorisations attempted (0200 handed to a connection).
    pub authorisations: u64,
    /// Echo tests sent.
    pub echoes: u64,
    /// Responses that matched nothing waiting (dropped).
    pub unmatched: u64,
    /// Frames that did not decode (dropped).
    pub undecodable: u64,
    /// Late responses recorded against a running reversal.
    pub late: u64,
    /// Advices (0220 / 0221) the acquirer sent us.
    pub advices: u64,
    /// Advices answered `00` (accepted).
    pub advices_accepted: u64,
    /// Advices left unanswered (no handler yet, too many at once, or not decided in time): the
    /// acquirer repeats them.
    pub advices_unanswered: u64,
}

#[derive(Default)]
struct Counters {
    connects: AtomicU64,
    sign_ons: AtomicU64,
    authorisations: AtomicU64,
    echoes: AtomicU64,
    unmatched: AtomicU64,
    undecodable: AtomicU64,
    late: AtomicU64,
    advices: AtomicU64,
    advices_accepted: AtomicU64,
    advices_unanswered: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    fn stats(&self) -> LinkStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        LinkStats {
            connects: get(&self.connects),
            sign_ons: get(&self.sign_ons),
            authorisations: get(&self.authorisations),
            echoes: get(&self.echoes),
            unmatched: get(&self.unmatched),
            undecodable: get(&self.undecodable),
            late: get(&self.late),
            advices: get(&self.advices),
            advices_accepted: get(&self.advices_accepted),
            advices_unanswered: get(&self.advices_unanswered),
        }
    }
}

impl std::ops::Add for LinkStats {
    type Output = LinkStats;
    fn add(self, o: LinkStats) -> LinkStats {
        LinkStats {
            connects: self.connects + o.connects,
            sign_ons: self.sign_ons + o.sign_ons,
            authorisations: self.authorisations + o.authorisations,
            echoes: self.echoes + o.echoes,
            unmatched: self.unmatched + o.unmatched,
            undecodable: self.undecodable + o.undecodable,
            late: self.late + o.late,
            advices: self.advices + o.advices,
            advices_accepted: self.advices_accepted + o.advices_accepted,
            advices_unanswered: self.advices_unanswered + o.advices_unanswered,
        }
    }
}

/// One connection of a link's pool, as [`Link::members`] reports it.
#[derive(Debug, Clone)]
pub struct Member {
    /// Its index in the pool, from 0 (the `link` label of the metrics).
    pub index: usize,
    /// Signed on now.
    pub ready: bool,
    /// Requests sent on it and waiting for their answer.
    pub in_flight: usize,
    /// Why it last went down, if it did.
    pub last_error: Option<LinkError>,
    /// Its counters.
    pub stats: LinkStats,
}

/// Matching key: response MTI, STAN, DE7, DE41.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    mti: Mti,
    stan: u32,
    de7: [u8; 10],
    de41: [u8; 8],
}

impl Key {
    fn of(mti: Mti, m: &Message) -> Option<Key> {
        Some(Key {
            mti,
            stan: Stan::parse(m.get(11)?)?.get(),
            de7: m.get(7)?.try_into().ok()?,
            de41: m.get(41)?.try_into().ok()?,
        })
    }
}

#[derive(Debug, Clone, Copy)]
enum LateKind {
    /// A 0210 for an authorisation being reversed: recorded, never acted on.
    Authorisation,
    /// A 0410 for a reversal attempt that timed out: it still acknowledges the reversal.
    Reversal,
    /// Network management: ignored.
    Network,
}

enum Waiter {
    Waiting(oneshot::Sender<Message>),
    Late(LateKind, Option<ReversalId>),
}

/// Where a sent request waits: its connection and its key there.
#[derive(Debug, Clone)]
struct Slot {
    conn: usize,
    key: Key,
}

enum Exchange {
    Answer(Message),
    NotSent(LinkError),
    Lost(UnknownCause, Slot),
}

/// Which connection a request goes out on.
#[derive(Debug, Clone, Copy)]
enum Route {
    /// A signed-on one (fewest waiting); with `wait`, wait until one is signed on first.
    Any { wait: bool },
    /// This one (network management: its own sign-on and echoes).
    On(usize),
}

/// One connection of the pool: its state, its waiters and its counters.
#[derive(Default)]
struct Conn {
    outbox: Mutex<Option<mpsc::Sender<Vec<u8>>>>,
    /// Signed on (and its outbox set).
    ready: AtomicBool,
    inflight: Mutex<HashMap<Key, Waiter>>,
    /// Requests sent on it and still waiting (how dispatch balances the pool).
    waiting: AtomicUsize,
    counters: Counters,
    last_error: Mutex<Option<LinkError>>,
    /// While it waits to reconnect after a failure: when the next attempt starts.
    retry_at: Mutex<Option<Instant>>,
    last_rx_ms: AtomicU64,
}

/// Counts a request as waiting on its connection while alive.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn on(c: &'a AtomicUsize) -> Self {
        c.fetch_add(1, Ordering::Relaxed);
        Waiting(c)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

struct Shared {
    config: LinkConfig,
    connector: tokio_rustls::TlsConnector,
    server_name: ServerName<'static>,
    conns: Box<[Conn]>,
    /// At least one connection is signed on.
    ready: watch::Sender<bool>,
    /// Where the next pick starts (ties go round the pool).
    turn: AtomicUsize,
    shutdown: watch::Sender<bool>,
    stans: Mutex<stan::StanClock>,
    /// The STAN sequence's name in the store: DE32 / DE41 (one for the whole pool).
    stan_scope: String,
    store: Arc<dyn ReversalStore>,
    /// The most recent connection error of any member.
    last_error: Mutex<Option<LinkError>>,
    started: Instant,
    /// Who acts on the acquirer's advices (the gateway); none yet → advices are not answered.
    advices: Mutex<Option<Arc<dyn AdviceHandler>>>,
    /// Bounds the advices being handled at once.
    advice_slots: Arc<tokio::sync::Semaphore>,
}

/// Resolves once `rx` holds `want` (false if the sender is gone). Holds no watch guard across awaits.
async fn until(rx: &mut watch::Receiver<bool>, want: bool) -> bool {
    rx.wait_for(|v| *v == want).await.is_ok()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    fn spec(&self) -> &'static Spec {
        Spec::iso1987_ascii()
    }

    fn trace(&self) -> Trace {
        let now = clock::UtcFields::now();
        let stan = lock(&self.stans).next(
            now.day,
            |day, count| self.store.reserve_stans(&self.stan_scope, day, count),
            |s| {
                self.conns
                    .iter()
                    .any(|c| lock(&c.inflight).keys().any(|k| k.stan == s.get()))
            },
        );
        Trace::new(stan, &now)
    }

    fn is_shut_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    fn conn(&self, i: usize) -> &Conn {
        &self.conns[i % self.conns.len()]
    }

    /// Marks connection `i` signed on or not, and the link ready while any connection is.
    fn set_ready(&self, i: usize, up: bool) {
        self.conn(i).ready.store(up, Ordering::SeqCst);
        self.ready.send_if_modified(|any| {
            let now = self.conns.iter().any(|c| c.ready.load(Ordering::SeqCst));
            std::mem::replace(any, now) != now
        });
    }

    /// How many connections are signed on now.
    fn ready_count(&self) -> usize {
        self.conns
            .iter()
            .filter(|c| c.ready.load(Ordering::Relaxed))
            .count()
    }

    /// A signed-on connection with the fewest requests waiting; ties are taken in turn.
    fn pick(&self) -> Option<usize> {
        let n = self.conns.len();
        if n == 1 {
            return self.conns[0].ready.load(Ordering::Acquire).then_some(0);
        }
        let start = self.turn.fetch_add(1, Ordering::Relaxed);
        let mut best: Option<(usize, usize)> = None;
        for k in 0..n {
            let i = (start + k) % n;
            let c = &self.conns[i];
            if !c.ready.load(Ordering::Acquire) {
                continue;
            }
            let load = c.waiting.load(Ordering::Relaxed);
            if best.is_none_or(|(_, l)| load < l) {
                best = Some((i, load));
            }
        }
        best.map(|(i, _)| i)
    }

    /// Waits until the link is signed on (any connection), at most until `deadline`; fails at
    /// once when every connection is down and waits to reconnect until after `deadline` (an
    /// outage answers at once instead of holding every caller for its whole deadline).
    async fn wait_ready(&self, deadline: Instant) -> Result<(), LinkError> {
        let not_connected = || LinkError::NotConnected {
            last: lock(&self.last_error).clone().map(Box::new),
        };
        if !*self.ready.borrow()
            && self
                .conns
                .iter()
                .all(|c| lock(&c.retry_at).is_some_and(|at| at >= deadline))
        {
            return Err(not_connected());
        }
        let mut rx = self.ready.subscribe();
        let mut down = self.shutdown.subscribe();
        let wait = async {
            tokio::select! {
                ok = until(&mut rx, true) => if ok { Ok(()) } else { Err(LinkError::Shutdown) },
                _ = until(&mut down, true) => Err(LinkError::Shutdown),
            }
        };
        match tokio::time::timeout_at(deadline, wait).await {
            Ok(r) => r,
            Err(_) => Err(not_connected()),
        }
    }

    /// Sends `msg` on a connection chosen by `route` and waits for its matched response (on that
    /// connection) until `deadline`.
    async fn exchange(
        &self,
        msg: &Message,
        deadline: Instant,
        route: Route,
        late: LateKind,
    ) -> Exchange {
        if let Route::Any { wait: true } = route
            && let Err(e) = self.wait_ready(deadline).await
        {
            return Exchange::NotSent(e);
        }
        let Some(key) = Key::of(msg.mti().response(), msg) else {
            return Exchange::NotSent(LinkError::Message(MessageError::Field {
                field: 11,
                reason: "request lacks STAN, DE7 or DE41",
            }));
        };
        let payload = match iso8583::encode(msg, self.spec()) {
            Ok(p) => p,
            Err(e) => return Exchange::NotSent(LinkError::Codec(e)),
        };
        let mut wire = Vec::with_capacity(payload.len() + 4);
        if let Err(e) = self.config.framing.wrap(&payload, &mut wire) {
            return Exchange::NotSent(LinkError::Frame(e));
        }
        let not_connected = || {
            Exchange::NotSent(LinkError::NotConnected {
                last: lock(&self.last_error).clone().map(Box::new),
            })
        };
        match route {
            Route::On(i) => match self.exchange_on(i, key, wire, deadline, late).await {
                Ok(done) => done,
                Err(_) => not_connected(),
            },
            Route::Any { .. } => {
                // A connection picked as it goes down is skipped for the next one, once each.
                let mut wire = Some(wire);
                for _ in 0..self.conns.len() {
                    let (Some(i), Some(w)) = (self.pick(), wire.take()) else {
                        break;
                    };
                    match self.exchange_on(i, key.clone(), w, deadline, late).await {
                        Err(w) => wire = Some(w),
                        Ok(done) => return done,
                    }
                }
                not_connected()
            }
        }
    }

    /// [`Shared::exchange`] on connection `i`. `Err(wire)` (unsent) when that connection is gone.
    async fn exchange_on(
        &self,
        i: usize,
        key: Key,
        wire: Vec<u8>,
        deadline: Instant,
        late: LateKind,
    ) -> Result<Exchange, Vec<u8>> {
        let conn = self.conn(i);
        let Some(tx) = lock(&conn.outbox).clone() else {
            return Err(wire);
        };
        let (otx, mut orx) = oneshot::channel();
        {
            let mut inflight = lock(&conn.inflight);
            // A late marker under the same key is our own earlier attempt (a 0401 repeats the 0400's
            // STAN/DE7): the new waiter replaces it. A live waiter means a STAN collision.
            if let Some(Waiter::Waiting(_)) = inflight.get(&key) {
                return Ok(Exchange::NotSent(LinkError::Message(MessageError::Field {
                    field: 11,
                    reason: "STAN already in flight",
                })));
            }
            inflight.insert(key.clone(), Waiter::Waiting(otx));
        }
        let _waiting = Waiting::on(&conn.waiting);
        let sent = match tokio::time::timeout_at(deadline, tx.send(wire)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(unsent)) => {
                // The connection ended before taking it: nothing was sent, another may take it.
                lock(&conn.inflight).remove(&key);
                return Err(unsent.0);
            }
            Err(_) => Err(LinkError::Busy),
        };
        if let Err(e) = sent {
            lock(&conn.inflight).remove(&key);
            return Ok(Exchange::NotSent(e));
        }
        if key.mti == Mti::FINANCIAL_RESPONSE {
            bump(&conn.counters.authorisations);
        }
        let slot = |key| Slot { conn: i, key };
        Ok(match tokio::time::timeout_at(deadline, &mut orx).await {
            Ok(Ok(resp)) => Exchange::Answer(resp),
            Ok(Err(_)) => Exchange::Lost(UnknownCause::ConnectionLost, slot(key)),
            Err(_) => {
                let mut inflight = lock(&conn.inflight);
                if let Some(w) = inflight.get_mut(&key) {
                    *w = Waiter::Late(late, None);
                    drop(inflight);
                    return Ok(Exchange::Lost(UnknownCause::Timeout, slot(key)));
                }
                drop(inflight);
                // The response (or the connection's end) raced the deadline.
                match orx.try_recv() {
                    Ok(resp) => Exchange::Answer(resp),
                    Err(_) => Exchange::Lost(UnknownCause::ConnectionLost, slot(key)),
                }
            }
        })
    }

    /// Points a late marker at the reversal now running for it.
    fn mark_late(&self, slot: &Slot, id: ReversalId) {
        if let Some(Waiter::Late(_, late)) = lock(&self.conn(slot.conn).inflight).get_mut(&slot.key)
        {
            *late = Some(id);
        }
    }

    /// Queues and starts the reversal of `original`.
    fn reverse(
        self: &Arc<Self>,
        original: &Message,
        reason: ReversalReason,
    ) -> Result<ReversalId, LinkError> {
        let trace = self.trace();
        let request =
            message::reversal_request(original, &trace, reason).map_err(LinkError::Message)?;
        let wire = iso8583::encode(&request, self.spec()).map_err(LinkError::Codec)?;
        let id = self
            .store
            .enqueue(NewReversal {
                reason,
                request: wire,
                original_stan: original.text(11).unwrap_or_default().to_owned(),
                original_rrn: original.text(37).unwrap_or_default().to_owned(),
            })
            .map_err(LinkError::Store)?;
        tokio::spawn(saf::drive(Arc::clone(self), id, request, 0));
        Ok(id)
    }
}

/// A running link: its pool of connections. Clones share it; dropping the last clone stops it
/// (pending reversals stay in the store and resume when a link starts on the same store).
#[derive(Clone)]
pub struct Link {
    shared: Arc<Shared>,
    _guard: Arc<Guard>,
}

struct Guard {
    shutdown: watch::Sender<bool>,
    supervisors: Vec<JoinHandle<()>>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
        for s in &self.supervisors {
            s.abort();
        }
    }
}

impl Link {
    /// Starts the link (its [`LinkConfig::links`] connections connect in the background) and
    /// resumes the store's pending reversals. Must be called inside a tokio runtime.
    pub fn start(config: LinkConfig, store: Arc<dyn ReversalStore>) -> Result<Link, LinkError> {
        if !(1..=MAX_LINKS).contains(&config.links) {
            return Err(LinkError::Config(format!(
                "links = {}: a pool holds 1 to {MAX_LINKS} connections",
                config.links
            )));
        }
        let server_name = ServerName::try_from(config.server_name.clone()).map_err(|_| {
            LinkError::Config(format!(
                "server name {:?} is neither a DNS name nor an IP address",
                config.server_name
            ))
        })?;
        let pending = store.pending().map_err(LinkError::Store)?;
        let stan_scope = format!(
            "{}/{}",
            config.terminal.acquiring_institution, config.terminal.terminal_id
        );
        let shutdown = watch::Sender::new(false);
        let shared = Arc::new(Shared {
            connector: tokio_rustls::TlsConnector::from(Arc::clone(&config.tls)),
            server_name,
            conns: (0..config.links).map(|_| Conn::default()).collect(),
            config,
            ready: watch::Sender::new(false),
            turn: AtomicUsize::new(0),
            shutdown: shutdown.clone(),
            stans: Mutex::new(stan::StanClock::new()),
            stan_scope,
            store,
            last_error: Mutex::new(None),
            started: Instant::now(),
            advices: Mutex::new(None),
            advice_slots: Arc::new(tokio::sync::Semaphore::new(MAX_ADVICES_IN_FLIGHT)),
        });
        for record in pending {
            match iso8583::decode(&record.reversal.request, shared.spec()) {
                Ok(request) => {
                    let done = record
                        .attempts
                        .iter()
                        .filter(|a| saf::transmitted(&a.result))
                        .count() as u32;
                    tokio::spawn(saf::drive(Arc::clone(&shared), record.id, request, done));
                }
                Err(e) => tracing::error!(
                    "reversal {:?}: stored request does not decode: {e}",
                    record.id
                ),
            }
        }
        let supervisors = (0..shared.conns.len())
            .map(|i| tokio::spawn(conn::supervise(Arc::clone(&shared), i)))
            .collect();
        Ok(Link {
            shared,
            _guard: Arc::new(Guard {
                shutdown,
                supervisors,
            }),
        })
    }

    /// Drives a pending reversal this link's process did not start: one taken over from
    /// another process sharing the store (its attempts so far count toward the bound). Refused
    /// (`Codec`) when the stored request does not decode.
    pub fn resume(&self, record: &ReversalRecord) -> Result<(), LinkError> {
        let request = iso8583::decode(&record.reversal.request, self.shared.spec())
            .map_err(LinkError::Codec)?;
        let done = record
            .attempts
            .iter()
            .filter(|a| saf::transmitted(&a.result))
            .count() as u32;
        tokio::spawn(saf::drive(
            Arc::clone(&self.shared),
            record.id,
            request,
            done,
        ));
        Ok(())
    }

    /// Whether a stored reversal was built for this link: its DE32 is this link's acquiring
    /// institution (false when it does not decode).
    pub fn carries(&self, record: &ReversalRecord) -> bool {
        iso8583::decode(&record.reversal.request, self.shared.spec()).is_ok_and(|m| {
            m.text(32) == Some(self.shared.config.terminal.acquiring_institution.as_str())
        })
    }

    /// Waits until the link is signed on (at least one connection of its pool), at most `limit`.
    /// Fails at once (`NotConnected` with the last connection error) when every connection is
    /// down and none will try to reconnect within `limit`.
    pub async fn ready(&self, limit: Duration) -> Result<(), LinkError> {
        self.shared.wait_ready(Instant::now() + limit).await
    }

    /// Whether the link is signed on now (at least one connection of its pool).
    pub fn is_ready(&self) -> bool {
        *self.shared.ready.borrow()
    }

    /// How many connections of the pool are signed on now, and the pool's size.
    pub fn ready_links(&self) -> (usize, usize) {
        (self.shared.ready_count(), self.shared.conns.len())
    }

    /// Each connection of the pool: state, requests waiting, last error, counters.
    pub fn members(&self) -> Vec<Member> {
        self.shared
            .conns
            .iter()
            .enumerate()
            .map(|(index, c)| Member {
                index,
                ready: c.ready.load(Ordering::Relaxed),
                in_flight: c.waiting.load(Ordering::Relaxed),
                last_error: lock(&c.last_error).clone(),
                stats: c.counters.stats(),
            })
            .collect()
    }

    /// The most recent connection error of any connection, if any.
    pub fn last_error(&self) -> Option<LinkError> {
        lock(&self.shared.last_error).clone()
    }

    /// Installs who acts on the refund advices (0220 / 0221) the acquirer sends on this link;
    /// until then they are not answered (the acquirer repeats them).
    pub fn set_advice_handler(&self, handler: Arc<dyn AdviceHandler>) {
        *lock(&self.shared.advices) = Some(handler);
    }

    /// Counters, summed over the pool's connections ([`Link::members`] has each one's).
    pub fn stats(&self) -> LinkStats {
        self.shared
            .conns
            .iter()
            .map(|c| c.counters.stats())
            .fold(LinkStats::default(), |a, b| a + b)
    }

    /// Authorises with the default deadline ([`Timers::request`]).
    pub async fn authorise(&self, purchase: &Purchase) -> Result<Outcome, LinkError> {
        self.authorise_within(purchase, self.shared.config.timers.request)
            .await
    }

    /// Authorises (0200 → 0210) within `deadline` (covering the wait for a connection too).
    pub async fn authorise_within(
        &self,
        purchase: &Purchase,
        deadline: Duration,
    ) -> Result<Outcome, LinkError> {
        self.authorise_with(purchase, deadline, None).await
    }

    /// A fresh trace (STAN, DE7, DE12/13, RRN) for a request about to be sent with
    /// [`Link::authorise_traced`]: the caller can journal it before anything is sent, so a crash
    /// in between leaves enough to reverse the request.
    pub fn next_trace(&self) -> Trace {
        self.shared.trace()
    }

    /// As [`Link::authorise_within`], with a trace from [`Link::next_trace`].
    pub async fn authorise_traced(
        &self,
        purchase: &Purchase,
        trace: Trace,
        deadline: Duration,
    ) -> Result<Outcome, LinkError> {
        self.authorise_with(purchase, deadline, Some(trace)).await
    }

    async fn authorise_with(
        &self,
        purchase: &Purchase,
        deadline: Duration,
        trace: Option<Trace>,
    ) -> Result<Outcome, LinkError> {
        let s = &self.shared;
        let deadline = Instant::now() + deadline;
        s.wait_ready(deadline).await?;
        let trace = trace.unwrap_or_else(|| s.trace());
        let request = message::purchase_request(purchase, &s.config.terminal, &trace)
            .map_err(LinkError::Message)?;
        let (cause, key) = match s
            .exchange(
                &request,
                deadline,
                Route::Any { wait: false },
                LateKind::Authorisation,
            )
            .await
        {
            Exchange::NotSent(e) => return Err(e),
            Exchange::Answer(response) => match message::read_answer(&request, &response) {
                Answer::Approved(a) => return Ok(Outcome::Approved(a)),
                Answer::Declined(d) => return Ok(Outcome::Declined(d)),
                Answer::Unusable(why) => (UnknownCause::UnusableAnswer(why), None),
            },
            Exchange::Lost(cause, key) => (cause, Some(key)),
        };
        let reversal = match s.reverse(&request, cause.reason()) {
            Ok(id) => {
                if let Some(key) = &key {
                    s.mark_late(key, id);
                }
                Some(id)
            }
            Err(e) => {
                tracing::error!(
                    "STAN {}: reversal could not be queued ({e}); manual review needed",
                    trace.stan
                );
                None
            }
        };
        Ok(Outcome::Unknown(Unknown {
            cause,
            reversal,
            stan: trace.stan,
        }))
    }

    /// Cancels an approved payment before cut-off: queues its reversal (DE39 `17`), driven like any
    /// other to a 0410 or to manual review. After cut-off, refund instead (a 0200 of kind `Refund`).
    pub fn cancel(&self, approval: &Approval) -> Result<ReversalId, LinkError> {
        self.shared
            .reverse(&approval.request, ReversalReason::Cancelled)
    }

    /// Reverses a 0200 this link sent earlier, for `reason`.
    pub fn reverse(
        &self,
        original: &Message,
        reason: ReversalReason,
    ) -> Result<ReversalId, LinkError> {
        self.shared.reverse(original, reason)
    }
}
