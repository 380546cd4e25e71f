//! Streams added and retired while the writer runs (cameras changed
//! while recording, docs/storage.md): the command channel and what each
//! command does.

use super::{err, Writer, WriterCommand, WriterError, WriterStream, WriterStreamState};
use crate::arena::RingReader;
use crate::time::now_90k;
use std::sync::mpsc;

impl Writer {
    /// A sender of commands to this writer (streams added and retired
    /// while it runs). Call before [`Writer::run`]; a second call replaces
    /// the first channel.
    pub fn commands(&mut self) -> mpsc::Sender<WriterCommand> {
        let (tx, rx) = mpsc::channel();
        self.commands = Some(rx);
        tx
    }

    /// Carries out the commands that arrived.
    pub(super) fn take_commands(&mut self) {
        loop {
            let Some(cmd) = self.commands.as_ref().and_then(|rx| rx.try_recv().ok()) else {
                return;
            };
            match cmd {
                WriterCommand::Add(s, reply) => {
                    let r = self.add_stream(s).map_err(|e| e.0);
                    let _ = reply.send(r);
                }
                WriterCommand::Retire {
                    camera,
                    kind,
                    reply,
                } => {
                    let ring = self.retire_stream(&camera, kind);
                    let _ = reply.send(ring);
                }
            }
        }
    }

    /// Starts draining `s`, in its place by priority.
    pub fn add_stream(&mut self, mut s: WriterStream) -> Result<(), WriterError> {
        s.stream_id = self.db.stream_id(&s.camera, s.kind).map_err(err("index"))?;
        log::info!("writer: {} added", s.label);
        // After the streams of the same priority: the order of `new`.
        let at = self
            .streams
            .iter()
            .position(|st| st.stream.priority < s.priority)
            .unwrap_or(self.streams.len());
        self.streams.insert(at, WriterStreamState::new(s));
        Ok(())
    }

    /// Writes out and closes stream (`camera`, `kind`) and gives its ring
    /// end back. Its producer must have stopped: what it still pushed
    /// afterwards would be left in the ring, unwritten.
    pub fn retire_stream(&mut self, camera: &str, kind: &str) -> Option<RingReader> {
        let i = self
            .streams
            .iter()
            .position(|st| st.stream.camera == camera && st.stream.kind == kind)?;
        self.closing_at = Some(now_90k());
        let written = self.write_stream(i, true);
        self.closing_at = None;
        if let Err(e) = written {
            // The disk fails: the frames still in the ring are lost, as
            // they would be at shutdown; the recording closes where the
            // last record ended.
            self.fail(e);
        }
        self.close_recording(i, false);
        let st = self.streams.remove(i);
        log::info!("writer: {} retired", st.stream.label);
        Some(st.stream.ring)
    }
}
