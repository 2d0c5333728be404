//! The README lists every reason a decision can carry (Stripe sees it in
//! `metadata.cardstream_reason`, dashboards group by it): a reason added to the code and not to
//! the README fails here.

use cardstream_policy::Reason;

#[test]
fn the_readme_lists_every_decision_reason() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
    let readme = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let missing: Vec<&str> = Reason::ALL
        .iter()
        .map(Reason::as_str)
        .filter(|reason| !readme.contains(&format!("`{reason}`")))
        .collect();
    assert!(missing.is_empty(), "README.md does not list {missing:?}");
}
