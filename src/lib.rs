//! Vigil: a lean network video recorder for camera-class hardware.
//!
//! Data flows one way, and the modules are laid out in that order:
//!
//! ```text
//! config -> daemon (one thread per stream) -> rtsp (client session; one
//!           ingest thread receives every TCP session's RTP)
//!        -> media (depacketize into whole access units)
//!        -> arena (one fixed buffer, a ring per stream)
//!        -> store (writer thread: pool files + SQLite index)
//! ```
//!
//! `camera` is the built-in simulated camera: an RTSP *server* used by
//! `vigil demo`, the tests and the benchmarks.

pub mod arena;
pub mod auth;
pub mod camera;
pub mod cli;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod logging;
pub mod media;
pub mod rtsp;
pub mod serve;
pub mod signals;
pub mod sockopt;
pub mod store;
pub mod time;

// The ABI traps of the static musl cross builds (run under qemu by `make test`).
#[cfg(test)]
mod portability_tests;
