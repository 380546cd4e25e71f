//! Sleeping until a socket is ready or a deadline passes, without
//! re-registering timers that did not change.

use async_io::{Async, Timer};
use futures_lite::future;
use std::time::Instant;

/// A timer that is only re-registered with the reactor when its deadline
/// changes (each registration costs the reactor a wake-up).
pub(super) struct ArmedTimer {
    pub(super) timer: Timer,
    pub(super) armed: Option<Instant>,
}

impl ArmedTimer {
    pub(super) fn new() -> Self {
        ArmedTimer {
            timer: Timer::never(),
            armed: None,
        }
    }

    pub(super) fn set_at(&mut self, deadline: Instant, now: Instant) {
        // A deadline still in the future has not fired yet, so the timer is
        // still armed for it; one in the past may have fired: re-arm.
        if self.armed != Some(deadline) || deadline <= now {
            self.timer.set_at(deadline);
            self.armed = Some(deadline);
        }
    }
}

/// Sleeps until `stream` is readable (if `read`), writable (if `write`) or
/// `timer` fires; true if it is readable. The caller then retries
/// everything else.
pub(super) async fn wait_io<T>(
    stream: &Async<T>,
    read: bool,
    write: bool,
    timer: &mut Timer,
) -> bool {
    let readable = async {
        if read {
            let _ = stream.readable().await;
            true
        } else {
            future::pending().await
        }
    };
    let writable = async {
        if write {
            let _ = stream.writable().await;
            false
        } else {
            future::pending().await
        }
    };
    future::or(
        readable,
        future::or(writable, async {
            timer.await;
            false
        }),
    )
    .await
}
