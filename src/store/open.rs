//! Opening the storage of one install: creating it (`vigil init`), taking
//! the exclusive lock, checking that the `meta` file, the database and the
//! pools belong together (docs/storage.md, invariant 8), and recovering.

use super::db::{Db, WriterPosition};
use super::format;
use super::pool::{pool_path, Pools};
use super::recover::{self, RecoveryStats};
use crate::config::Storage as StorageConfig;
use std::fs::File;
use std::path::Path;

/// The open storage of one writing process. The lock lives as long as it.
pub struct OpenedStorage {
    pub pools: Pools,
    pub db: Db,
    pub open_id: i64,
    pub position: WriterPosition,
    pub recovery: RecoveryStats,
    /// The exclusive lock on the directory: keep it as long as anything
    /// writes there.
    pub lock: File,
}

const MIB: u64 = 1024 * 1024;

fn pool_bytes(cfg: &StorageConfig) -> u64 {
    u64::from(cfg.pool_size_mb) * MIB
}

/// Creates the storage the config describes: directory, `meta`, pool
/// files (pre-allocated) and database. Safe to run again on its own
/// storage (it completes what is missing); refuses a directory holding
/// anything else.
pub fn init(cfg: &StorageConfig) -> Result<[u8; 16], String> {
    let dir = &cfg.path;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let meta = dir.join("meta");
    let uuid = if meta.exists() {
        format::read_meta(dir).map_err(|e| e.to_string())?
    } else {
        let foreign: Vec<String> = std::fs::read_dir(dir)
            .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        let db_name = cfg.db.file_name().map(|n| n.to_string_lossy().into_owned());
        if foreign.iter().any(|n| Some(n) != db_name.as_ref()) {
            return Err(format!(
                "{} is not empty and holds no Vigil storage ({} entries, e.g. {:?}); \
                 refusing to touch it: choose an empty directory for storage.path",
                dir.display(),
                foreign.len(),
                foreign.first().map(String::as_str).unwrap_or("")
            ));
        }
        let uuid = format::new_uuid().map_err(|e| format!("cannot make a uuid: {e}"))?;
        format::write_meta(dir, &uuid)
            .map_err(|e| format!("cannot write {}: {e}", meta.display()))?;
        uuid
    };
    if cfg.db.exists() {
        let db = Db::open(&cfg.db).map_err(|e| format!("{}: {e}", cfg.db.display()))?;
        check_uuid(&uuid, &db.uuid(), dir, &cfg.db)?;
    } else {
        if let Some(parent) = cfg.db.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        Db::create(&cfg.db, &uuid).map_err(|e| format!("{}: {e}", cfg.db.display()))?;
    }
    log::info!(
        "storage: creating {} pool files of {} MiB in {}",
        cfg.pools,
        cfg.pool_size_mb,
        dir.display()
    );
    Pools::create(dir, &uuid, cfg.pools, pool_bytes(cfg))
        .map_err(|e| format!("cannot create the pool files in {}: {e}", dir.display()))?;
    Ok(uuid)
}

fn check_uuid(meta: &[u8; 16], db: &[u8; 16], dir: &Path, db_path: &Path) -> Result<(), String> {
    if meta != db {
        return Err(format!(
            "the database {} (install {}) does not belong to the storage in {} (install {}): \
             a restored or foreign database is refused; use `vigil check --rebuild-index` with a \
             fresh database to rebuild it from the pools",
            db_path.display(),
            format::uuid_hex(db),
            dir.display(),
            format::uuid_hex(meta)
        ));
    }
    Ok(())
}

/// Takes the exclusive lock on the storage directory.
pub(crate) fn lock(dir: &Path) -> Result<File, String> {
    let f = File::open(dir.join("meta"))
        .map_err(|e| format!("cannot open {}: {e}", dir.join("meta").display()))?;
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor we own; no memory is involved.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r != 0 {
        let who = lock_holder(&f).map_or_else(
            || "another Vigil process".to_owned(),
            |pid| format!("another Vigil process (pid {pid})"),
        );
        return Err(format!(
            "{} is in use by {who}, which holds its lock: stop that process first \
             (`vigil check` and `vigil init` need the storage to themselves; \
             `vigil status` and `vigil list` work alongside it)",
            dir.display()
        ));
    }
    Ok(f)
}

/// The pid holding the flock on `f`, from `/proc/locks` (Linux), when it
/// can be told.
fn lock_holder(f: &File) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let meta = f.metadata().ok()?;
    let inode = meta.ino();
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    // "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF": pid, then
    // major:minor:inode of the file.
    locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(1) != Some(&"FLOCK") {
            return None;
        }
        let file_inode: u64 = fields.get(5)?.rsplit(':').next()?.parse().ok()?;
        (file_inode == inode).then(|| fields.get(4)?.parse().ok())?
    })
}

/// The ring when the config names no size: 16 pools of 256 MiB, or less
/// where the disk has less room.
const DEFAULT_POOLS: u32 = 16;
const DEFAULT_POOL_MB: u64 = 256;
/// Of the free space, what a ring sized by default may take.
const FREE_SHARE_PERCENT: u64 = 75;
/// Below this, a ring would hold too little video to be worth it.
const MIN_RING_MB: u64 = 32;

/// Sizes the ring before the storage is opened or created: with no size
/// in the config (`sized_by_default`), the pools that exist, else 3/4 of
/// the free space up to 16 x 256 MiB; with a size, it must fit in the
/// free space. Returns a line saying what the ring takes.
pub fn size_ring(cfg: &mut StorageConfig) -> Result<String, String> {
    let existing = existing_pools(&cfg.path);
    let mib = |b: u64| b / MIB;
    if cfg.sized_by_default {
        if let Some((pools, bytes)) = existing.filter(|&(n, b)| n >= 2 && b >= MIB) {
            cfg.pools = pools;
            cfg.pool_size_mb = u32::try_from(mib(bytes)).unwrap_or(u32::MAX);
            return Ok(format!(
                "storage: {} pools of {} MiB in {} (as created)",
                cfg.pools,
                cfg.pool_size_mb,
                cfg.path.display()
            ));
        }
        let free = free_bytes(&cfg.path)?;
        let ring_mb =
            (mib(free) * FREE_SHARE_PERCENT / 100).min(u64::from(DEFAULT_POOLS) * DEFAULT_POOL_MB);
        if ring_mb < MIN_RING_MB {
            return Err(format!(
                "{}: only {} MiB free, too little for a ring of video; free some space or set \
                 [storage] pool_size_mb and pools",
                cfg.path.display(),
                mib(free)
            ));
        }
        cfg.pools = DEFAULT_POOLS;
        cfg.pool_size_mb = u32::try_from(ring_mb / u64::from(DEFAULT_POOLS)).unwrap_or(u32::MAX);
        return Ok(format!(
            "storage: no pool_size_mb or pools in the config: {} pools of {} MiB = {} MiB in {} \
             (at most 3/4 of the {} MiB free, at most 4 GiB; set them to choose)",
            cfg.pools,
            cfg.pool_size_mb,
            u64::from(cfg.pools) * u64::from(cfg.pool_size_mb),
            cfg.path.display(),
            mib(free)
        ));
    }
    let want = u64::from(cfg.pools) * pool_bytes(cfg);
    let have = existing.map_or(0, |(n, b)| u64::from(n) * b);
    if want > have {
        let free = free_bytes(&cfg.path)?;
        if want - have > free {
            return Err(format!(
                "{}: the ring of {} pools of {} MiB needs {} MiB more but {} MiB are free: \
                 lower [storage] pools or pool_size_mb",
                cfg.path.display(),
                cfg.pools,
                cfg.pool_size_mb,
                mib(want - have),
                mib(free)
            ));
        }
    }
    Ok(format!(
        "storage: {} pools of {} MiB = {} MiB in {}",
        cfg.pools,
        cfg.pool_size_mb,
        mib(want),
        cfg.path.display()
    ))
}

/// How many pool files exist in `dir` and the size of the first.
fn existing_pools(dir: &Path) -> Option<(u32, u64)> {
    let first = std::fs::metadata(pool_path(dir, 0)).ok()?.len();
    let mut n = 0;
    while pool_path(dir, n).exists() {
        n += 1;
    }
    Some((n, first))
}

/// Free bytes for an unprivileged writer on the file system of `path`
/// (or of its nearest existing parent, before it is created).
fn free_bytes(path: &Path) -> Result<u64, String> {
    use std::os::unix::ffi::OsStrExt;
    let p = path
        .ancestors()
        .find(|a| a.exists())
        .unwrap_or(Path::new("."));
    let c = std::ffi::CString::new(p.as_os_str().as_bytes())
        .map_err(|_| format!("{}: a path with a NUL byte", path.display()))?;
    // SAFETY: statvfs writes into the zeroed struct we own; `c` is a valid
    // NUL-terminated path.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(format!(
            "{}: cannot read the free space: {}",
            p.display(),
            std::io::Error::last_os_error()
        ));
    }
    // Explicit widening: the fields are 32-bit on 32-bit targets.
    #[allow(clippy::unnecessary_cast)]
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
}

/// Opens the storage for writing: creates it if the directory is new,
/// locks it, checks identity, recovers. `vigil run` starts here.
pub fn open_for_writing(cfg: &StorageConfig) -> Result<OpenedStorage, String> {
    if !cfg.path.join("meta").exists() || !cfg.db.exists() {
        init(cfg)?;
    }
    let dir = &cfg.path;
    let lock = lock(dir)?;
    let uuid = format::read_meta(dir).map_err(|e| e.to_string())?;
    let mut db = Db::open(&cfg.db).map_err(|e| format!("{}: {e}", cfg.db.display()))?;
    check_uuid(&uuid, &db.uuid(), dir, &cfg.db)?;
    // Pools added to the config since init are created; missing ones of
    // an existing install are an error from open().
    Pools::create(dir, &uuid, cfg.pools, pool_bytes(cfg))
        .map_err(|e| format!("pool files in {}: {e}", dir.display()))?;
    let mut pools =
        Pools::open(dir, &uuid, cfg.pools, pool_bytes(cfg)).map_err(|e| e.to_string())?;
    let open_id = db
        .begin_open(env!("CARGO_PKG_VERSION"), crate::time::now_90k())
        .map_err(|e| format!("{}: {e}", cfg.db.display()))?;
    let (position, recovery) = recover::recover(&mut pools, &mut db, open_id)?;
    if recovery.records_indexed > 0 || recovery.recordings_closed > 0 {
        log::info!(
            "storage: recovered {} records ({} bytes) into {} recordings, closed {} open recordings{}",
            recovery.records_indexed,
            recovery.bytes_indexed,
            recovery.recordings_touched,
            recovery.recordings_closed,
            recovery.stopped.as_deref().map(|w| format!("; scan stopped: {w}")).unwrap_or_default()
        );
    }
    Ok(OpenedStorage {
        pools,
        db,
        open_id,
        position,
        recovery,
        lock,
    })
}

/// Opens the index for reading while a writer may run (list, status).
pub fn open_read_only(cfg: &StorageConfig) -> Result<Db, String> {
    if !cfg.db.exists() {
        return Err(format!(
            "no recordings yet: {} does not exist (run `vigil init` or `vigil run` first)",
            cfg.db.display()
        ));
    }
    let db = Db::open_read_only(&cfg.db).map_err(|e| format!("{}: {e}", cfg.db.display()))?;
    let uuid = format::read_meta(&cfg.path).map_err(|e| e.to_string())?;
    check_uuid(&uuid, &db.uuid(), &cfg.path, &cfg.db)?;
    Ok(db)
}
