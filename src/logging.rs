//! Logging setup: `log` macros everywhere, `simple_logger` to stderr.
//!
//! The level comes from `-v` (debug) / `-vv` (trace) / `-q` (warnings
//! only), else from `RUST_LOG` (`error`, `warn`, `info`, `debug`, `trace`),
//! else `info`. One line per event a user would want to grep for.

use log::LevelFilter;

/// Installs the logger. `verbosity` counts `-v` flags minus `-q` flags.
pub fn init(verbosity: i32) {
    let level = match verbosity {
        i32::MIN..=-1 => LevelFilter::Warn,
        0 => std::env::var("RUST_LOG")
            .ok()
            .and_then(|v| parse_level(&v))
            .unwrap_or(LevelFilter::Info),
        1 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    };
    // Dependencies (polling, async-io) are chatty at debug level and say
    // nothing a user needs; keep them at warnings unless tracing.
    let deps = if level >= LevelFilter::Trace {
        level
    } else {
        LevelFilter::Warn
    };
    let _ = simple_logger::SimpleLogger::new()
        .with_level(deps)
        .with_module_level("vigil", level)
        .with_utc_timestamps()
        .init();
}

fn parse_level(s: &str) -> Option<LevelFilter> {
    // Accept plain levels and the common `vigil=debug` form.
    let s = s.rsplit('=').next().unwrap_or(s).trim();
    s.parse().ok()
}
