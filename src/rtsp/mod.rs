//! RTSP client (RFC 2326) on top of `rtsp-types`: the session state
//! machine, authentication, SDP, RTP/RTCP, and the camera quirks that real
//! devices need (each documented next to the code that handles it).

pub mod auth;
pub mod client;
pub mod conn;
pub mod ingest;
pub mod rtcp;
pub mod rtp;
pub mod sdp;
pub mod url;
