//! Serving recorded and live video over HTTP (issue 4, in progress).

pub mod http;
pub mod mp4;
