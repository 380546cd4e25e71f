//! A stop signal that async code can await and sync code can poll.

use smol::channel::{bounded, Receiver, Sender};

/// Held by whoever may stop the work; `stop()` (or drop) wakes every token.
pub struct StopSource {
    tx: Sender<()>,
    rx: Receiver<()>,
}

/// Held by the work; cheap to clone.
#[derive(Clone)]
pub struct StopToken {
    rx: Receiver<()>,
}

impl Default for StopSource {
    fn default() -> Self {
        Self::new()
    }
}

impl StopSource {
    pub fn new() -> Self {
        let (tx, rx) = bounded(1);
        StopSource { tx, rx }
    }

    pub fn token(&self) -> StopToken {
        StopToken {
            rx: self.rx.clone(),
        }
    }

    pub fn stop(&self) {
        self.tx.close();
    }
}

impl Drop for StopSource {
    fn drop(&mut self) {
        self.tx.close();
    }
}

impl StopToken {
    pub fn is_stopped(&self) -> bool {
        self.rx.is_closed()
    }

    /// Completes once stop was requested.
    pub async fn stopped(&self) {
        // Nothing is ever sent: recv() returns only when the channel closes.
        let _ = self.rx.recv().await;
    }
}
