//! Integer socket options the standard library has no setter for
//! (`SO_RCVLOWAT` for paced ingest, `SO_SNDBUF` for HTTP clients and the
//! built-in camera).

use std::io;
use std::os::fd::RawFd;

/// Sets the `SOL_SOCKET` option `option` of socket `fd` to `value`.
pub fn set(fd: RawFd, option: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: setsockopt with a pointer to a c_int and its exact size; an
    // invalid descriptor is an error return, not undefined behaviour.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
