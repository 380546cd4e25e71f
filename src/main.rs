//! The `vigil` binary: parses the command line and hands over to
//! `vigil::commands`. Exit status: 0 success, 1 runtime failure, 2 usage
//! or config error.

use std::process::ExitCode;
use vigil::cli::{self, Command};
use vigil::{camera, commands, config, logging, signals};

fn main() -> ExitCode {
    tune_malloc();
    let args = match cli::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("vigil: {e}");
            return ExitCode::from(commands::USAGE);
        }
    };
    logging::init(args.verbosity);
    let config_path = config::default_path(args.config.as_deref());
    let code = match args.command {
        Command::Help(topic) => {
            print!("{}", cli::help(topic.as_deref()));
            commands::OK
        }
        Command::Version => {
            println!("vigil {}", env!("CARGO_PKG_VERSION"));
            commands::OK
        }
        Command::ConfigInit { board } => commands::config_init(&config_path, board.as_deref()),
        Command::ConfigCheck => match config::load(&config_path) {
            Ok(mut c) => match vigil::store::open::size_ring(&mut c.storage) {
                Ok(ring) => {
                    eprintln!("{}: ok", config_path.display());
                    eprintln!("{ring}");
                    print!("{}", c.to_effective_toml());
                    commands::OK
                }
                Err(e) => {
                    eprintln!("vigil: {}: {e}", config_path.display());
                    commands::USAGE
                }
            },
            Err(e) => {
                eprintln!("vigil: {e}");
                commands::USAGE
            }
        },
        Command::Run {
            seconds,
            daemon,
            pidfile,
            log,
        } => commands::run(
            &config_path,
            seconds,
            &commands::RunOptions {
                daemon,
                pidfile,
                log,
            },
        ),
        Command::Demo {
            data,
            listen,
            seconds,
        } => commands::demo(&data, &listen, seconds),
        Command::Init { data } => commands::init(&config_path, data.as_deref()),
        Command::Status { json } => commands::status(&config_path, json),
        Command::List {
            camera,
            stream,
            start,
            end,
            json,
        } => commands::list(
            &config_path,
            &camera,
            &stream,
            start.as_deref(),
            end.as_deref(),
            json,
        ),
        Command::Export {
            camera,
            stream,
            start,
            end,
            out,
            format,
        } => commands::export(&config_path, &camera, &stream, &start, &end, &out, &format),
        Command::Check {
            level,
            repair,
            rebuild_index,
        } => commands::check(&config_path, level, repair, rebuild_index),
        Command::Camera {
            listen,
            auth,
            bitrate_kbps,
        } => serve_camera(&listen, auth, bitrate_kbps),
        Command::User { action, name, role } => {
            commands::user(&config_path, action, &name, role.as_deref())
        }
    };
    ExitCode::from(code)
}

/// `vigil camera`: the built-in camera on its own.
fn serve_camera(listen: &str, auth: Option<cli::CameraAuth>, bitrate_kbps: Option<u32>) -> u8 {
    let addr: std::net::SocketAddr = match listen.parse() {
        Ok(a) => a,
        Err(_) => {
            eprintln!("vigil: --listen: expected an address like 127.0.0.1:8554, got {listen:?}");
            return commands::USAGE;
        }
    };
    if !addr.ip().is_loopback() {
        eprintln!("vigil: the built-in camera listens on loopback only, not {addr}");
        return commands::USAGE;
    }
    signals::install();
    let server = match camera::CameraServer::start(camera::ServerOptions {
        listen: addr,
        auth,
        bitrate_kbps,
    }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("vigil: the built-in camera cannot start on {addr}: {e}");
            return commands::FAILED;
        }
    };
    log::info!(
        "built-in camera serving on rtsp://{}/ (h264, h265, mjpeg)",
        server.local_addr()
    );
    while !signals::stop_requested() {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    server.stop();
    commands::OK
}

/// glibc's malloc (x86_64 test machines; the musl boards have a single
/// malloc lock and none of this): one arena shared by all threads instead
/// of one per allocating thread (up to 8 per core), each of which kept
/// 100-250 KiB resident with 8 cameras and viewers; and a fixed mmap
/// threshold, so that large buffers (decoder pictures, reply bodies) go
/// back to the system when freed instead of raising the threshold and
/// staying in the heap, which a long run would show as growth. Frames live
/// in the arena, not in malloc, so the shared lock is off the hot path.
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters, before any thread
    // exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}
