//! Reversals seen from the pipeline: the journal is the link's durable [`ReversalStore`]; this
//! wrapper tells the pipeline when a reversal is resolved (0410 or manual review), so the payment
//! (or refund) it belongs to moves REVERSING → REVERSED / CANCELLED (or MANUAL_REVIEW).
//!
//! The notice is a hint, not the truth: a reversal can be resolved before the pipeline has recorded
//! which payment it belongs to, so every reader of a REVERSING payment also asks the store
//! (`Gateway::settle`). Both paths apply the same journal event; the second is refused as an
//! illegal transition and ignored.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::acquirer::reversal::{
    Attempt, NewReversal, ReversalId, ReversalRecord, ReversalState, ReversalStore, StoreError,
};
use crate::journal::Journal;

/// The journal as the link's reversal store, reporting resolutions on a channel.
pub struct WatchedStore {
    journal: Arc<dyn Journal>,
    resolved: mpsc::UnboundedSender<(ReversalId, ReversalState)>,
}

impl WatchedStore {
    /// The store and the receiving end of its resolution notices.
    pub fn new(
        journal: Arc<dyn Journal>,
    ) -> (
        Arc<WatchedStore>,
        mpsc::UnboundedReceiver<(ReversalId, ReversalState)>,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Arc::new(WatchedStore {
                journal,
                resolved: tx,
            }),
            rx,
        )
    }
}

impl ReversalStore for WatchedStore {
    fn enqueue(&self, reversal: NewReversal) -> Result<ReversalId, StoreError> {
        self.journal.enqueue(reversal)
    }

    fn record_attempt(&self, id: ReversalId, attempt: Attempt) -> Result<(), StoreError> {
        self.journal.record_attempt(id, attempt)
    }

    fn resolve(&self, id: ReversalId, state: ReversalState) -> Result<bool, StoreError> {
        let changed = self.journal.resolve(id, state.clone())?;
        if changed {
            // The receiver may be gone at shutdown; the journal already holds the truth.
            let _ = self.resolved.send((id, state));
        }
        Ok(changed)
    }

    fn note_late_response(&self, id: ReversalId, code: String) -> Result<(), StoreError> {
        self.journal.note_late_response(id, code)
    }

    fn get(&self, id: ReversalId) -> Result<Option<ReversalRecord>, StoreError> {
        self.journal.get(id)
    }

    fn pending(&self) -> Result<Vec<ReversalRecord>, StoreError> {
        self.journal.pending()
    }

    fn may_drive(&self, id: ReversalId) -> bool {
        self.journal.may_drive(id)
    }

    fn reserve_stans(&self, scope: &str, day: u64, count: u32) -> Result<u64, StoreError> {
        self.journal.reserve_stans(scope, day, count)
    }
}
