//! The pool files of one install: creating and pre-allocating them,
//! checking they belong to this install, entering a pool with a new
//! generation, writing and reading records, and scanning a pool for the
//! valid records it holds (recovery). Layouts are in docs/storage.md and
//! [`super::format`].
//!
//! [`Pools`] belongs to the writer thread; [`PoolReader`] is its cheap,
//! shareable read side, which detects that the writer re-entered (and so
//! may have overwritten) a pool while a reader was reading it.
//!
//! Layout: this file creates, opens and enters the pools and does their
//! positioned I/O; `scan` finds the valid records of a pool, `error` says
//! why opening or a checked read failed.

mod error;
mod scan;

pub use error::{PoolError, ReadError};
pub use scan::{Scan, ScannedRecord};

use super::format::{sync_dir, PoolHeader, POOL_HEADER_BYTES};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// The path of pool `index` in `dir`: `pool-000.bin`, ..., more digits past
/// 999.
pub fn pool_path(dir: &Path, index: u32) -> PathBuf {
    dir.join(format!("pool-{index:03}.bin"))
}

/// Smallest pool size accepted: the header and room for one small record.
pub const MIN_POOL_BYTES: u64 = 2 * POOL_HEADER_BYTES;

fn check_config(count: u32, size: u64) -> Result<(), PoolError> {
    if count == 0 {
        return Err(PoolError::Config("storage needs at least one pool".into()));
    }
    // i64: the kernel's file offsets are signed.
    if size < MIN_POOL_BYTES || size > i64::MAX as u64 {
        return Err(PoolError::Config(format!(
            "pool size {size} bytes is out of range (at least {MIN_POOL_BYTES})"
        )));
    }
    Ok(())
}

/// Checks an open pool file's size and header; returns its generation.
fn check_pool(
    path: &Path,
    file: &File,
    uuid: &[u8; 16],
    index: u32,
    size: u64,
) -> Result<u64, PoolError> {
    let io_err = |err| PoolError::Io {
        path: path.to_owned(),
        err,
    };
    let found = file.metadata().map_err(io_err)?.len();
    if found != size {
        return Err(PoolError::WrongSize {
            path: path.to_owned(),
            found,
            expected: size,
        });
    }
    let mut buf = [0u8; 64];
    file.read_exact_at(&mut buf, 0).map_err(io_err)?;
    let h = PoolHeader::decode(&buf).map_err(|err| PoolError::Header {
        path: path.to_owned(),
        err,
    })?;
    if &h.uuid != uuid {
        return Err(PoolError::OtherInstall {
            path: path.to_owned(),
            found: h.uuid,
            expected: *uuid,
        });
    }
    if h.index != index {
        return Err(PoolError::WrongIndex {
            path: path.to_owned(),
            found: h.index,
            expected: index,
        });
    }
    Ok(h.generation)
}

/// Zero-fill chunk for filesystems without fallocate.
const ZERO_CHUNK: usize = 1 << 20;

/// Writes zeros over `[from, to)` of `file`, 1 MiB at a time: the
/// pre-allocation of filesystems without fallocate (vfat, exFAT on SD
/// cards), which have no holes either, so the blocks end up allocated.
pub fn write_zeros(file: &File, from: u64, to: u64) -> io::Result<()> {
    let len = to.saturating_sub(from);
    let zeros = vec![0u8; ZERO_CHUNK.min(len.try_into().unwrap_or(ZERO_CHUNK))];
    let mut pos = from;
    while pos < to {
        let n = (to - pos).min(zeros.len() as u64) as usize;
        file.write_all_at(&zeros[..n], pos)?;
        pos += n as u64;
    }
    Ok(())
}

/// Reserves `size` bytes for `file` (which it then measures), falling back
/// to writing zeros where the filesystem cannot.
fn allocate(file: &File, size: u64) -> io::Result<()> {
    match sys::fallocate(file, size) {
        Ok(()) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::ENOSYS)) => {
            log::info!("filesystem cannot fallocate ({e}); writing zeros instead");
            write_zeros(file, 0, size)
        }
        Err(e) => Err(e),
    }
}

/// Thin wrappers over the calls std lacks, with 64-bit offsets on every
/// target: glibc's plain ones take a 32-bit `off_t` on 32-bit targets,
/// musl's are always 64-bit.
mod sys {
    use std::fs::File;
    use std::io;
    use std::os::unix::io::AsRawFd;

    #[cfg(not(target_env = "gnu"))]
    use libc::{fallocate as fallocate_raw, off_t as Off, pwritev as pwritev_raw};
    #[cfg(target_env = "gnu")]
    use libc::{fallocate64 as fallocate_raw, off64_t as Off, pwritev64 as pwritev_raw};

    fn off(v: u64) -> io::Result<Off> {
        Off::try_from(v).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too big"))
    }

    pub fn fallocate(file: &File, size: u64) -> io::Result<()> {
        let len = off(size)?;
        loop {
            // SAFETY: a plain syscall on a file descriptor we own.
            let r = unsafe { fallocate_raw(file.as_raw_fd(), 0, 0, len) };
            if r == 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// One pwritev call, EINTR retried; returns the bytes written.
    pub fn pwritev(file: &File, iov: &[libc::iovec], offset: u64) -> io::Result<usize> {
        let o = off(offset)?;
        loop {
            // SAFETY: every iovec points into a slice borrowed for this call.
            let r =
                unsafe { pwritev_raw(file.as_raw_fd(), iov.as_ptr(), iov.len() as libc::c_int, o) };
            if r >= 0 {
                return Ok(r as usize);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

/// State shared by the writer's [`Pools`] and every [`PoolReader`].
struct Shared {
    files: Vec<File>,
    paths: Vec<PathBuf>,
    size: u64,
    /// The generation of each pool as readers must see it: updated before
    /// the writer overwrites anything (a Mutex: 32-bit MIPS has no
    /// AtomicU64, and the lock is held for a load or store only).
    generations: Mutex<Vec<u64>>,
}

impl Shared {
    fn gens(&self) -> MutexGuard<'_, Vec<u64>> {
        // A panic elsewhere cannot leave a Vec<u64> half-updated.
        self.generations
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn generation(&self, pool: u32) -> u64 {
        self.gens().get(pool as usize).copied().unwrap_or(0)
    }

    fn file(&self, pool: u32) -> io::Result<&File> {
        self.files.get(pool as usize).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("no pool {pool} (there are {})", self.files.len()),
            )
        })
    }

    /// Checks `[offset, offset + len)` lies in the record area of a pool.
    fn check_range(&self, pool: u32, offset: u64, len: u64) -> io::Result<&File> {
        let file = self.file(pool)?;
        match offset.checked_add(len) {
            Some(end) if offset >= POOL_HEADER_BYTES && end <= self.size => Ok(file),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{}: {len} bytes at offset {offset} fall outside the pool's records \
                     ({POOL_HEADER_BYTES}..{})",
                    self.paths
                        .get(pool as usize)
                        .map_or(Path::new(""), |p| p)
                        .display(),
                    self.size
                ),
            )),
        }
    }

    fn read_at(&self, pool: u32, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.check_range(pool, offset, buf.len() as u64)?
            .read_exact_at(buf, offset)
    }
}

/// The open pool files of one install (the writer's handle).
pub struct Pools {
    shared: Arc<Shared>,
    uuid: [u8; 16],
}

impl Pools {
    /// Creates every missing pool file in `dir`, pre-allocated to `size`
    /// bytes with a generation-0 header. Existing pools of this install and
    /// size are left alone, so this is idempotent; a crash part-way leaves at
    /// most a `.tmp` file, which the next call replaces.
    pub fn create(dir: &Path, uuid: &[u8; 16], count: u32, size: u64) -> io::Result<()> {
        check_config(count, size)?;
        let mut created = false;
        for index in 0..count {
            let path = pool_path(dir, index);
            match File::open(&path) {
                Ok(f) => {
                    check_pool(&path, &f, uuid, index, size)?;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(PoolError::Io { path, err }.into()),
            }
            let tmp = path.with_extension("bin.tmp");
            let with_path = |err: io::Error| -> io::Error {
                PoolError::Io {
                    path: tmp.clone(),
                    err,
                }
                .into()
            };
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)
                .map_err(with_path)?;
            allocate(&f, size).map_err(with_path)?;
            let header = PoolHeader {
                uuid: *uuid,
                index,
                generation: 0,
            };
            f.write_all_at(&header.encode(), 0).map_err(with_path)?;
            f.sync_all().map_err(with_path)?;
            drop(f);
            std::fs::rename(&tmp, &path).map_err(with_path)?;
            created = true;
            log::debug!("created {} ({size} bytes)", path.display());
        }
        if created {
            sync_dir(dir)?;
        }
        Ok(())
    }

    /// Opens pools `0..count` of `dir` for reading and writing, checking
    /// that each is this install's, has the right index and size.
    pub fn open(dir: &Path, uuid: &[u8; 16], count: u32, size: u64) -> Result<Pools, PoolError> {
        check_config(count, size)?;
        let mut files = Vec::with_capacity(count as usize);
        let mut paths = Vec::with_capacity(count as usize);
        let mut gens = Vec::with_capacity(count as usize);
        for index in 0..count {
            let path = pool_path(dir, index);
            // std opens with O_CLOEXEC.
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|err| {
                    if err.kind() == io::ErrorKind::NotFound {
                        PoolError::Missing { path: path.clone() }
                    } else {
                        PoolError::Io {
                            path: path.clone(),
                            err,
                        }
                    }
                })?;
            gens.push(check_pool(&path, &file, uuid, index, size)?);
            files.push(file);
            paths.push(path);
        }
        Ok(Pools {
            shared: Arc::new(Shared {
                files,
                paths,
                size,
                generations: Mutex::new(gens),
            }),
            uuid: *uuid,
        })
    }

    pub fn count(&self) -> u32 {
        self.shared.files.len() as u32
    }

    /// Bytes per pool, header included.
    pub fn size(&self) -> u64 {
        self.shared.size
    }

    pub fn uuid(&self) -> &[u8; 16] {
        &self.uuid
    }

    /// The path of pool `pool`, for messages.
    pub fn path(&self, pool: u32) -> Option<&Path> {
        self.shared.paths.get(pool as usize).map(|p| p.as_path())
    }

    /// The pool's current generation (0 for a pool index out of range,
    /// which no record can match).
    pub fn generation(&self, pool: u32) -> u64 {
        self.shared.generation(pool)
    }

    /// Enters `pool` with `generation`: readers see the new generation
    /// before this writes anything, then the pool header is written and
    /// made durable. The caller has already deleted the index rows of the
    /// pool and committed the new generation (storage invariant 4).
    pub fn enter(&mut self, pool: u32, generation: u64) -> io::Result<()> {
        let file = self.shared.file(pool)?;
        if let Some(g) = self.shared.gens().get_mut(pool as usize) {
            *g = generation;
        }
        let header = PoolHeader {
            uuid: self.uuid,
            index: pool,
            generation,
        };
        file.write_all_at(&header.encode(), 0)?;
        file.sync_data()
    }

    /// Writes `parts` back to back at `offset` (pwritev; partial writes and
    /// EINTR continued). The range must lie within the pool's records.
    pub fn write_at(&self, pool: u32, offset: u64, parts: &[&[u8]]) -> io::Result<()> {
        let total: u64 = parts.iter().map(|p| p.len() as u64).sum();
        let file = self.shared.check_range(pool, offset, total)?;
        write_parts(file, offset, parts)
    }

    /// fdatasync of one pool.
    pub fn sync(&self, pool: u32) -> io::Result<()> {
        self.shared.file(pool)?.sync_data()
    }

    /// Reads exactly `buf.len()` bytes at `offset` (no generation check).
    pub fn read_at(&self, pool: u32, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.shared.read_at(pool, offset, buf)
    }

    /// A read handle for other threads.
    pub fn reader(&self) -> PoolReader {
        PoolReader {
            shared: Arc::clone(&self.shared),
        }
    }
}

/// iovecs per pwritev call; a record is a header and a payload in one or
/// two pieces, so this is rarely exceeded (and then we loop).
const MAX_IOV: usize = 16;

fn write_parts(file: &File, mut offset: u64, parts: &[&[u8]]) -> io::Result<()> {
    let mut idx = 0; // first part not fully written
    let mut skip = 0; // bytes of parts[idx] already written
    loop {
        while parts.get(idx).is_some_and(|p| p.len() == skip) {
            idx += 1;
            skip = 0;
        }
        let Some(rest) = parts.get(idx..) else {
            return Ok(());
        };
        if rest.is_empty() {
            return Ok(());
        }
        let mut iov = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; MAX_IOV];
        let mut n = 0;
        for (i, p) in rest.iter().enumerate() {
            if n == MAX_IOV {
                break;
            }
            let p = if i == 0 {
                p.get(skip..).unwrap_or(&[])
            } else {
                p
            };
            if p.is_empty() {
                continue;
            }
            iov[n] = libc::iovec {
                iov_base: p.as_ptr() as *mut libc::c_void,
                iov_len: p.len(),
            };
            n += 1;
        }
        let mut written = sys::pwritev(file, &iov[..n], offset)?;
        if written == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "pwritev wrote nothing",
            ));
        }
        offset += written as u64;
        while written > 0 {
            let left = parts.get(idx).map_or(0, |p| p.len() - skip);
            if written >= left {
                written -= left;
                idx += 1;
                skip = 0;
            } else {
                skip += written;
                written = 0;
            }
        }
    }
}

/// The read side of the pools, for any thread.
#[derive(Clone)]
pub struct PoolReader {
    shared: Arc<Shared>,
}

impl PoolReader {
    pub fn count(&self) -> u32 {
        self.shared.files.len() as u32
    }

    pub fn size(&self) -> u64 {
        self.shared.size
    }

    /// The pool's current generation (0 for an index out of range).
    pub fn generation(&self, pool: u32) -> u64 {
        self.shared.generation(pool)
    }

    /// Reads exactly `buf.len()` bytes at `offset`, succeeding only if the
    /// pool's generation is `expected_generation` both before and after the
    /// read, i.e. the bytes are those the index described.
    pub fn read_checked(
        &self,
        pool: u32,
        offset: u64,
        buf: &mut [u8],
        expected_generation: u64,
    ) -> Result<(), ReadError> {
        if self.shared.generation(pool) != expected_generation {
            return Err(ReadError::Overwritten);
        }
        let r = self.shared.read_at(pool, offset, buf);
        // Checked even after a failed read: a reclaim is the better
        // explanation to give the client.
        if self.shared.generation(pool) != expected_generation {
            return Err(ReadError::Overwritten);
        }
        r.map_err(ReadError::Io)
    }
}

#[cfg(test)]
mod tests;
