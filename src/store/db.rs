//! The SQLite index. STUB: replaced by the db brief.
