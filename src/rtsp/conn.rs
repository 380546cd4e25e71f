//! The RTSP connection: framing of RTSP messages and interleaved data.
