//! An earlier release's `objectsync-ingest` and `objectsync-worker`, built
//! from its commit for the rolling-upgrade test, which runs them beside
//! this release's.
//!
//! The commit's tree is extracted with `git archive` into
//! `<target>/previous/src-<commit>` and built there (debug profile) with
//! `<target>/previous` as its own `CARGO_TARGET_DIR`, `<target>` being the
//! target directory of the running test. The two binaries are then copied
//! to `<target>/previous/<commit>/`, and a later run that finds them there
//! builds nothing: only the first run pays for the build (minutes).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The two binaries of a release.
#[derive(Debug, Clone)]
pub struct Release {
    pub commit: String,
    pub ingest: PathBuf,
    pub worker: PathBuf,
}

/// The target directory the running test binary was built into: it lives
/// in `<target>/debug/deps/`.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// The binaries of `commit`, built if they are not there yet (see the
/// module's comment); panics, saying what failed, if they cannot be.
/// Blocking: call it from `spawn_blocking`.
pub fn build(commit: &str) -> Release {
    let root = target_dir().join("previous");
    let bins = root.join(commit);
    let release = Release {
        commit: commit.to_owned(),
        ingest: bins.join("objectsync-ingest"),
        worker: bins.join("objectsync-worker"),
    };
    if release.ingest.exists() && release.worker.exists() {
        return release;
    }
    let src = root.join(format!("src-{commit}"));
    if !src.join("Cargo.toml").exists() {
        extract(commit, &src);
    }
    eprintln!(
        "building release {commit} into {} (once; later runs reuse it)",
        root.display()
    );
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        .args([
            "build",
            "--locked",
            "-p",
            "objectsync-ingest",
            "-p",
            "objectsync-worker",
            "--bins",
        ])
        .current_dir(&src)
        .env("CARGO_TARGET_DIR", &root);
    run(&mut cargo, &format!("cargo build of {commit}"));
    std::fs::create_dir_all(&bins).expect("the binaries' directory");
    for name in ["objectsync-ingest", "objectsync-worker"] {
        std::fs::copy(root.join("debug").join(name), bins.join(name))
            .unwrap_or_else(|e| panic!("copy {name}: {e}"));
    }
    release
}

/// `git archive <commit>` of this repository, extracted into `dest`.
fn extract(commit: &str, dest: &Path) {
    let partial = dest.with_extension("partial");
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&partial).expect("the source directory");
    let mut archive = Command::new("git")
        .args(["archive", "--format=tar", commit])
        // The repository's root: in a subdirectory, git archives only it.
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("git runs");
    let stdout = archive.stdout.take().expect("piped");
    let mut tar = Command::new("tar");
    tar.arg("-x").arg("-C").arg(&partial).stdin(stdout);
    let untarred = tar.output().expect("tar runs");
    let archived = archive.wait_with_output().expect("git archive ends");
    assert!(
        archived.status.success(),
        "git archive {commit} (is the commit in this clone?): {}",
        String::from_utf8_lossy(&archived.stderr)
    );
    assert!(
        untarred.status.success(),
        "tar -x of {commit}: {}",
        String::from_utf8_lossy(&untarred.stderr)
    );
    // Renamed only when whole, so an interrupted run extracts again.
    std::fs::rename(&partial, dest).expect("move the extracted source");
}

/// Runs `command`; panics with its output if it fails.
fn run(command: &mut Command, what: &str) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
