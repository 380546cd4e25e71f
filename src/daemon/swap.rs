//! The optional swap file (`[memory] swap_file`, `swap_mb`): created,
//! formatted and enabled at start, so that on a 256 MB board what is not
//! on the recording path (an export, a burst of HTTP clients, SQLite's
//! cache) can be paged out instead of the kernel killing the recorder.
//! What records must never wait on the disk that holds the swap: the
//! arena, where every frame goes, is locked in memory (`mlock`) when swap
//! is on, so frames never page out.
//!
//! Creating and enabling swap needs root (`swapon(2)` needs
//! CAP_SYS_ADMIN). Without it, or when the kernel refuses (a container,
//! a filesystem that cannot hold swap), an error is logged that names the
//! key and what to do, and Vigil runs on without swap: recording matters
//! more than the swap that would make it safer.
//!
//! The file is formatted by us, not by `mkswap` (which a board may lack):
//! one page of header, the layout of Linux's `union swap_header` (version
//! 1): the signature `SWAPSPACE2` in the last 10 bytes of the first page,
//! and at byte 1024 the version, the last usable page, the number of bad
//! pages (0) and a random UUID, in the machine's own byte order (the
//! kernel reads it natively). Swap files stay enabled when Vigil exits
//! (turning them off can take long, and nothing is gained); the next start
//! finds the file in `/proc/swaps` and leaves it alone.

use std::io::{Read, Seek, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The signature of a version-1 swap area.
pub const SIGNATURE: &[u8; 10] = b"SWAPSPACE2";
/// Fewer pages than this cannot be enabled (the kernel wants a few).
const MIN_PAGES: u64 = 16;

/// The first page of a swap area of `pages` pages of `page_size` bytes.
pub fn header(page_size: usize, pages: u64, uuid: [u8; 16]) -> Result<Vec<u8>, String> {
    if page_size < 4096 || !page_size.is_power_of_two() {
        return Err(format!("unusual page size {page_size}"));
    }
    if pages < MIN_PAGES {
        return Err(format!("too small: {pages} pages, at least {MIN_PAGES}"));
    }
    let last_page =
        u32::try_from(pages - 1).map_err(|_| format!("too large: {pages} pages, at most 2^32"))?;
    let mut h = vec![0u8; page_size];
    // After 1024 bytes of boot block: version, last_page, nr_badpages,
    // uuid[16], volume_name[16] (empty), then padding.
    h[1024..1028].copy_from_slice(&1u32.to_ne_bytes());
    h[1028..1032].copy_from_slice(&last_page.to_ne_bytes());
    h[1032..1036].copy_from_slice(&0u32.to_ne_bytes());
    h[1036..1052].copy_from_slice(&uuid);
    h[page_size - SIGNATURE.len()..].copy_from_slice(SIGNATURE);
    Ok(h)
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n)
        .ok()
        .filter(|&n| n >= 4096)
        .unwrap_or(4096)
}

/// Whether `path` is listed in `/proc/swaps` (enabled already).
fn enabled(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string("/proc/swaps") else {
        return false;
    };
    let want = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    text.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .any(|p| Path::new(p) == want)
}

fn uuid() -> [u8; 16] {
    let mut u = [0u8; 16];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut u);
    }
    // RFC 4122 version 4, variant 1.
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    u
}

/// Creates `path` of `mb` MiB if needed (mode 0600, every block
/// allocated: swap files must have no holes), and writes the header.
pub fn create(path: &Path, mb: u32) -> Result<(), String> {
    let page = page_size();
    let bytes = u64::from(mb) * 1024 * 1024;
    let pages = bytes / page as u64;
    let head = header(page, pages, uuid())?;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot create it: {e}"))?;
    use std::os::unix::fs::PermissionsExt;
    // An existing file keeps its mode otherwise; swap must not be readable
    // by others (it holds process memory).
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot make it 0600: {e}"))?;
    let len = libc::off_t::try_from(bytes).map_err(|_| "too large for this system")?;
    use std::os::unix::io::AsRawFd;
    // SAFETY: fallocate on a descriptor we own.
    let rc = unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, len) };
    if rc != 0 {
        // Filesystems without fallocate (vfat on old kernels): write zeros.
        let current = f.metadata().map(|m| m.len()).unwrap_or(0);
        if current < bytes {
            f.seek(std::io::SeekFrom::Start(current))
                .map_err(|e| format!("cannot extend it: {e}"))?;
            let zeros = vec![0u8; 64 * 1024];
            let mut at = current;
            while at < bytes {
                let n = usize::try_from((bytes - at).min(zeros.len() as u64)).unwrap_or(0);
                f.write_all(&zeros[..n])
                    .map_err(|e| format!("cannot extend it: {e}"))?;
                at += n as u64;
            }
        }
    }
    f.set_len(bytes)
        .map_err(|e| format!("cannot size it: {e}"))?;
    f.seek(std::io::SeekFrom::Start(0))
        .and_then(|_| f.write_all(&head))
        .and_then(|_| f.sync_all())
        .map_err(|e| format!("cannot write its header: {e}"))?;
    Ok(())
}

fn not_root_message(path: &Path, uid: u32) -> String {
    format!(
        "swap: [memory] swap_file = {:?} needs root to create and enable it, and vigil runs as \
         uid {uid}; continuing without swap. Run vigil as root, or create the swap yourself \
         (mkswap, swapon) and leave swap_file empty",
        path.display()
    )
}

/// Sets up the swap file the config asks for; logs what happened. True
/// when swap is on (so the arena should be locked in memory).
pub fn setup(path: &Path, mb: u32) -> bool {
    let key = "[memory] swap_file";
    if enabled(path) {
        log::info!("swap: {} is enabled already", path.display());
        return true;
    }
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    if uid != 0 {
        log::error!("{}", not_root_message(path, uid));
        return false;
    }
    if let Err(e) = create(path, mb) {
        log::error!(
            "swap: {key} = {:?}: {e}; continuing without swap",
            path.display()
        );
        return false;
    }
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        log::error!("swap: {key}: the path holds a NUL byte; continuing without swap");
        return false;
    };
    // SAFETY: a valid C string; no flags.
    if unsafe { libc::swapon(c.as_ptr(), 0) } != 0 {
        let e = std::io::Error::last_os_error();
        let hint = match e.raw_os_error() {
            Some(libc::EPERM) => {
                " (the kernel refused: no CAP_SYS_ADMIN, e.g. in a container, or a swap file on \
                 this filesystem is not supported)"
            }
            Some(libc::EINVAL) => " (this filesystem cannot hold a swap file, e.g. btrfs or tmpfs)",
            _ => "",
        };
        log::error!(
            "swap: {key} = {:?}: swapon failed: {e}{hint}; continuing without swap",
            path.display()
        );
        return false;
    }
    log::info!("swap: {} ({mb} MiB) enabled", path.display());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_has_the_kernel_layout() {
        let u = [7u8; 16];
        let h = header(4096, 16384, u).unwrap();
        assert_eq!(h.len(), 4096);
        assert_eq!(&h[4086..], b"SWAPSPACE2");
        assert_eq!(&h[1024..1028], &1u32.to_ne_bytes());
        assert_eq!(&h[1028..1032], &16383u32.to_ne_bytes());
        assert_eq!(&h[1032..1036], &[0; 4]);
        assert_eq!(&h[1036..1052], &u);
        assert!(h[..1024].iter().all(|&b| b == 0));
        assert!(h[1052..4086].iter().all(|&b| b == 0));
        // 16 KiB pages (some MIPS kernels): the signature moves with them.
        let h = header(16384, 64, u).unwrap();
        assert_eq!(&h[16374..], b"SWAPSPACE2");
        assert!(header(4096, 3, u).is_err());
        assert!(header(1000, 64, u).is_err());
    }

    #[test]
    fn created_file_is_private_full_size_and_formatted() {
        let p = std::env::temp_dir().join(format!("vigil-swap-{}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        create(&p, 1).unwrap();
        let m = std::fs::metadata(&p).unwrap();
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        assert_eq!(m.len(), 1 << 20);
        assert_eq!(m.permissions().mode() & 0o777, 0o600);
        // No holes: every block allocated.
        assert!(m.blocks() * 512 >= 1 << 20, "{} blocks", m.blocks());
        let bytes = std::fs::read(&p).unwrap();
        let page = page_size();
        assert_eq!(&bytes[page - 10..page], b"SWAPSPACE2");
        let last = u32::from_ne_bytes(bytes[1028..1032].try_into().unwrap());
        assert_eq!(u64::from(last), (1 << 20) / page as u64 - 1);
        // What `mkswap` would check, when it is installed: the kernel
        // format is recognised (`swaplabel` reads the header).
        if let Ok(out) = std::process::Command::new("swaplabel").arg(&p).output() {
            if out.status.success() {
                let text = String::from_utf8_lossy(&out.stdout);
                assert!(text.contains("UUID"), "{text}");
            }
        }
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn not_root_says_which_key_and_what_to_do() {
        let m = not_root_message(Path::new("/mnt/hdd/vigil.swap"), 1000);
        assert!(m.contains("[memory] swap_file"), "{m}");
        assert!(
            m.contains("/mnt/hdd/vigil.swap") && m.contains("uid 1000"),
            "{m}"
        );
        assert!(
            m.contains("continuing without swap") && m.contains("as root"),
            "{m}"
        );
    }

    /// Enables real swap on the machine for a moment, so only when asked
    /// (`VIGIL_TEST_SWAPON=1`) and root: the kernel accepting our header
    /// is the real check of the format.
    #[test]
    fn swapon_as_root_when_asked() {
        // SAFETY: geteuid has no preconditions.
        if std::env::var_os("VIGIL_TEST_SWAPON").is_none() || unsafe { libc::geteuid() } != 0 {
            return;
        }
        // Not /tmp, which may be tmpfs (no swap files there).
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
        let p = dir.join(format!("vigil-swapon-{}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        let on = setup(&p, 16);
        let listed = enabled(&p);
        let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid C string.
        unsafe { libc::swapoff(c.as_ptr()) };
        let _ = std::fs::remove_file(&p);
        assert!(
            on && listed,
            "swapon refused (see the log); on: {on}, listed: {listed}"
        );
    }
}
