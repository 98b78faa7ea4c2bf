//! Acquirer simulator: a TLS 1.3 server (client certificate required) speaking our ISO 8583 profile,
//! with a ledger of approved, declined and reversed transactions exportable as JSON. Behaviours per
//! request come from [`SimConfig`] (by merchant id, by amount, or the default). Used by the tests, the
//! benchmarks, the `qrbridge acquirer-sim` command and the embedded demo.

mod advices;
mod behaviour;
mod ledger;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

pub use advices::{RefundOrder, RefundPolicy, Target};
pub use behaviour::{Behaviour, SimConfig, SimConfigError};
pub use ledger::{Entry, Ledger, RefundEntry, RefundOutcome, Status};

use super::frame::{DEFAULT_MAX_FRAME, FrameReader};
use super::iso8583::{self, Message, Mti, Spec};
use super::message::{ResponseCode, response_to};

/// Counters of the simulator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimStats {
    /// TLS connections accepted.
    pub connections: u64,
    /// TLS handshakes that failed (e.g. a client certificate from another CA).
    pub handshake_failures: u64,
    /// Frames that did not decode.
    pub undecodable: u64,
    /// Reversal messages deliberately ignored (`drop_reversals`).
    pub dropped_reversals: u64,
    /// Connections ended because the framing broke.
    pub framing_errors: u64,
}

struct State {
    config: SimConfig,
    ledger: Mutex<Ledger>,
    drops_left: AtomicU32,
    late_reversals_left: AtomicU32,
    auth_codes: AtomicU64,
    connections: AtomicU64,
    handshake_failures: AtomicU64,
    undecodable: AtomicU64,
    dropped_reversals: AtomicU64,
    framing_errors: AtomicU64,
    /// Open connections (connection number → its writer and its closer): where advices go.
    conns: Mutex<std::collections::BTreeMap<u64, Open>>,
    /// Advices sent so far: each goes to the next open connection in turn.
    advice_turn: AtomicU64,
    /// Advices waiting for their 0230: (DE11, DE7) → waiter.
    advice_waiters:
        Mutex<std::collections::HashMap<(String, String), tokio::sync::oneshot::Sender<Message>>>,
    advice_stans: AtomicU64,
    approvals_seen: AtomicU64,
}

/// An open connection: its writer, and what closes it ([`Simulator::close_connection`]).
#[derive(Clone)]
struct Open {
    tx: mpsc::Sender<Vec<u8>>,
    close: Arc<tokio::sync::Notify>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running simulator; stops (closing every connection) when stopped or dropped.
pub struct Simulator {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What to do with one received message.
enum Action {
    Reply(Message, Duration),
    Nothing,
    Close,
    Garbage,
}

const GARBAGE: &[u8] = b"\xDE\xAD\xBE\xEF this is not an ISO 8583 message";

impl Simulator {
    /// Binds `listen` and serves until stopped.
    pub async fn start(
        listen: SocketAddr,
        tls: Arc<rustls::ServerConfig>,
        config: SimConfig,
    ) -> std::io::Result<Simulator> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            drops_left: AtomicU32::new(config.drop_reversals),
            late_reversals_left: AtomicU32::new(config.late_reversals),
            config,
            ledger: Mutex::new(Ledger::default()),
            auth_codes: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            handshake_failures: AtomicU64::new(0),
            undecodable: AtomicU64::new(0),
            dropped_reversals: AtomicU64::new(0),
            framing_errors: AtomicU64::new(0),
            conns: Mutex::new(std::collections::BTreeMap::new()),
            advice_waiters: Mutex::new(std::collections::HashMap::new()),
            advice_stans: AtomicU64::new(1),
            advice_turn: AtomicU64::new(0),
            approvals_seen: AtomicU64::new(0),
        });
        let task = tokio::spawn(accept_loop(
            listener,
            TlsAcceptor::from(tls),
            Arc::clone(&state),
        ));
        Ok(Simulator { addr, state, task })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A copy of the ledger.
    pub fn ledger(&self) -> Ledger {
        lock(&self.state.ledger).clone()
    }

    /// Sends a refund advice (0220; repeated as 0221 until a 0230 comes, at most
    /// `[refunds] max_transmissions`) on the gateway's connection and records it in the ledger;
    /// returns its ledger line (the 0230's DE39, transmissions).
    pub async fn refund(&self, order: RefundOrder) -> RefundEntry {
        advices::originate(&self.state, order).await
    }

    /// Whether a gateway is connected (advices have somewhere to go).
    pub fn is_connected(&self) -> bool {
        !lock(&self.state.conns).is_empty()
    }

    /// The numbers of the connections open now (the ledger's `connection`), lowest first.
    pub fn open_connections(&self) -> Vec<u64> {
        lock(&self.state.conns).keys().copied().collect()
    }

    /// Closes connection `number` at once (as an acquirer's host dropping it would), leaving the
    /// others open; false if it is not open.
    pub fn close_connection(&self, number: u64) -> bool {
        match lock(&self.state.conns).get(&number) {
            Some(open) => {
                open.close.notify_one();
                true
            }
            None => false,
        }
    }

    /// Counters.
    pub fn stats(&self) -> SimStats {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let s = &self.state;
        SimStats {
            connections: g(&s.connections),
            handshake_failures: g(&s.handshake_failures),
            undecodable: g(&s.undecodable),
            dropped_reversals: g(&s.dropped_reversals),
            framing_errors: g(&s.framing_errors),
        }
    }

    /// Stops listening and closes every connection; waits until done.
    pub async fn stop(self) {
        self.task.abort();
        let _ = (&mut { self }.task).await;
    }
}

async fn accept_loop(listener: TcpListener, acceptor: TlsAcceptor, state: Arc<State>) {
    // Dropping the set (when this task is aborted) aborts every connection.
    let mut conns = JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let Ok((tcp, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        conns.spawn(serve(tcp, acceptor.clone(), Arc::clone(&state)));
    }
}

async fn serve(tcp: TcpStream, acceptor: TlsAcceptor, state: Arc<State>) {
    let _ = tcp.set_nodelay(true);
    let tls = match tokio::time::timeout(Duration::from_secs(5), acceptor.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            state.handshake_failures.fetch_add(1, Ordering::Relaxed);
            tracing::info!("simulator: TLS handshake refused: {e}");
            return;
        }
        Err(_) => {
            state.handshake_failures.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    let number = state.connections.fetch_add(1, Ordering::Relaxed);
    let (mut rd, mut wr) = tokio::io::split(tls);
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(4096);
    let close = Arc::new(tokio::sync::Notify::new());
    lock(&state.conns).insert(
        number,
        Open {
            tx: tx.clone(),
            close: Arc::clone(&close),
        },
    );
    // Forget the connection whichever way this function ends.
    struct Registered(Arc<State>, u64);
    impl Drop for Registered {
        fn drop(&mut self) {
            lock(&self.0.conns).remove(&self.1);
        }
    }
    let _registered = Registered(Arc::clone(&state), number);
    // Delayed answers and the writer live in this set: they end with the connection.
    let mut tasks = JoinSet::new();
    tasks.spawn(async move {
        let mut batch = Vec::with_capacity(64 * 1024);
        while let Some(first) = rx.recv().await {
            batch.clear();
            batch.extend_from_slice(&first);
            while let Ok(more) = rx.try_recv() {
                batch.extend_from_slice(&more);
                if batch.len() > 64 * 1024 {
                    break;
                }
            }
            if wr.write_all(&batch).await.is_err() || wr.flush().await.is_err() {
                return;
            }
        }
    });
    let framing = state.config.framing;
    let mut frames = FrameReader::new(framing, DEFAULT_MAX_FRAME);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = tokio::select! {
            read = rd.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            _ = close.notified() => return,
        };
        frames.push(&buf[..n]);
        loop {
            let decoded = match frames.next_frame() {
                Ok(Some(frame)) => iso8583::decode(frame, Spec::iso1987_ascii()),
                Ok(None) => break,
                Err(e) => {
                    state.framing_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::info!("simulator: framing broken ({e}); closing");
                    return;
                }
            };
            let action = match decoded {
                Ok(msg) => handle(&state, number, &msg),
                Err(e) => {
                    state.undecodable.fetch_add(1, Ordering::Relaxed);
                    tracing::info!("simulator: undecodable message ignored: {e}");
                    Action::Nothing
                }
            };
            let reply = match action {
                Action::Nothing => continue,
                Action::Close => return,
                Action::Garbage => Some((GARBAGE.to_vec(), Duration::ZERO)),
                Action::Reply(m, delay) => iso8583::encode(&m, Spec::iso1987_ascii())
                    .ok()
                    .map(|w| (w, delay)),
            };
            let Some((payload, delay)) = reply else {
                continue;
            };
            let mut wire = Vec::with_capacity(payload.len() + 4);
            if framing.wrap(&payload, &mut wire).is_err() {
                continue;
            }
            if delay.is_zero() {
                if tx.send(wire).await.is_err() {
                    return;
                }
            } else {
                let tx = tx.clone();
                tasks.spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = tx.send(wire).await;
                });
            }
            while tasks.try_join_next().is_some() {}
        }
    }
}

fn handle(state: &Arc<State>, connection: u64, msg: &Message) -> Action {
    let ok = ResponseCode::APPROVED;
    match msg.mti() {
        Mti::NETWORK_REQUEST => Action::Reply(response_to(msg, &ok), Duration::ZERO),
        Mti::ADVICE_RESPONSE => {
            let key = (
                msg.text(11).unwrap_or_default().to_owned(),
                msg.text(7).unwrap_or_default().to_owned(),
            );
            if let Some(waiter) = lock(&state.advice_waiters).remove(&key) {
                let _ = waiter.send(msg.clone());
            }
            Action::Nothing
        }
        Mti::FINANCIAL_REQUEST => authorise(state, connection, msg),
        Mti::REVERSAL | Mti::REVERSAL_REPEAT => reverse(state, msg),
        _ => Action::Nothing,
    }
}

fn authorise(state: &Arc<State>, connection: u64, msg: &Message) -> Action {
    let cfg = &state.config;
    let behaviour = cfg.behaviour_for(msg.text(4), msg.text(42)).clone();
    let stan = msg.text(11).unwrap_or_default();
    let jitter = if cfg.jitter_ms > 0 {
        let s: u64 = stan.parse().unwrap_or(0);
        Duration::from_millis(s.wrapping_mul(7919) % cfg.jitter_ms)
    } else {
        Duration::ZERO
    };
    let approve = |delay: Duration| {
        let n = state.auth_codes.fetch_add(1, Ordering::Relaxed) + 1;
        let code = format!("A{:05}", n % 100_000);
        let reply = response_to(msg, &ResponseCode::APPROVED).with(38, code.as_str());
        (
            Action::Reply(reply, delay + jitter),
            "00".to_owned(),
            Some(code),
            Status::Approved,
        )
    };
    let (action, response_code, auth_code, status) = match &behaviour {
        Behaviour::Approve => approve(Duration::ZERO),
        Behaviour::Delay { ms } => approve(Duration::from_millis(*ms)),
        Behaviour::AnswerLate => approve(Duration::from_millis(cfg.late_ms)),
        Behaviour::Decline { code } => {
            let rc = ResponseCode::parse(code.as_bytes()).unwrap_or(ResponseCode::DO_NOT_HONOUR);
            (
                Action::Reply(response_to(msg, &rc), jitter),
                rc.as_str().to_owned(),
                None,
                Status::Declined,
            )
        }
        Behaviour::NeverAnswer => (Action::Nothing, String::new(), None, Status::Unanswered),
        Behaviour::Close => (Action::Close, String::new(), None, Status::Unanswered),
        Behaviour::Garbage => (Action::Garbage, String::new(), None, Status::Unanswered),
    };
    let text = |n| msg.text(n).unwrap_or_default().to_owned();
    lock(&state.ledger).record(Entry {
        stan: text(11),
        transmitted: text(7),
        terminal: text(41),
        merchant: text(42).trim_end().to_owned(),
        mcc: text(18),
        acceptor: text(43).trim_end().to_owned(),
        processing_code: text(3),
        amount: text(4).parse().unwrap_or(0),
        currency: text(49),
        rrn: text(37),
        private_data: text(48),
        response_code,
        auth_code,
        status,
        reversal_messages: 0,
        refunded: 0,
        connection,
    });
    if status == Status::Approved && text(3).starts_with("00") {
        advices::after_approval(state, text(37), text(4).parse().unwrap_or(0));
    }
    action
}

fn reverse(state: &State, msg: &Message) -> Action {
    let dropped = state
        .drops_left
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .is_ok();
    if dropped {
        state.dropped_reversals.fetch_add(1, Ordering::Relaxed);
        return Action::Nothing;
    }
    let de90 = msg.text(90).unwrap_or_default();
    let (stan, de7) = (
        de90.get(4..10).unwrap_or(""),
        de90.get(10..20).unwrap_or(""),
    );
    let terminal = msg.text(41).unwrap_or_default();
    let code = {
        let mut ledger = lock(&state.ledger);
        match ledger.find_mut(stan, de7, terminal) {
            Some(entry) => {
                entry.reversal_messages += 1;
                entry.status = Status::Reversed;
                ResponseCode::APPROVED
            }
            None => {
                ledger.unmatched_reversals += 1;
                ResponseCode::ORIGINAL_NOT_FOUND
            }
        }
    };
    let late = state
        .late_reversals_left
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .is_ok();
    let delay = if late {
        Duration::from_millis(state.config.late_ms)
    } else {
        Duration::ZERO
    };
    Action::Reply(response_to(msg, &code), delay)
}
