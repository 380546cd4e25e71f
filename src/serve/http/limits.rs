//! The bounds the connection layer keeps on memory, threads and time, so
//! that a 256 MB board survives any client. Each is explained where it is
//! declared; `mod.rs` says how they work together.

use std::time::Duration;

/// Longest request head (request line and fields) accepted.
pub const MAX_HEAD: usize = 8 * 1024;
/// Most header fields in a request.
pub const MAX_HEADERS: usize = 64;
/// Empty lines ignored before a request line.
pub(super) const MAX_EMPTY_LINES: usize = 2;
/// Request bodies larger than this are refused (413) without being read:
/// our routes take small JSON documents.
pub const MAX_BODY: u64 = 64 * 1024;
/// How long a connection may wait for its next request (or its first).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a request head may take once its first byte came, and a body
/// once its head came.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// A client that takes no bytes for this long is cut off: its write fails
/// and its connection closes, freeing the thread and the permit.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(20);
/// The kernel send buffer of each client connection. Left to itself Linux
/// grows it to 4 MiB per connection; `max_clients` of those would be a
/// large part of a 256 MB board's memory. This is plenty for video on a
/// LAN (it allows 256 MB/s at 1 ms round trip).
pub(super) const SEND_BUFFER: libc::c_int = 256 * 1024;
/// Stack of a connection thread. Measured (high-water mark, debug build):
/// every route of the integration tests, logins with Argon2id included,
/// under 22 KiB; the deepest, a JSON body nested as deep as serde_json
/// goes (128), 93 KiB. See `connection_threads_have_room_on_their_stack`.
pub const STACK_SIZE: usize = 256 * 1024;
/// When every thread is taken, a connection that has been reading a
/// request head for this long is closed (503) to make room: a client
/// sends its head at once; a slowloris client trickles it.
pub(super) const SLOW_HEAD: Duration = Duration::from_secs(1);
/// How often a thread reading a request head looks whether it was chosen
/// to make room (it is not woken by a shutdown: a socket closed with the
/// client's bytes unread sends a reset, which can destroy our 503).
pub(super) const EVICT_POLL: Duration = Duration::from_millis(100);
/// A connection thread without work for this long ends.
pub const POOL_IDLE: Duration = Duration::from_secs(10);
/// The copy buffer of a long answer.
pub(super) const COPY_BUFFER: usize = 32 * 1024;
/// How often the accept thread looks at the stop flag and at refused
/// connections it is closing (`stop` wakes it at once; an idle recorder
/// should not wake for nothing); and at queued connections, when there
/// are.
pub(super) const ACCEPT_POLL: Duration = Duration::from_secs(1);
pub(super) const QUEUE_POLL: Duration = Duration::from_millis(20);
/// A new connection waits this long for a thread before it is refused
/// (503): bursts are served, not refused.
pub(super) const QUEUE_WAIT: Duration = Duration::from_secs(2);
/// At most this many connections wait for a thread; beyond, 503 at once.
pub(super) const MAX_QUEUE: usize = 64;
/// After its last answer, a connection we close is read (and discarded)
/// for at most this long or this many bytes, so that the client has the
/// answer before the close (closing with unread input sends a reset,
/// which can destroy the answer on its way).
pub(super) const LINGER: Duration = Duration::from_secs(2);
pub(super) const LINGER_BYTES: usize = 256 * 1024;
/// Refused connections (503) being closed gently by the accept thread at
/// once; beyond, the oldest is closed outright. Room for a whole queue of
/// refusals plus every thread's evicted client.
pub(super) const MAX_LINGERING: usize = 128;
/// How long `stop` waits for connection threads (long answers see the
/// stop flag on their next read).
pub(super) const STOP_GRACE: Duration = Duration::from_secs(2);
