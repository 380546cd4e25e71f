//! The arena: one allocation made at start (`memory.arena_mb`), carved into
//! one byte ring per stream. Frames are written into their stream's ring
//! once, by the stream's thread; the writer thread persists them from there.
// STUB: replaced by the arena brief.
