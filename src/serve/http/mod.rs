//! HTTP/1.1 itself (RFC 9112): accepting connections, reading requests,
//! writing answers. It knows nothing of Vigil's paths: whatever is above
//! (`serve::router`) is a [`Handler`] given to [`Server::start`], which
//! sees a parsed [`Request`] and gives back a [`Reply`].
//!
//! `parse` reads request heads, `response` writes answers, `server` runs
//! the accept thread and the connection threads, `connection` serves one
//! connection, `permit` bounds the long answers, `limits` holds every
//! bound named below.
//!
//! Threads and memory are bounded for a 256 MB board:
//! - One accept thread. Each connection is served by one connection
//!   thread from a pool of at most `max_threads` (`http.max_clients` plus
//!   a few), with a small stack. Threads are started on demand and end
//!   after [`POOL_IDLE`] without work, so an idle server holds none.
//! - When every thread is taken, a new connection waits (at most
//!   `MAX_QUEUE` of them, for at most `QUEUE_WAIT`): for a thread to
//!   finish, or for room made by closing a connection idling between
//!   keep-alive requests (its client reconnects, as HTTP allows), else one
//!   that has been trickling its request head for over `SLOW_HEAD`
//!   (answered 503). Beyond, it gets a `503` from the accept thread and
//!   is closed. Never a thread more.
//! - A request head is at most [`MAX_HEAD`] bytes and [`MAX_HEADERS`]
//!   fields, read into one buffer per thread; a body at most [`MAX_BODY`]
//!   bytes (a larger declared one is refused with `413` unread).
//! - Timeouts set on our own sockets: [`IDLE_TIMEOUT`] waiting for a
//!   request, [`HEAD_TIMEOUT`] for a whole head (or body) once its first
//!   byte came, so a byte-a-second trickle is cut; [`WRITE_TIMEOUT`] for
//!   a client that takes nothing.
//!
//! The parser ([`parse_request`]) is pure, bytes in and a result out, so
//! it can be fuzzed; every error it finds is answered and then the
//! connection closes (after an error the rest of the stream cannot be
//! trusted to be framed).
//!
//! Decisions where RFC 9112 leaves a choice:
//! - A bare LF ends a line like CRLF (2.2 allows it; old scripts send it);
//!   a CR anywhere else in a line is refused (400).
//! - Line folding (obs-fold, 5.2) and whitespace before a field name are
//!   refused (400) rather than unfolded: no client of ours sends them.
//! - Any `Transfer-Encoding` in a request is refused: `411` for chunked,
//!   `501` for others (6.1); our API takes only small bodies with a
//!   length, and not decoding chunked bodies leaves no way to disagree
//!   with a proxy about where a request ends.
//! - `Content-Length` repeated (or as a list) with one value is accepted,
//!   with different values refused (400) (6.3).
//! - Versions: HTTP/1.0 and HTTP/1.1; any other well-formed `HTTP/x.y`
//!   (HTTP/2.0, the HTTP/2 preface, HTTP/0.9) is `505`, anything else 400.
//! - `Host` is not required (HTTP/1.0 clients and simple scripts omit it), but
//!   two of them are refused (400).
//! - `Expect: 100-continue` gets its `100 Continue` once the head passed
//!   (a body over the bound gets its 413 instead); other expectations 417.

mod connection;
mod limits;
mod parse;
mod permit;
mod response;
mod server;
#[cfg(test)]
mod tests;

pub use limits::{
    HEAD_TIMEOUT, IDLE_TIMEOUT, MAX_BODY, MAX_HEAD, MAX_HEADERS, POOL_IDLE, STACK_SIZE,
    WRITE_TIMEOUT,
};
pub use parse::{parse_request, HttpError, Request};
pub use permit::{Permit, Permits};
pub use response::{reason, Body, Reply};
pub use server::{Handler, Server};
