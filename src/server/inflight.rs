//! Counting work in flight (handler tasks, connections) so that shutdown can wait for it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

/// A counter of running tasks that can be awaited down to zero. Cloning shares the counter.
#[derive(Debug, Clone)]
pub struct InFlight {
    count: Arc<watch::Sender<usize>>,
}

impl Default for InFlight {
    fn default() -> Self {
        InFlight::new()
    }
}

impl InFlight {
    /// Zero tasks.
    pub fn new() -> Self {
        InFlight {
            count: Arc::new(watch::channel(0).0),
        }
    }

    /// Counts one task until the guard is dropped.
    pub(crate) fn enter(&self) -> InFlightGuard {
        self.count.send_modify(|n| *n += 1);
        InFlightGuard {
            count: self.count.clone(),
        }
    }

    /// How many are running now.
    pub fn count(&self) -> usize {
        *self.count.borrow()
    }

    /// Waits until none is running.
    pub async fn wait_idle(&self) {
        let mut rx = self.count.subscribe();
        // The sender lives in `self`, so `wait_for` cannot fail while we hold it.
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    /// Waits until none is running or `limit` passed; true when idle.
    pub async fn wait_idle_within(&self, limit: Duration) -> bool {
        tokio::time::timeout(limit, self.wait_idle()).await.is_ok()
    }
}

/// Decrements the counter when dropped (also when the task panics or is aborted).
#[derive(Debug)]
pub(crate) struct InFlightGuard {
    count: Arc<watch::Sender<usize>>,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.count.send_modify(|n| *n = n.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_after_every_guard_is_dropped() {
        let f = InFlight::new();
        let a = f.enter();
        let b = f.enter();
        assert_eq!(f.count(), 2);
        drop(a);
        assert!(!f.wait_idle_within(Duration::from_millis(10)).await);
        drop(b);
        assert!(f.wait_idle_within(Duration::from_secs(5)).await);
    }
}
