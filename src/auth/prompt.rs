//! Reading a new password for `vigil user`: never from the command line
//! (other users of the machine see it in `ps`, and it stays in the shell's
//! history). On a terminal it is asked twice with echo off (termios); from
//! a pipe or file, the first line of stdin is the password.

use std::io::{self, BufRead, Read, Write};
use std::os::fd::AsRawFd;

/// Longest line read from stdin: a password longer than this is refused
/// later anyway, and the read stays bounded.
const MAX_LINE: u64 = 4096;

/// Whether stdin is a terminal.
pub fn stdin_is_tty() -> bool {
    // SAFETY: isatty has no preconditions.
    unsafe { libc::isatty(io::stdin().as_raw_fd()) == 1 }
}

/// The password: asked twice on a terminal (`prompt` names whose), else
/// the first line of stdin. Errors never carry what was typed.
pub fn read_new_password(prompt: &str) -> Result<String, String> {
    if stdin_is_tty() {
        let first = ask(&format!("{prompt}: "))?;
        let again = ask("Again: ")?;
        if first != again {
            return Err("the two passwords differ; nothing changed".to_owned());
        }
        Ok(first)
    } else {
        first_line(io::stdin().lock())
    }
}

/// The first line of `r`, without its line ending.
pub fn first_line(r: impl Read) -> Result<String, String> {
    let mut line = Vec::new();
    io::BufReader::new(r.take(MAX_LINE))
        .read_until(b'\n', &mut line)
        .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    } else if line.len() as u64 >= MAX_LINE {
        return Err(format!(
            "the password line on stdin is longer than {MAX_LINE} bytes"
        ));
    }
    if line.is_empty() {
        return Err("no password on stdin (expected it on the first line)".to_owned());
    }
    String::from_utf8(line).map_err(|_| "the password on stdin is not UTF-8".to_owned())
}

/// Echo off on stdin until dropped.
struct NoEcho {
    fd: i32,
    saved: libc::termios,
}

impl NoEcho {
    fn new(fd: i32) -> io::Result<NoEcho> {
        // SAFETY: tcgetattr fills the termios it is given; zeroed is a
        // valid starting value for a plain C struct.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        if unsafe { libc::tcgetattr(fd, &mut t) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let saved = t;
        // Keep ECHONL: the newline the user types still shows, so the
        // next prompt starts on a line of its own.
        t.c_lflag &= !libc::ECHO;
        t.c_lflag |= libc::ECHONL;
        // SAFETY: a termios read from this same descriptor, modified.
        if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &t) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(NoEcho { fd, saved })
    }
}

impl Drop for NoEcho {
    fn drop(&mut self) {
        // SAFETY: restores the settings read in `new`.
        unsafe {
            libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved);
        }
    }
}

fn ask(prompt: &str) -> Result<String, String> {
    let mut err = io::stderr();
    let _ = err.write_all(prompt.as_bytes());
    let _ = err.flush();
    let stdin = io::stdin();
    let guard = NoEcho::new(stdin.as_raw_fd()).map_err(|e| format!("terminal: {e}"))?;
    let line = first_line(stdin.lock());
    drop(guard);
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_line_of_stdin() {
        assert_eq!(first_line(&b"secret pw\nrest"[..]).unwrap(), "secret pw");
        assert_eq!(first_line(&b"secret pw\r\n"[..]).unwrap(), "secret pw");
        assert_eq!(first_line(&b"no newline"[..]).unwrap(), "no newline");
        assert!(first_line(&b""[..]).is_err());
        assert!(first_line(&b"\n"[..]).is_err());
        assert!(first_line(&b"\xff\xfe\n"[..]).is_err());
        let long = vec![b'x'; 10_000];
        let e = first_line(&long[..]).unwrap_err();
        assert!(!e.contains("xxx"));
        // Errors never quote the input.
        let e = first_line(&b"\xffsecret\n"[..]).unwrap_err();
        assert!(!e.contains("secret"));
    }
}
