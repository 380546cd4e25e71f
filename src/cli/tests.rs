use super::*;

fn p(s: &str) -> Result<Args, UsageError> {
    parse(s.split_whitespace().map(String::from))
}

#[test]
fn global_options_anywhere() {
    let a = p("-c x.toml config check -v").unwrap();
    assert_eq!(a.config, Some(PathBuf::from("x.toml")));
    assert_eq!(a.verbosity, 1);
    assert_eq!(a.command, Command::ConfigCheck);
}

#[test]
fn demo_defaults_and_options() {
    let a = p("demo").unwrap();
    assert_eq!(
        a.command,
        Command::Demo {
            data: "vigil-demo".into(),
            listen: "127.0.0.1:8080".into(),
            seconds: None
        }
    );
    let a = p("demo --data /tmp/d --seconds 5").unwrap();
    assert!(matches!(
        a.command,
        Command::Demo {
            seconds: Some(5),
            ..
        }
    ));
}

#[test]
fn usage_errors() {
    assert!(p("frobnicate").is_err());
    assert!(p("demo --bogus 1").is_err());
    assert!(p("demo --seconds").is_err());
    assert!(p("demo --seconds x").is_err());
    assert!(p("config").is_err());
    assert!(p("camera --auth digest").is_err());
    assert!(p("camera --bitrate-kbps 0").is_err());
    assert!(matches!(
        p("camera --bitrate-kbps 2000").unwrap().command,
        Command::Camera {
            bitrate_kbps: Some(2000),
            ..
        }
    ));
    assert!(p("-c").is_err());
}

#[test]
fn storage_commands() {
    assert_eq!(
        p("status --json").unwrap().command,
        Command::Status { json: true }
    );
    assert!(matches!(
        p("check --level size --repair").unwrap().command,
        Command::Check {
            level: CheckLevel::Size,
            repair: true,
            rebuild_index: false
        }
    ));
    assert!(matches!(
        p("list --camera front --stream sub --json")
            .unwrap()
            .command,
        Command::List { json: true, .. }
    ));
    assert!(p("list").is_err());
    assert!(p("list --camera a --stream third").is_err());
    assert!(p("check --level deep").is_err());
    assert!(p("init --data").is_err());
    assert!(matches!(
        p("export --camera a --start 1 --end 2 -o x.mp4").unwrap().command,
        Command::Export { ref format, .. } if format == "mp4"
    ));
    assert!(matches!(
        p("export --camera a --start 1 --end 2 -o x.TS").unwrap().command,
        Command::Export { ref format, .. } if format == "ts"
    ));
    assert!(matches!(
        p("export --camera a --start 1 --end 2 -o - --format ts").unwrap().command,
        Command::Export { ref format, ref out, .. } if format == "ts" && out == Path::new("-")
    ));
    assert!(p("export --camera a --start 1 --end 2 -o - --format avi").is_err());
    assert!(p("export --camera a --start 1 --end 2 -o x.avi").is_err());
    assert!(p("export --camera a --start 1 --end 2 -o -").is_err());
    assert!(p("export --camera a --start 1 -o x.mp4").is_err());
}

#[test]
fn user_commands() {
    assert_eq!(
        p("user add alice --role viewer").unwrap().command,
        Command::User {
            action: UserAction::Add,
            name: "alice".into(),
            role: Some("viewer".into())
        }
    );
    assert_eq!(
        p("user list").unwrap().command,
        Command::User {
            action: UserAction::List,
            name: String::new(),
            role: None
        }
    );
    assert!(matches!(
        p("user passwd bob").unwrap().command,
        Command::User {
            action: UserAction::Passwd,
            ..
        }
    ));
    assert!(matches!(
        p("user role bob --role admin").unwrap().command,
        Command::User {
            action: UserAction::Role,
            ..
        }
    ));
    assert!(p("user").is_err());
    assert!(p("user add").is_err());
    assert!(p("user add --role admin").is_err());
    assert!(p("user add a --role root").is_err());
    assert!(p("user role a").is_err());
    // A password is never an argument.
    assert!(p("user add a --password x").is_err());
    assert!(p("user passwd a hunter22").is_err());
    assert!(p("user passwd a --role admin").is_err());
    assert_eq!(help(Some("user")), USER_HELP);
}

#[test]
fn run_options() {
    assert_eq!(
        p("run").unwrap().command,
        Command::Run {
            seconds: None,
            daemon: false,
            pidfile: None,
            log: None
        }
    );
    assert_eq!(
        p("run --daemon --pidfile /run/vigil.pid --log /var/log/vigil.log")
            .unwrap()
            .command,
        Command::Run {
            seconds: None,
            daemon: true,
            pidfile: Some("/run/vigil.pid".into()),
            log: Some("/var/log/vigil.log".into())
        }
    );
    assert!(matches!(
        p("run --pidfile p").unwrap().command,
        Command::Run {
            daemon: false,
            pidfile: Some(_),
            ..
        }
    ));
    assert!(p("run --log x").is_err());
    assert!(p("run --pidfile").is_err());
    assert!(p("run --daemon=yes").is_err());
}

#[test]
fn help_forms() {
    assert_eq!(p("").unwrap().command, Command::Help(None));
    assert_eq!(
        p("demo --help").unwrap().command,
        Command::Help(Some("demo".into()))
    );
    assert_eq!(
        p("help run").unwrap().command,
        Command::Help(Some("run".into()))
    );
}
