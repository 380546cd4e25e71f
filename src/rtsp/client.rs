//! The RTSP client session.
// Placeholder; the real session is being written.

use crate::config::Transport;
use crate::daemon::{FrameSink, StopToken, StreamStatus};
use std::fmt;

#[derive(Clone, Debug)]
pub struct SessionOptions {
    pub url: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub transport: Transport,
    pub max_frame_bytes: u32,
    pub label: String,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            url: String::new(),
            username: None,
            password: None,
            transport: Transport::Tcp,
            max_frame_bytes: 2 << 20,
            label: String::new(),
        }
    }
}

#[derive(Debug)]
pub struct SessionError(pub String);

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub async fn run_session(
    _opts: &SessionOptions,
    _status: &StreamStatus,
    _sink: &mut dyn FrameSink,
    _stop: &StopToken,
) -> Result<(), SessionError> {
    Err(SessionError("not implemented".into()))
}
