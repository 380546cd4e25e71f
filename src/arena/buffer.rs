//! The arena's one allocation and the free list of regions that rings
//! gave back. Allocating and freeing it is this file's `unsafe`.

use std::alloc::{self, Layout};
use std::ptr::NonNull;
use std::sync::{Mutex, MutexGuard};

use super::ArenaError;

/// The arena's bytes: one allocation, freed when the last ring end (and
/// the last [`super::Arena`] handle) is dropped.
pub(super) struct Buffer {
    ptr: NonNull<u8>,
    layout: Layout,
    /// Regions no ring uses any more, `(start, len)`, sorted by start and
    /// merged with their neighbours: a ring gives its region back when its
    /// last end or tap is dropped, and a ring made later may take it.
    free: Mutex<Vec<(usize, usize)>>,
}

impl Buffer {
    /// Allocates `total` bytes, zeroed; `total` is the sum of the rings'
    /// sizes, each at least the minimum, so it is not zero.
    pub(super) fn new(total: usize) -> Result<Buffer, ArenaError> {
        let layout = Layout::from_size_align(total, 64)
            .map_err(|_| ArenaError::OutOfMemory { bytes: total })?;
        // Zeroed: every byte of the ring is initialized, so no borrow can ever
        // see uninitialized memory. The kernel maps the pages as the rings
        // first fill, so resident memory grows to the arena size on first lap.
        // SAFETY: `layout` has a non-zero size (every ring is at least 64 KiB).
        let ptr = unsafe { alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(ptr).ok_or(ArenaError::OutOfMemory { bytes: total })?;
        Ok(Buffer {
            ptr,
            layout,
            free: Mutex::new(Vec::new()),
        })
    }

    /// The first byte of the allocation.
    pub(super) fn ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    fn lock_free(&self) -> MutexGuard<'_, Vec<(usize, usize)>> {
        // The list is consistent after every single push or removal.
        self.free.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Returns a region to the free list, merging it with its neighbours.
    pub(super) fn give_back(&self, start: usize, len: usize) {
        let mut free = self.lock_free();
        let i = free.partition_point(|&(s, _)| s < start);
        free.insert(i, (start, len));
        // Merge with the next, then with the previous.
        if let (Some(&(s, l)), Some(&(ns, nl))) = (free.get(i), free.get(i + 1)) {
            if s + l == ns {
                free[i] = (s, l + nl);
                free.remove(i + 1);
            }
        }
        if i > 0 {
            if let (Some(&(ps, pl)), Some(&(s, l))) = (free.get(i - 1), free.get(i)) {
                if ps + pl == s {
                    free[i - 1] = (ps, pl + l);
                    free.remove(i);
                }
            }
        }
    }

    /// Bytes in free regions.
    pub(super) fn free_bytes(&self) -> usize {
        self.lock_free().iter().map(|&(_, l)| l).sum()
    }

    /// Takes a region for a new ring of about `want` bytes out of the free
    /// list: the smallest region that holds `want`, else the largest one
    /// that holds at least `min` (a ring somewhat smaller than its share
    /// still records). A region larger than needed is split unless the
    /// rest would be too small to ever make a ring.
    pub(super) fn take(&self, want: usize, min: usize) -> Option<(usize, usize)> {
        let mut free = self.lock_free();
        let fits = free
            .iter()
            .enumerate()
            .filter(|(_, &(_, l))| l >= want)
            .min_by_key(|(_, &(_, l))| l)
            .map(|(i, _)| i);
        let i = fits.or_else(|| {
            free.iter()
                .enumerate()
                .filter(|(_, &(_, l))| l >= min)
                .max_by_key(|(_, &(_, l))| l)
                .map(|(i, _)| i)
        })?;
        let (start, len) = *free.get(i)?;
        let size = want.min(len).min(super::MAX_RING_BYTES) & !7;
        if len - size >= super::MIN_RING_BYTES {
            free[i] = (start + size, len - size);
            Some((start, size))
        } else {
            free.remove(i);
            Some((start, len.min(super::MAX_RING_BYTES) & !7))
        }
    }
}

impl Buffer {
    /// Locks the allocation in memory (`mlock`), so that with swap on no
    /// frame ever waits on the disk (daemon::swap).
    pub(super) fn lock_in_memory(&self) -> std::io::Result<()> {
        // SAFETY: the range is this live allocation; mlock only pins it.
        let rc =
            unsafe { libc::mlock(self.ptr.as_ptr() as *const libc::c_void, self.layout.size()) };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
}

// SAFETY: `Buffer` is a plain owned allocation; which thread may touch which
// bytes of it is decided by the ring protocol, enforced in `Ring`.
unsafe impl Send for Buffer {}
// SAFETY: as above; `Buffer` itself offers no access to the bytes.
unsafe impl Sync for Buffer {}

impl Drop for Buffer {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `alloc_zeroed` with this very layout, and
        // no ring end is left (they all hold an `Arc` to the buffer).
        unsafe { alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}
