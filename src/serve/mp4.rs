//! On-demand .mp4 files. STUB: replaced by the mp4 brief.
