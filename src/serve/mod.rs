//! Serving recorded and live video over HTTP (issue 4, in progress).

pub mod mp4;
