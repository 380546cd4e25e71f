//! On-disk format of pool files and records. STUB: replaced by the format brief.
