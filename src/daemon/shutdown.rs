//! Ordered shutdown (SIGTERM/SIGINT): HTTP stops accepting -> streams
//! stop -> the writer finalises and syncs the open recordings -> the
//! database closes. Each step runs on a thread of its own with a timeout
//! and is logged on one line with its duration; a step that overruns is
//! logged, left behind, and shutdown goes on with the next (the process
//! still exits, with status 1), so one hung component can never keep the
//! rest from finishing, or the process from ending.

use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The steps' timeouts. The writer's is the longest: its final fsync may
/// wait on a slow SD card.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(5);
pub const STREAMS_TIMEOUT: Duration = Duration::from_secs(5);
pub const WRITER_TIMEOUT: Duration = Duration::from_secs(30);
pub const DATABASE_TIMEOUT: Duration = Duration::from_secs(10);

/// The steps taken so far.
pub struct Shutdown {
    started: Instant,
    steps: u32,
    failed: Vec<&'static str>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Shutdown {
        log::info!("shutdown: starting (http -> streams -> writer -> database)");
        Shutdown {
            started: Instant::now(),
            steps: 0,
            failed: Vec::new(),
        }
    }

    /// Runs step `name` (`f`) within `timeout`: its result, or `None` when
    /// it overran (left running) or failed (`Err`, logged).
    pub fn step<T: Send + 'static>(
        &mut self,
        name: &'static str,
        timeout: Duration,
        f: impl FnOnce() -> Result<T, String> + Send + 'static,
    ) -> Option<T> {
        self.steps += 1;
        let n = self.steps;
        let t0 = Instant::now();
        let (tx, rx) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name(format!("shutdown {name}"))
            .spawn(move || {
                let _ = tx.send(f());
            });
        let result = match spawned {
            Ok(_) => rx.recv_timeout(timeout).map_err(|e| match e {
                mpsc::RecvTimeoutError::Timeout => None,
                // The step panicked.
                mpsc::RecvTimeoutError::Disconnected => Some("it panicked".to_owned()),
            }),
            Err(e) => Err(Some(format!("cannot start its thread: {e}"))),
        };
        let ms = t0.elapsed().as_millis();
        match result {
            Ok(Ok(v)) => {
                log::info!("shutdown {n}: {name}: done in {ms} ms");
                Some(v)
            }
            Ok(Err(why)) | Err(Some(why)) => {
                log::error!("shutdown {n}: {name}: failed after {ms} ms: {why}; going on");
                self.failed.push(name);
                None
            }
            Err(None) => {
                log::error!(
                    "shutdown {n}: {name}: not done within its timeout of {} ms; leaving it and going on",
                    timeout.as_millis()
                );
                self.failed.push(name);
                None
            }
        }
    }

    /// Marks step `name` as failed (a part of it that reported trouble
    /// without failing the whole step).
    pub fn fail(&mut self, name: &'static str) {
        self.failed.push(name);
    }

    /// Logs the total; true when every step finished in time and well.
    pub fn finish(self) -> bool {
        let ms = self.started.elapsed().as_millis();
        if self.failed.is_empty() {
            log::info!("shutdown: complete in {ms} ms");
            true
        } else {
            log::error!(
                "shutdown: ended in {ms} ms; incomplete: {}",
                self.failed.join(", ")
            );
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_that_overruns_is_left_and_shutdown_goes_on() {
        let mut sd = Shutdown::new();
        assert_eq!(sd.step("quick", Duration::from_secs(5), || Ok(7)), Some(7));
        let t0 = Instant::now();
        let (tx, rx) = mpsc::channel::<()>();
        // Hangs until the test lets it go.
        let r = sd.step("hung", Duration::from_millis(100), move || {
            let _ = rx.recv();
            Ok(())
        });
        assert_eq!(r, None);
        assert!(t0.elapsed() < Duration::from_secs(2));
        assert_eq!(
            sd.step("broken", Duration::from_secs(5), || Err::<(), _>(
                "disk".into()
            )),
            None
        );
        assert_eq!(sd.step("after", Duration::from_secs(5), || Ok(1)), Some(1));
        assert_eq!(sd.failed, vec!["hung", "broken"]);
        assert!(!sd.finish());
        drop(tx);
        let mut sd = Shutdown::new();
        sd.step("fine", Duration::from_secs(1), || Ok(()));
        assert!(sd.finish());
    }
}
