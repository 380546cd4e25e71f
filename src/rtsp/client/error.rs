//! Why a session ended: the error the stream thread logs, shows in the
//! stream status and decides its backoff by.

use super::*;

/// Why a session ended.
#[derive(Debug)]
pub enum SessionError {
    BadUrl(String),
    Connect(String),
    Conn(ConnError),
    Auth(AuthError),
    /// A request answered with an error status.
    Status {
        method: &'static str,
        status: u16,
        reason: String,
    },
    Timeout(&'static str),
    TooManyRedirects,
    Sdp(SdpError),
    NoVideoTrack(String),
    /// The camera's answers break the protocol in a way we cannot work around.
    Protocol(String),
    NoData(Duration),
    /// Packets came, but nothing in them was video (every frame dropped):
    /// this many frames in that time.
    NotVideo(Duration, u64),
    /// The camera said goodbye (RTCP BYE): its stream ended.
    Bye,
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::BadUrl(s) => write!(f, "bad camera URL: {s}"),
            SessionError::Connect(s) => write!(f, "cannot connect: {s}"),
            SessionError::Conn(e) => e.fmt(f),
            SessionError::Auth(e) => e.fmt(f),
            SessionError::Status {
                method,
                status,
                reason,
            } => write!(f, "{method} refused by the camera: {status} {reason}"),
            SessionError::Timeout(what) => write!(f, "no answer from the camera to {what}"),
            SessionError::TooManyRedirects => f.write_str("too many redirects"),
            SessionError::Sdp(e) => e.fmt(f),
            SessionError::NoVideoTrack(found) => {
                write!(
                    f,
                    "the camera offers no H.264, H.265 or JPEG video track ({found})"
                )
            }
            SessionError::Protocol(s) => write!(f, "protocol error: {s}"),
            SessionError::NoData(d) => write!(f, "no video data for {} s", d.as_secs()),
            SessionError::NotVideo(d, n) => write!(
                f,
                "the camera sends data but no valid video: {n} frames dropped in {} s",
                d.as_secs()
            ),
            SessionError::Bye => f.write_str("the camera ended the stream (RTCP BYE)"),
        }
    }
}

impl std::error::Error for SessionError {}

impl From<ConnError> for SessionError {
    fn from(e: ConnError) -> Self {
        SessionError::Conn(e)
    }
}
