//! One connection of the pool, one at a time: connect (TCP + TLS), sign on, then read, write and
//! echo until something fails; then tear down (every caller still waiting on it learns the
//! connection was lost) and reconnect with exponential backoff. Each pool member runs its own
//! [`supervise`]; they share the STAN sequence, the reversal store and the advice handler.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Exchange, LateKind, LinkError, Route, Shared, Waiter, bump, lock};
use crate::acquirer::advice::{self, RefundAdvice};
use crate::acquirer::frame::FrameReader;
use crate::acquirer::iso8583::{self, Message, Mti};
use crate::acquirer::message::{self, NetworkFunction, ResponseCode};

/// Runs pool member `i` until the link is shut down.
pub(super) async fn supervise(shared: Arc<Shared>, i: usize) {
    let timers = shared.config.timers;
    let pool = shared.conns.len();
    let mut backoff = timers.reconnect_min;
    let mut down = shared.shutdown.subscribe();
    loop {
        if shared.is_shut_down() {
            return;
        }
        let (signed_on, error) = connect_and_run(&shared, i).await;
        if shared.is_shut_down() {
            tracing::info!(acquirer_addr = %shared.config.addr, link = i, "acquirer link closed (shutdown)");
            return;
        }
        let ready = shared.ready_count();
        let retry_in_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX);
        if ready == 0 {
            tracing::error!(
                acquirer_addr = %shared.config.addr,
                link = i,
                links = pool,
                links_ready = ready,
                error = %error,
                was_signed_on = signed_on,
                retry_in_ms,
                action = "no connection to the acquirer is signed on: payments are refused \
                          (F SERVICE_UNAVAILABLE) and reversals wait; check the acquirer's host, \
                          port, certificates and its own status",
                "acquirer link DOWN"
            );
        } else {
            tracing::warn!(
                acquirer_addr = %shared.config.addr,
                link = i,
                links = pool,
                links_ready = ready,
                error = %error,
                was_signed_on = signed_on,
                retry_in_ms,
                "acquirer link: one connection of the pool DOWN; the others carry the traffic"
            );
        }
        *lock(&shared.conn(i).last_error) = Some(error.clone());
        *lock(&shared.last_error) = Some(error);
        if signed_on {
            backoff = timers.reconnect_min;
        }
        *lock(&shared.conn(i).retry_at) = Some(Instant::now() + backoff);
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = super::until(&mut down, true) => return,
        }
        *lock(&shared.conn(i).retry_at) = None;
        backoff = backoff.saturating_mul(2).min(timers.reconnect_max);
    }
}

/// One connection's life (pool member `i`); returns whether it signed on, and why it ended.
async fn connect_and_run(shared: &Arc<Shared>, i: usize) -> (bool, LinkError) {
    let conn = shared.conn(i);
    let addr = shared.config.addr.clone();
    let limit = shared.config.timers.connect;
    let tcp = match tokio::time::timeout(limit, TcpStream::connect(&addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return (
                false,
                LinkError::Connect {
                    addr,
                    source: Arc::new(e),
                },
            );
        }
        Err(_) => return (false, LinkError::ConnectTimeout { addr }),
    };
    // Small request/response messages: do not wait to coalesce.
    let _ = tcp.set_nodelay(true);
    let tls = match tokio::time::timeout(
        limit,
        shared.connector.connect(shared.server_name.clone(), tcp),
    )
    .await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return (
                false,
                LinkError::Tls {
                    addr,
                    source: Arc::new(e),
                },
            );
        }
        Err(_) => return (false, LinkError::ConnectTimeout { addr }),
    };
    bump(&conn.counters.connects);
    let (rd, wr) = tokio::io::split(tls);
    let (tx, rx) = mpsc::channel::<Vec<u8>>(4096);
    let mut writer = tokio::spawn(released(Arc::clone(shared), i, write_loop(wr, rx)));
    let mut reader = tokio::spawn(released(
        Arc::clone(shared),
        i,
        read_loop(rd, Arc::clone(shared), i, tx.clone()),
    ));
    *lock(&conn.outbox) = Some(tx);
    // If this future is dropped (link shut down), the I/O tasks must not outlive it.
    let _io = AbortOnDrop([reader.abort_handle(), writer.abort_handle()]);

    let result = match network(shared, i, NetworkFunction::SignOn).await {
        Ok(()) => {
            bump(&conn.counters.sign_ons);
            shared.set_ready(i, true);
            tracing::info!(
                acquirer_addr = %addr,
                link = i,
                links = shared.conns.len(),
                links_ready = shared.ready_count(),
                "acquirer link signed on"
            );
            (true, monitor(shared, i, &mut reader, &mut writer).await)
        }
        Err(e) => {
            // A refused client certificate shows up as a TLS alert on the first read: prefer it.
            let from_reader =
                match tokio::time::timeout(Duration::from_millis(200), &mut reader).await {
                    Ok(Ok(err)) => Some(err),
                    _ => None,
                };
            (false, from_reader.unwrap_or(e))
        }
    };

    // Teardown: no new requests, stop I/O, release every waiter (they see ConnectionLost).
    shared.set_ready(i, false);
    *lock(&conn.outbox) = None;
    reader.abort();
    writer.abort();
    lock(&conn.inflight).clear();
    result
}

struct AbortOnDrop([tokio::task::AbortHandle; 2]);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

/// Runs an I/O loop; when it ends, the connection is unusable: stop taking requests and release every
/// waiter at once (they learn the connection was lost) instead of letting them run to their deadlines.
async fn released(
    shared: Arc<Shared>,
    i: usize,
    io: impl std::future::Future<Output = LinkError>,
) -> LinkError {
    let error = io.await;
    shared.set_ready(i, false);
    let conn = shared.conn(i);
    *lock(&conn.outbox) = None;
    lock(&conn.inflight).retain(|_, w| !matches!(w, Waiter::Waiting(_)));
    error
}

/// Watches the reader and writer and sends echoes when idle.
async fn monitor(
    shared: &Arc<Shared>,
    i: usize,
    reader: &mut tokio::task::JoinHandle<LinkError>,
    writer: &mut tokio::task::JoinHandle<LinkError>,
) -> LinkError {
    let idle = shared.config.timers.echo_idle;
    let mut down = shared.shutdown.subscribe();
    loop {
        tokio::select! {
            r = &mut *reader => return r.unwrap_or(LinkError::Closed),
            w = &mut *writer => return w.unwrap_or(LinkError::Closed),
            _ = super::until(&mut down, true) => return LinkError::Shutdown,
            _ = tokio::time::sleep(idle / 2) => {
                let now_ms = shared.started.elapsed().as_millis() as u64;
                let last = shared.conn(i).last_rx_ms.load(Ordering::Relaxed);
                if now_ms.saturating_sub(last) >= idle.as_millis() as u64 {
                    bump(&shared.conn(i).counters.echoes);
                    if let Err(e) = network(shared, i, NetworkFunction::Echo).await {
                        return e;
                    }
                }
            }
        }
    }
}

/// Sends an 0800 on pool member `i` and requires an 0810 with DE39 = 00 on it.
async fn network(
    shared: &Arc<Shared>,
    i: usize,
    function: NetworkFunction,
) -> Result<(), LinkError> {
    let what = match function {
        NetworkFunction::SignOn => "sign-on",
        NetworkFunction::SignOff => "sign-off",
        NetworkFunction::Echo => "echo",
    };
    let request = message::network_request(function, &shared.config.terminal, &shared.trace());
    let deadline = Instant::now() + shared.config.timers.sign_on;
    match shared
        .exchange(&request, deadline, Route::On(i), LateKind::Network)
        .await
    {
        Exchange::Answer(r) => match r.get(39).and_then(ResponseCode::parse) {
            Some(ResponseCode::APPROVED) => Ok(()),
            other => Err(LinkError::SignOnRefused {
                code: other
                    .map(|c| c.as_str().to_owned())
                    .unwrap_or_else(|| "none".to_owned()),
            }),
        },
        Exchange::NotSent(e) => Err(e),
        Exchange::Lost(super::UnknownCause::Timeout, _) => Err(LinkError::NoAnswer { what }),
        Exchange::Lost(_, _) => Err(LinkError::Closed),
    }
}

/// Writes queued frames, batching what is already waiting into one TLS write.
async fn write_loop<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut rx: mpsc::Receiver<Vec<u8>>,
) -> LinkError {
    let mut batch = Vec::with_capacity(64 * 1024);
    while let Some(first) = rx.recv().await {
        batch.clear();
        batch.extend_from_slice(&first);
        while batch.len() < 64 * 1024 {
            match rx.try_recv() {
                Ok(more) => batch.extend_from_slice(&more),
                Err(_) => break,
            }
        }
        if let Err(e) = wr.write_all(&batch).await {
            return LinkError::Io(Arc::new(e));
        }
        if let Err(e) = wr.flush().await {
            return LinkError::Io(Arc::new(e));
        }
    }
    LinkError::Shutdown
}

/// Reads frames of pool member `i` and hands each response to its waiter there.
async fn read_loop<R: AsyncRead + Unpin>(
    mut rd: R,
    shared: Arc<Shared>,
    i: usize,
    tx: mpsc::Sender<Vec<u8>>,
) -> LinkError {
    let conn = shared.conn(i);
    let mut frames = FrameReader::new(shared.config.framing, shared.config.max_frame);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) => return LinkError::Closed,
            Ok(n) => n,
            Err(e) => return LinkError::Io(Arc::new(e)),
        };
        conn.last_rx_ms.store(
            shared.started.elapsed().as_millis() as u64,
            Ordering::Relaxed,
        );
        frames.push(&buf[..n]);
        loop {
            let decoded = match frames.next_frame() {
                Ok(Some(frame)) => iso8583::decode(frame, shared.spec()),
                Ok(None) => break,
                Err(e) => return LinkError::Frame(e),
            };
            match decoded {
                Ok(msg) => dispatch(&shared, i, msg, &tx),
                Err(e) => {
                    bump(&conn.counters.undecodable);
                    tracing::warn!("acquirer link: undecodable frame dropped: {e}");
                }
            }
        }
    }
}

/// One message that came on `conn`: a response goes to its waiter on that connection; an
/// acquirer's request is answered on it.
fn dispatch(shared: &Arc<Shared>, i: usize, msg: Message, tx: &mpsc::Sender<Vec<u8>>) {
    if advice::is_advice(msg.mti()) {
        advice_in(shared, i, msg, tx);
        return;
    }
    let conn = shared.conn(i);
    if !msg.mti().is_response() {
        if msg.mti() == Mti::NETWORK_REQUEST {
            // The acquirer's own echo: answer it (unanswered, it echoes again or reconnects).
            let _ = send(
                shared,
                &message::response_to(&msg, &ResponseCode::APPROVED),
                tx,
            );
        } else {
            bump(&conn.counters.unmatched);
            tracing::warn!("acquirer link: unexpected request {} dropped", msg.mti());
        }
        return;
    }
    let Some(key) = super::Key::of(msg.mti(), &msg) else {
        bump(&conn.counters.unmatched);
        tracing::warn!("acquirer link: {} without STAN/DE7/DE41 dropped", msg.mti());
        return;
    };
    let waiter = lock(&conn.inflight).remove(&key);
    let code = msg.text(39).unwrap_or("--").to_owned();
    match waiter {
        Some(Waiter::Waiting(tx)) => {
            let _ = tx.send(msg);
        }
        Some(Waiter::Late(LateKind::Authorisation, id)) => {
            bump(&conn.counters.late);
            tracing::warn!(
                "acquirer link: late {} (DE39 {code}) after the reversal started; ignored",
                msg.mti()
            );
            if let Some(id) = id
                && let Err(e) = shared.store.note_late_response(id, code)
            {
                tracing::error!("reversal {id:?}: {e}");
            }
        }
        Some(Waiter::Late(LateKind::Reversal, id)) => {
            bump(&conn.counters.late);
            if let Some(id) = id {
                super::saf::late_acknowledgement(shared, id, code);
            }
        }
        Some(Waiter::Late(LateKind::Network, _)) => {}
        None => {
            bump(&conn.counters.unmatched);
            tracing::warn!(
                "acquirer link: {} STAN {} matches nothing in flight; dropped",
                msg.mti(),
                msg.text(11).unwrap_or("?")
            );
        }
    }
}

/// Sends `msg` on the connection that `tx` feeds; false if it could not be queued.
fn send(shared: &Shared, msg: &Message, tx: &mpsc::Sender<Vec<u8>>) -> bool {
    let mut wire = Vec::new();
    match iso8583::encode(msg, shared.spec()) {
        Ok(payload) => {
            shared.config.framing.wrap(&payload, &mut wire).is_ok() && tx.try_send(wire).is_ok()
        }
        Err(e) => {
            tracing::error!("acquirer link: {} does not encode: {e}", msg.mti());
            false
        }
    }
}

/// An advice from the acquirer (0220 / 0221): a malformed one is answered at once with its code;
/// a refund advice goes to the handler, which answers `00` only once the refund is durable. Not
/// answered (the acquirer repeats it, and a repeat is handled like the first): without a handler,
/// with too many in flight, or when the handler has not decided within the request timer.
fn advice_in(shared: &Arc<Shared>, i: usize, msg: Message, tx: &mpsc::Sender<Vec<u8>>) {
    let conn = shared.conn(i);
    bump(&conn.counters.advices);
    let unanswered = |why: &str| {
        bump(&conn.counters.advices_unanswered);
        tracing::warn!(
            "acquirer link: {} STAN {} RRN {} not answered: {why} (the acquirer repeats it)",
            msg.mti(),
            msg.text(11).unwrap_or("?"),
            msg.text(37).unwrap_or("?")
        );
    };
    let advice = match RefundAdvice::parse(&msg) {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(
                "acquirer link: {} STAN {} refused with {}: {e}",
                msg.mti(),
                msg.text(11).unwrap_or("?"),
                e.code.as_str()
            );
            if !send(shared, &advice::advice_response(&msg, &e.code), tx) {
                unanswered("the connection is gone");
            }
            return;
        }
    };
    let Some(handler) = lock(&shared.advices).clone() else {
        unanswered("no advice handler installed yet");
        return;
    };
    let Ok(permit) = Arc::clone(&shared.advice_slots).try_acquire_owned() else {
        unanswered("too many advices in flight");
        return;
    };
    let shared = Arc::clone(shared);
    let tx = tx.clone();
    tokio::spawn(async move {
        let _permit = permit;
        let limit = shared.config.timers.request;
        match tokio::time::timeout(limit, handler.refund_advice(advice)).await {
            Ok(None) => {
                bump(&shared.conn(i).counters.advices_unanswered);
                tracing::info!(
                    "acquirer link: advice RRN {} left unanswered for now (the payment's outcome \
                     is still open); the acquirer repeats it",
                    msg.text(37).unwrap_or("?")
                );
            }
            Ok(Some(code)) => {
                if !send(&shared, &advice::advice_response(&msg, &code), &tx) {
                    bump(&shared.conn(i).counters.advices_unanswered);
                    tracing::warn!(
                        "acquirer link: the 0230 ({}) to RRN {} was not sent: the connection is \
                         gone (the acquirer repeats the advice)",
                        code.as_str(),
                        msg.text(37).unwrap_or("?")
                    );
                } else if code == advice::codes::accepted() {
                    bump(&shared.conn(i).counters.advices_accepted);
                }
            }
            Err(_) => {
                bump(&shared.conn(i).counters.advices_unanswered);
                tracing::warn!(
                    "acquirer link: advice RRN {} not decided within {limit:?}; not answered (the \
                     acquirer repeats it)",
                    msg.text(37).unwrap_or("?")
                );
            }
        }
    });
}
