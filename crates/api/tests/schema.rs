//! The committed SDL is the schema the code builds.

#[test]
fn the_committed_schema_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == cardstream_api::sdl(),
        "crates/api/schema.graphql is out of date; regenerate it with `cargo run -p cardstream -- schema > crates/api/schema.graphql`"
    );
}
