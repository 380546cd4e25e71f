//! The watchdogs, run from the main thread's supervision loop.
//!
//! Software: a stream whose state is `streaming` but that has delivered no
//! frame for `[system] stream_timeout_s` (default 20 s) has its session
//! ended and reconnected, logged and counted (`watchdog_restarts` in the
//! stream's status). The RTSP client already ends a session that receives
//! no video packet for 10 s; the default is twice that, so that the client's
//! more precise error wins when a camera simply goes quiet, and this one
//! catches what the client cannot see: packets that never make a frame,
//! or a session stuck anywhere else. A stream thread that does not act on
//! the kick is hung; that is the hardware watchdog's business.
//!
//! Hardware (`[system] hw_watchdog = "/dev/watchdog"`, off by default):
//! the device is opened at start (which arms it) and written to once a
//! second while everything recording depends on is healthy:
//! - the writer thread answers a probe (a no-op command, handled on its
//!   next loop turn) within `hw_watchdog_stall_s`; a writer that fails
//!   (disk full, I/O errors) but keeps turning still counts as healthy,
//!   since a reboot does not mend a dead disk and a reboot loop would end
//!   the live view too;
//! - no stream is stuck: `streaming` without a frame, or `connecting`
//!   since start, for longer than `hw_watchdog_stall_s` (plus a minute for
//!   connecting, which has its own request timeouts), i.e. a stream thread
//!   the software watchdog could not restart.
//!
//! Otherwise petting stops (logged once), and the board reboots when the
//! device's own timeout runs out. On a clean shutdown the magic character
//! `V` is written before closing, which disarms drivers that support it
//! ("magic close"); after an unclean one the device is left armed.

use crate::store::writer::WriterCommand;
use crate::stream::{StreamState, StreamStatus};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the hardware watchdog is petted: well within any driver's
/// timeout (typically 5 to 60 s).
pub const PET_EVERY: Duration = Duration::from_secs(1);
/// Connecting has its own request timeouts (several of 10 s each); a
/// stream is only stuck there after this much more than the stall bound.
const CONNECT_GRACE: Duration = Duration::from_secs(60);

/// The software watchdog.
pub struct SoftWatchdog {
    timeout: Duration,
}

impl SoftWatchdog {
    pub fn new(timeout: Duration) -> SoftWatchdog {
        SoftWatchdog { timeout }
    }

    /// Kicks every stream that is streaming but has delivered no frame for
    /// the timeout (at most once per timeout each); returns how many.
    pub fn check(&self, statuses: &[Arc<StreamStatus>]) -> u32 {
        let mut n = 0;
        for s in statuses {
            let (state, since) = s.state_for();
            if state != StreamState::Streaming {
                continue;
            }
            let silent = s.since_last_frame().unwrap_or(since);
            if silent < self.timeout || s.since_kick().is_some_and(|k| k < self.timeout) {
                continue;
            }
            log::warn!(
                "{}: watchdog: streaming but no frame for {:.1} s; restarting its session",
                s.label(),
                silent.as_secs_f32()
            );
            s.kick();
            n += 1;
        }
        n
    }
}

/// Why a stream counts as stuck for the hardware watchdog, if it does.
fn stream_stuck(s: &StreamStatus, stall: Duration) -> Option<String> {
    let (state, since) = s.state_for();
    match state {
        StreamState::Streaming => {
            let silent = s.since_last_frame().unwrap_or(since);
            (silent > stall).then(|| {
                format!(
                    "{} streams but has delivered no frame for {} s",
                    s.label(),
                    silent.as_secs()
                )
            })
        }
        StreamState::Connecting => (since > stall + CONNECT_GRACE).then(|| {
            format!(
                "{} has been connecting for {} s",
                s.label(),
                since.as_secs()
            )
        }),
        _ => None,
    }
}

/// The hardware watchdog device, and what it watches.
pub struct HwWatchdog {
    path: PathBuf,
    file: std::fs::File,
    writer: mpsc::Sender<WriterCommand>,
    /// The probe in flight, if any.
    probe: Option<mpsc::Receiver<Option<crate::arena::RingReader>>>,
    writer_answered: Instant,
    stall: Duration,
    pet_every: Duration,
    last_pet: Option<Instant>,
    /// Why petting stopped, while it is stopped (logged on change).
    not_petting: Option<String>,
    pets: u32,
}

impl HwWatchdog {
    /// Opens (and so arms) the device at `path`. `writer` reaches the
    /// writer thread; `stall` is `hw_watchdog_stall_s`.
    pub fn open(
        path: &Path,
        writer: mpsc::Sender<WriterCommand>,
        stall: Duration,
        pet_every: Duration,
    ) -> std::io::Result<HwWatchdog> {
        let file = std::fs::OpenOptions::new().write(true).open(path)?;
        log::info!(
            "hw watchdog: {} opened; petted every {} ms while the writer and the streams are healthy",
            path.display(),
            pet_every.as_millis()
        );
        Ok(HwWatchdog {
            path: path.to_owned(),
            file,
            writer,
            probe: None,
            writer_answered: Instant::now(),
            stall,
            pet_every,
            last_pet: None,
            not_petting: None,
            pets: 0,
        })
    }

    /// How many times it was petted.
    pub fn pets(&self) -> u32 {
        self.pets
    }

    /// Whether it is petting now.
    pub fn petting(&self) -> bool {
        self.not_petting.is_none()
    }

    /// Checks the writer's probe; sends the next one.
    fn probe_writer(&mut self) -> Result<(), String> {
        if let Some(rx) = &self.probe {
            match rx.try_recv() {
                Ok(_) => {
                    self.writer_answered = Instant::now();
                    self.probe = None;
                }
                Err(mpsc::TryRecvError::Empty) => {}
                Err(mpsc::TryRecvError::Disconnected) => {
                    return Err("the writer thread has ended".into())
                }
            }
        }
        if self.probe.is_none() {
            let (tx, rx) = mpsc::channel();
            // Retiring a stream that cannot exist (camera names are never
            // empty) changes nothing and is answered on the writer's next
            // loop turn: a liveness probe.
            let cmd = WriterCommand::Retire {
                camera: String::new(),
                kind: "main",
                reply: tx,
            };
            if self.writer.send(cmd).is_err() {
                return Err("the writer thread has ended".into());
            }
            self.probe = Some(rx);
        }
        let quiet = self.writer_answered.elapsed();
        if quiet > self.stall {
            return Err(format!(
                "the writer has not answered for {} s",
                quiet.as_secs()
            ));
        }
        Ok(())
    }

    /// Call often (the supervision loop's tick): pets the device once per
    /// `pet_every` while everything is healthy.
    pub fn tick(&mut self, statuses: &[Arc<StreamStatus>]) {
        if self.last_pet.is_some_and(|t| t.elapsed() < self.pet_every) {
            return;
        }
        let health = self.probe_writer().and_then(|()| {
            match statuses.iter().find_map(|s| stream_stuck(s, self.stall)) {
                Some(why) => Err(why),
                None => Ok(()),
            }
        });
        match health {
            Ok(()) => {
                if let Some(why) = self.not_petting.take() {
                    log::warn!("hw watchdog: healthy again ({why} no longer); petting again");
                }
                // Any write pets; the byte is not the magic 'V'.
                match self.file.write_all(b"\0") {
                    Ok(()) => self.pets = self.pets.wrapping_add(1),
                    Err(e) => log::error!("hw watchdog: cannot write {}: {e}", self.path.display()),
                }
                self.last_pet = Some(Instant::now());
            }
            Err(why) => {
                if self.not_petting.as_deref() != Some(why.as_str()) {
                    log::error!(
                        "hw watchdog: not petting {}: {why}; the board resets when it times out",
                        self.path.display()
                    );
                    self.not_petting = Some(why);
                }
                // Checked again at the next tick, not only a second later.
                self.last_pet = None;
            }
        }
    }

    /// Clean shutdown: writes the magic `V` (drivers that support it then
    /// disarm on close) and closes the device.
    pub fn disarm(mut self) {
        match self.file.write_all(b"V") {
            Ok(()) => log::info!("hw watchdog: {} disarmed", self.path.display()),
            Err(e) => log::error!("hw watchdog: cannot disarm {}: {e}", self.path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StreamKind;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn soft_watchdog_kicks_a_silent_streaming_stream_once_per_timeout() {
        let s = Arc::new(StreamStatus::new("cam", StreamKind::Main));
        let w = SoftWatchdog::new(Duration::from_millis(100));
        let all = std::slice::from_ref(&s);
        // Connecting: not the software watchdog's business.
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(w.check(all), 0);
        s.count_frame(100, true);
        assert_eq!(w.check(all), 0);
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(w.check(all), 1);
        // Not again before another timeout has passed.
        assert_eq!(w.check(all), 0);
        assert_eq!(s.snapshot().watchdog_restarts, 1);
        // The stream's thread receives the kick.
        assert!(s.kicks().try_recv().is_ok());
        // A stream that is reconnecting is left alone.
        s.set_state(StreamState::Reconnecting);
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(w.check(all), 0);
    }

    fn temp_file(name: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("vigil-wd-{name}-{}", std::process::id()));
        std::fs::write(&p, b"").unwrap();
        p
    }

    #[test]
    fn hw_watchdog_pets_while_the_writer_answers_and_disarms() {
        let path = temp_file("pets");
        let (tx, rx) = mpsc::channel::<WriterCommand>();
        let answering = Arc::new(AtomicBool::new(true));
        let a = answering.clone();
        // A stand-in for the writer's loop: answers while `answering`.
        let writer = std::thread::spawn(move || {
            let mut held = Vec::new();
            while let Ok(cmd) = rx.recv() {
                if let WriterCommand::Retire { reply, .. } = cmd {
                    if a.load(Ordering::SeqCst) {
                        let _ = reply.send(None);
                    } else {
                        held.push(reply);
                    }
                }
            }
        });
        let stall = Duration::from_millis(300);
        let mut wd = HwWatchdog::open(&path, tx, stall, Duration::from_millis(20)).unwrap();
        let status = Arc::new(StreamStatus::new("cam", StreamKind::Main));
        status.count_frame(10, true);
        let statuses = [status.clone()];
        let deadline = Instant::now() + Duration::from_secs(10);
        while wd.pets() < 10 && Instant::now() < deadline {
            wd.tick(&statuses);
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(wd.pets() >= 10 && wd.petting());
        let len = |p: &Path| std::fs::metadata(p).unwrap().len();
        assert_eq!(len(&path), u64::from(wd.pets()));

        // The writer stops answering: petting stops within the stall bound
        // (plus a probe's turn), and the file stops growing.
        answering.store(false, Ordering::SeqCst);
        let stopped = Instant::now();
        while wd.petting() && Instant::now() < deadline {
            wd.tick(&statuses);
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(!wd.petting());
        assert!(stopped.elapsed() < stall + Duration::from_millis(500));
        let frozen = len(&path);
        for _ in 0..20 {
            wd.tick(&statuses);
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(len(&path), frozen);
        wd.disarm();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.last(), Some(&b'V'));
        assert_eq!(bytes.iter().filter(|&&b| b == b'V').count(), 1);
        writer.join().unwrap();
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_stuck_stream_stops_the_petting() {
        let s = StreamStatus::new("cam", StreamKind::Main);
        s.count_frame(10, true);
        assert_eq!(stream_stuck(&s, Duration::from_millis(50)), None);
        std::thread::sleep(Duration::from_millis(80));
        let why = stream_stuck(&s, Duration::from_millis(50)).unwrap();
        assert!(why.contains("cam/main"), "{why}");
        s.set_state(StreamState::Reconnecting);
        assert_eq!(stream_stuck(&s, Duration::from_millis(50)), None);
    }
}
