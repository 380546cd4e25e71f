//! The `vigil` binary: parses the command line and hands over to the
//! library. Exit status: 0 success, 1 runtime failure, 2 usage or config.

use std::process::ExitCode;
use vigil::cli::{self, Command};
use vigil::{camera, config, daemon, logging, signals};

fn main() -> ExitCode {
    let args = match cli::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("vigil: {e}");
            return ExitCode::from(2);
        }
    };
    logging::init(args.verbosity);
    match args.command {
        Command::Help(topic) => {
            print!("{}", cli::help(topic.as_deref()));
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!("vigil {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::ConfigCheck => {
            let path = config::default_path(args.config.as_deref());
            match config::load(&path) {
                Ok(c) => {
                    eprintln!("{}: ok", path.display());
                    print!("{}", c.to_effective_toml());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("vigil: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Run { seconds } => {
            let path = config::default_path(args.config.as_deref());
            let cfg = match config::load(&path) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("vigil: {e}");
                    return ExitCode::from(2);
                }
            };
            signals::install();
            if cfg.cameras.is_empty() {
                log::warn!("{}: no [[camera]] configured", path.display());
            }
            let spacing =
                std::time::Duration::from_millis(cfg.system.stream_start_spacing_ms.into());
            let streams = daemon::Streams::start(daemon::stream_specs(&cfg), spacing);
            daemon::supervise(streams, seconds);
            ExitCode::SUCCESS
        }
        Command::Demo {
            data,
            listen: _,
            seconds,
        } => {
            signals::install();
            let server = match camera::CameraServer::start(camera::ServerOptions {
                listen: ([127, 0, 0, 1], 0).into(),
                auth: None,
                bitrate_kbps: None,
            }) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("vigil: cannot start the built-in camera: {e}");
                    return ExitCode::from(1);
                }
            };
            log::info!("built-in camera serving on rtsp://{}/", server.local_addr());
            let cfg = daemon::demo_config(server.local_addr(), &data);
            let spacing =
                std::time::Duration::from_millis(cfg.system.stream_start_spacing_ms.into());
            let streams = daemon::Streams::start(daemon::stream_specs(&cfg), spacing);
            daemon::supervise(streams, seconds);
            server.stop();
            ExitCode::SUCCESS
        }
        Command::Camera {
            listen,
            auth,
            bitrate_kbps,
        } => {
            let addr: std::net::SocketAddr = match listen.parse() {
                Ok(a) => a,
                Err(_) => {
                    eprintln!(
                        "vigil: --listen: expected an address like 127.0.0.1:8554, got {listen:?}"
                    );
                    return ExitCode::from(2);
                }
            };
            if !addr.ip().is_loopback() {
                eprintln!("vigil: the built-in camera listens on loopback only, not {addr}");
                return ExitCode::from(2);
            }
            signals::install();
            let server = match camera::CameraServer::start(camera::ServerOptions {
                listen: addr,
                auth,
                bitrate_kbps,
            }) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("vigil: cannot listen on {addr}: {e}");
                    return ExitCode::from(1);
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
            ExitCode::SUCCESS
        }
    }
}
