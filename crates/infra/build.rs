//! Rebuild when a migration changes: they are embedded at compile time, and
//! cargo cannot see files the macro reads.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
