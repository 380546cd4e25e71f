//! Serving recorded and live video over HTTP (issue 4, in progress).

pub mod export;
pub mod http;
pub mod mp4;
pub mod view;
