//! `vigil export`: a range of recorded video into a file (or stdout), the
//! same bytes `view.mp4` or `export.ts` serve, read straight from the pool
//! files.

use super::ts::TsFile;
use super::view::{plan, plan_frames, Mp4Reader, PoolSource};
use crate::config::Config;
use crate::store::{self, format, pool::Pools};
use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use std::sync::Arc;

/// Writes `camera/stream` over `[start, end)` to `out` ("-" for stdout) as
/// `format` ("mp4" or "ts"); returns the bytes written.
pub fn export(
    cfg: &Config,
    camera: &str,
    stream: &str,
    start_90k: i64,
    end_90k: i64,
    out: &Path,
    format_name: &str,
) -> Result<u64, String> {
    if format_name != "mp4" && format_name != "ts" {
        return Err(format!(
            "cannot export as {format_name:?}: the formats are mp4 and ts"
        ));
    }
    let db = store::open::open_read_only(&cfg.storage)?;
    let streams = db.streams().map_err(|e| e.to_string())?;
    let s = streams
        .iter()
        .find(|s| s.camera == camera && s.kind == stream)
        .ok_or_else(|| format!("no recordings of {camera}/{stream}"))?;
    // Readers share the pool files with a running writer: read-only opens
    // under the same identity checks, no lock taken.
    let uuid = format::read_meta(&cfg.storage.path).map_err(|e| e.to_string())?;
    let pools = Pools::open(
        &cfg.storage.path,
        &uuid,
        cfg.storage.pools,
        u64::from(cfg.storage.pool_size_mb) * 1024 * 1024,
    )
    .map_err(|e| e.to_string())?;
    let source = PoolSource(pools.reader());
    let (len, mut reader): (u64, Box<dyn Read>) = if format_name == "ts" {
        let p = plan_frames(&db, s.id, start_90k, end_90k).map_err(|e| e.to_string())?;
        let file = Arc::new(TsFile::new(p).map_err(|e| e.to_string())?);
        (file.len(), Box::new(file.reader(source)))
    } else {
        let file = Arc::new(plan(&db, s.id, start_90k, end_90k).map_err(|e| e.to_string())?);
        let len = file.len();
        let r = Mp4Reader {
            file,
            source,
            pos: 0,
            end: len,
        };
        (len, Box::new(r))
    };
    let to_stdout = out == Path::new("-");
    let mut sink: Box<dyn Write> = if to_stdout {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(
            std::fs::File::create(out)
                .map_err(|e| format!("cannot create {}: {e}", out.display()))?,
        )
    };
    let progress = !to_stdout && std::io::stderr().is_terminal();
    let mut buf = vec![0u8; 256 * 1024];
    let mut done: u64 = 0;
    let mut copy = || -> Result<(), String> {
        loop {
            let n = reader
                .read(&mut buf)
                .map_err(|e| format!("reading the recording: {e}"))?;
            if n == 0 {
                break;
            }
            sink.write_all(&buf[..n])
                .map_err(|e| format!("writing {}: {e}", out.display()))?;
            done += n as u64;
            if progress {
                eprint!(
                    "\rexporting: {:>5.1}% of {:.1} MiB",
                    done as f64 * 100.0 / len.max(1) as f64,
                    len as f64 / 1048576.0
                );
            }
        }
        sink.flush().map_err(|e| e.to_string())
    };
    let result = copy();
    if progress {
        eprintln!();
    }
    if let Err(e) = result {
        // A file cut short would pass for the range: leave none.
        if !to_stdout {
            let _ = std::fs::remove_file(out);
        }
        return Err(e);
    }
    Ok(done)
}
