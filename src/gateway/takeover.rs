//! Continuous takeover on a shared journal (spec/journal.md §12): every third of the lease this
//! instance renews its own lease and looks at the others'. An owner whose lease record has not
//! moved for longer than its lease — timed on this process's monotonic clock, so the hosts'
//! clocks need not agree — is taken over: its unresolved records become this instance's (one
//! journal write, which checks the lease once more under the journal's write lock) and are
//! recovered as a restart would recover them (`recovery.rs`); its pending reversals are driven on
//! this instance's links. An owner without a lease record (stopped cleanly, or taken over
//! already) is taken at once. On redb nothing here runs.

use std::collections::HashMap;
use std::sync::Weak;
use std::time::Duration;

use tokio::time::Instant;

use crate::journal::{Lease, Unresolved};

use super::{Gateway, Inner, Reverses};

/// What this instance saw of another's lease: (token, seq) and since when.
struct Watch {
    seen: Option<(String, u64)>,
    since: Instant,
}

/// Runs until the gateway stops.
pub(super) async fn run(inner: Weak<Inner>, lease: Duration) {
    let period = (lease / 3).max(Duration::from_millis(100));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut watched: HashMap<String, Watch> = HashMap::new();
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let gateway = Gateway { inner };
        gateway.beat().await;
        gateway.watch(&mut watched).await;
    }
}

impl Gateway {
    /// Renews this instance's lease; a lost one is logged, counted, and registered again (what
    /// it owned was taken over: nothing of it is this instance's any more).
    async fn beat(&self) {
        let j = &self.inner.journal;
        let name = j.instance().map(|i| i.name.clone()).unwrap_or_default();
        match j.heartbeat().await {
            Ok(Lease::Held(_)) => {}
            Ok(Lease::Lost(found)) => {
                crate::telemetry::metrics::global().journal_lease_lost.inc();
                tracing::error!(
                    instance = %name,
                    found = ?found.map(|r| (r.token, r.pid)),
                    action = "another instance took this one's work over (it missed its lease: \
                              a pause or a lost database connection), or another process runs \
                              under the same [journal] instance name: give every process its own",
                    "journal lease LOST"
                );
                if let Err(e) = j.register().await {
                    tracing::error!(instance = %name, "journal lease: registering again: {e}");
                }
            }
            Err(e) => tracing::warn!(instance = %name, "journal lease: heartbeat: {e}"),
        }
    }

    /// Looks at every other owner of unresolved records; takes over those whose lease expired.
    async fn watch(&self, watched: &mut HashMap<String, Watch>) {
        let j = &self.inner.journal;
        let Some(me) = j.instance().map(|i| i.name.clone()) else {
            return;
        };
        let owners = match j.owners().await {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!("journal lease: reading the owners: {e}");
                return;
            }
        };
        // Owners of open records, and registered instances with nothing open (a dead one's
        // record is removed the same way, so records of past processes do not pile up).
        let mut names: Vec<&String> = owners
            .open
            .keys()
            .chain(owners.instances.iter().map(|r| &r.name))
            .filter(|o| **o != me)
            .collect();
        names.sort();
        names.dedup();
        watched.retain(|name, _| names.contains(&name));
        for owner in names {
            let record = owners.instances.iter().find(|r| r.name == *owner);
            let seen = record.map(|r| (r.token.clone(), r.seq));
            let lease = Duration::from_millis(record.map_or(0, |r| r.lease_ms));
            let w = watched.entry(owner.clone()).or_insert_with(|| Watch {
                seen: seen.clone(),
                since: Instant::now(),
            });
            if w.seen != seen {
                *w = Watch {
                    seen: seen.clone(),
                    since: Instant::now(),
                };
            }
            if record.is_some() && w.since.elapsed() <= lease {
                continue;
            }
            match j.take_over(owner, seen).await {
                Ok(u) if u.is_empty() => {}
                Ok(u) => {
                    watched.remove(owner);
                    self.recover_taken(owner, u).await;
                }
                Err(e) => tracing::warn!("journal lease: taking over {owner}: {e}"),
            }
        }
    }

    /// Recovers what was taken over from `owner`, as a restart recovers its own records, and
    /// drives its pending reversals on this instance's links.
    async fn recover_taken(&self, owner: &str, u: Unresolved) {
        let count = u.payments.len() + u.refunds.len() + u.in_flight.len() + u.reversals.len();
        crate::telemetry::metrics::global()
            .journal_takeovers
            .inc_by(u64::try_from(count).unwrap_or(u64::MAX));
        tracing::warn!(
            from = owner,
            payments = u.payments.len(),
            refunds = u.refunds.len(),
            requests = u.in_flight.len(),
            reversals = u.reversals.len(),
            "journal lease: took over the unresolved records of an instance whose lease expired"
        );
        for r in &u.reversals {
            let link = if self.inner.links.len() == 1 {
                self.inner.links.values().next()
            } else {
                self.inner.links.values().find(|l| l.carries(r))
            };
            match link.map(|l| l.resume(r)) {
                Some(Ok(())) => {}
                Some(Err(e)) => tracing::error!(
                    reversal_id = r.id.0,
                    action = "resolve it with `qrbridge admin review`",
                    "taken-over reversal cannot be driven: {e}"
                ),
                None => tracing::error!(
                    reversal_id = r.id.0,
                    action = "configure its acquirer on this instance, or resolve it by hand",
                    "taken-over reversal is for no acquirer link of this instance"
                ),
            }
        }
        // A reversal already resolved when the payment is looked at settles it at once; one
        // still running is tracked (its resolution moves the payment on).
        for p in &u.payments {
            if let Some(id) = p.reversal.as_ref().and_then(|r| r.reversal_id) {
                self.track(
                    crate::acquirer::reversal::ReversalId(id),
                    Reverses::Payment(p.id),
                );
            }
        }
        match self.recover(u).await {
            Ok(report) => {
                tracing::info!(from = owner, ?report, "journal lease: takeover recovered")
            }
            Err(e) => tracing::error!(
                from = owner,
                action = "the records stay this instance's; the next restart recovers them",
                "journal lease: recovering taken-over records: {e}"
            ),
        }
    }
}
