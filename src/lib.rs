//! Vigil: a lean network video recorder for camera-class hardware.
//!
//! A frame's path, from the camera's socket to the disk and to a viewer:
//!
//! ```text
//! socket -> rtsp (client session; the ingest thread receives every TCP
//!           session's RTP) -> media (depacketizer: whole access units)
//!        -> arena (one fixed buffer, a ring per stream)
//!        -> store (writer thread: pool files + SQLite index)
//!        serve reads the index, the pools and the rings (live)
//! ```
//!
//! Modules depend only on modules listed before them here (the layers,
//! bottom first; `tests/layering.rs` fails on an import against this
//! order, test code excepted):
//!
//! 1. `time`, `sockopt`, `signals`, `logging`, `detach`: the process's
//!    clock, sockets, signals, log and daemonising, apart from the
//!    recording pipeline.
//! 2. `config`: the config file, parsed and written back.
//! 3. `arena`: the fixed buffer and its per-stream rings.
//! 4. `stream`: the contract every layer shares about a stream (RTP
//!    packet, frame, sink, stop token, status, the receive clock).
//! 5. `media`: depacketizers, RTP payloads into frames.
//! 6. `rtsp`: the RTSP client session and the receiving of RTP.
//! 7. `store`: pool files, the SQLite index and the writer thread.
//! 8. `camera`: the built-in simulated camera (an RTSP *server*) used by
//!    `vigil demo`, the tests and the benchmarks.
//! 9. `daemon`: one thread per stream, the recorder and its controls.
//! 10. `auth`: users, passwords and sessions.
//! 11. `serve`: HTTP: the page, the JSON API, playback and live video.
//! 12. `cli`: the command line's arguments, parsed.
//! 13. `commands`: what each command does.

pub mod arena;
pub mod auth;
pub mod camera;
pub mod cli;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod detach;
pub mod logging;
pub mod media;
pub mod rtsp;
pub mod serve;
pub mod signals;
pub mod sockopt;
pub mod store;
pub mod stream;
pub mod time;

// The ABI traps of the static musl cross builds (run under qemu by `make test`).
#[cfg(test)]
mod portability_tests;
