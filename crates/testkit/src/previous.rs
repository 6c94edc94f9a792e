//! An earlier release's `objectsync-ingest` and `objectsync-worker`, built
//! from its commit for the rolling-upgrade test, which runs them beside
//! this release's.
//!
//! The commit's tree is extracted with `git archive` into
//! `<target>/previous/src-<commit>` and built there (debug profile) with
//! `<target>/previous` as its own `CARGO_TARGET_DIR`, `<target>` being the
//! target directory of the running test. The two binaries are then copied
//! to a cache outside the target directory, `objectsync/previous/<full
//! commit hash>/` under `$XDG_CACHE_HOME` (else `~/.cache`), or the
//! directory `OBJECTSYNC_PREVIOUS_CACHE` names; a later run that finds them
//! there builds nothing, from this checkout or another one of the same
//! repository (a fresh clone, a worktree, CI): only the first run on a
//! machine pays for the build (minutes). A commit's binaries never change,
//! so the cache needs no invalidation; delete the directory to reclaim it.

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
    let bins = cache_dir().join(full_hash(commit));
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
    // Copied whole, then renamed: a run stopped half-way leaves no pair
    // that a later one would take as built.
    let partial = bins.with_extension("partial");
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&partial).expect("the binaries' directory");
    for name in ["objectsync-ingest", "objectsync-worker"] {
        std::fs::copy(root.join("debug").join(name), partial.join(name))
            .unwrap_or_else(|e| panic!("copy {name}: {e}"));
    }
    let _ = std::fs::remove_dir_all(&bins);
    std::fs::rename(&partial, &bins).expect("move the binaries into the cache");
    release
}

/// Where built releases are kept (see the module's comment).
fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("OBJECTSYNC_PREVIOUS_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| target_dir().join("previous"));
    base.join("objectsync").join("previous")
}

/// The full hash of `commit` (which may be abbreviated), so that the
/// cache's key cannot grow ambiguous as the repository grows.
fn full_hash(commit: &str) -> String {
    let output = Command::new("git")
        .args(["rev-parse", "--verify", &format!("{commit}^{{commit}}")])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .unwrap_or_else(|e| panic!("git rev-parse {commit}: {e}"));
    assert!(
        output.status.success(),
        "git rev-parse {commit} (is the commit in this clone?): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
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
