//! Prints the generated OpenAPI document: `cargo run -p objectsync-ingest --example openapi`.
fn main() {
    println!("{}", objectsync_ingest::openapi::json());
}
