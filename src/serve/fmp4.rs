//! Fragmented MP4 (ISO/IEC 14496-12 movie fragments): the init segment and
//! `moof`+`mdat` fragments used by `live.mp4` and the HLS segments.
//! (STUB: comes with the playback work.)
