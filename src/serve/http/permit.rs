//! The budget of long answers (video for as long as the client reads):
//! at most `http.max_clients` at once, each holding a [`Permit`] taken
//! before any work, so that a refused client costs nothing.

use super::Reply;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// Counts long answers against `max_clients`.
pub struct Permits {
    max: u32,
    active: Arc<AtomicU32>,
}

/// One long answer in progress; released when dropped.
pub struct Permit {
    active: Arc<AtomicU32>,
}

impl Permits {
    pub fn new(max: u32) -> Permits {
        Permits {
            max,
            active: Arc::new(AtomicU32::new(0)),
        }
    }

    /// A permit, or `None` when `max_clients` long answers are running.
    pub fn try_acquire(&self) -> Option<Permit> {
        self.active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| Permit {
                active: self.active.clone(),
            })
    }

    pub fn active(&self) -> u32 {
        self.active.load(Ordering::Acquire)
    }

    /// The answer when no permit is left.
    pub fn busy(&self) -> Reply {
        Reply::error(
            503,
            &format!(
                "too many clients: {} video streams are already being served (http.max_clients)",
                self.max
            ),
        )
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.active.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_count_to_max_and_release_on_drop() {
        let p = Permits::new(2);
        let a = p.try_acquire().unwrap();
        let b = p.try_acquire().unwrap();
        assert!(p.try_acquire().is_none());
        assert_eq!(p.active(), 2);
        drop(a);
        let c = p.try_acquire().unwrap();
        assert!(p.try_acquire().is_none());
        drop((b, c));
        assert_eq!(p.active(), 0);
        assert!(Permits::new(0).try_acquire().is_none());
        assert_eq!(p.busy().status, 503);
    }
}
