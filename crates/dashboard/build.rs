//! Rebuild when the dashboard is rebuilt: rust-embed reads web/dist at compile time in release
//! builds, and cargo does not otherwise notice files added to it.
fn main() {
    println!("cargo:rerun-if-changed=../../web/dist");
}
