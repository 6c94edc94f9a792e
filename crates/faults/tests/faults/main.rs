//! The suite's command line, as CI and the README run it. Also what makes
//! `cargo test --workspace` build the `objectsync-faults` binary with the
//! workspace's features, so that CI runs that binary without building the
//! suite's crates a second time.

use std::process::Command;

fn faults(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_objectsync-faults"))
        .args(args)
        .output()
        .expect("objectsync-faults runs")
}

#[test]
fn help_names_every_mode_and_the_inbox_producers() {
    let out = faults(&["--help"]);
    assert!(out.status.success(), "{out:?}");
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--duration",
        "--producers",
        "--inbox-producers",
        "--workers",
        "--kill-every",
        "--no-restarts",
        "--cluster",
        "--citus",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[test]
fn an_unknown_flag_or_two_modes_at_once_are_refused_before_any_load() {
    for args in [&["--durration", "5"][..], &["--cluster", "--citus"][..]] {
        let out = faults(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(!out.stderr.is_empty(), "{args:?} says why");
    }
}
