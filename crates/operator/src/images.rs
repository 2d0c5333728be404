//! Which images a CardStream may run: a CardStream is an instruction to run a container with
//! the database URL, the token secret and the record keys in its environment, so whoever can
//! write one must not be able to point it at an image of their own.

/// The repository of an image reference: without its `@digest` and its `:tag`.
fn repository(image: &str) -> &str {
    let without_digest = image.split_once('@').map_or(image, |(name, _)| name);
    match without_digest.rsplit_once(':') {
        // A colon after the last slash is a tag; before it, a registry's port.
        Some((name, tag)) if !tag.contains('/') => name,
        _ => without_digest,
    }
}

/// The tag of an image reference, if it has one (`ghcr.io/org/app:1.2.3@sha256:…` → `1.2.3`).
pub(crate) fn tag(image: &str) -> Option<&str> {
    let without_digest = image.split_once('@').map_or(image, |(name, _)| name);
    match without_digest.rsplit_once(':') {
        Some((_, tag)) if !tag.contains('/') && !tag.is_empty() => Some(tag),
        _ => None,
    }
}

/// Whether `image` is allowed by `allowed`: each entry is a repository (`ghcr.io/org/app`,
/// matched exactly) or, ending in `/`, a registry or path prefix (`registry.example.com/`). An
/// empty list allows every image.
pub(crate) fn allowed(image: &str, allowed: &[String]) -> bool {
    let repository = repository(image);
    allowed.is_empty()
        || allowed.iter().any(|entry| {
            if entry.ends_with('/') {
                repository.starts_with(entry.as_str())
            } else {
                repository == entry
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> Vec<String> {
        entries.iter().map(|e| (*e).to_owned()).collect()
    }

    #[test]
    fn a_repository_entry_matches_that_repository_with_any_tag_or_digest() {
        let only = list(&["ghcr.io/cardstream/cardstream"]);
        for image in [
            "ghcr.io/cardstream/cardstream",
            "ghcr.io/cardstream/cardstream:0.1.0",
            "ghcr.io/cardstream/cardstream@sha256:abcd",
            "ghcr.io/cardstream/cardstream:0.1.0@sha256:abcd",
        ] {
            assert!(allowed(image, &only), "{image}");
        }
        for image in [
            "ghcr.io/cardstream/cardstream-evil:0.1.0",
            "ghcr.io/cardstream/cardstream/evil:1",
            "ghcr.io/attacker/cardstream:0.1.0",
            "evil.example.com/ghcr.io/cardstream/cardstream:0.1.0",
            "docker.io/library/busybox",
        ] {
            assert!(!allowed(image, &only), "{image}");
        }
    }

    #[test]
    fn a_prefix_entry_matches_a_registry_with_a_port() {
        let registry = list(&["registry.example.com:5000/"]);
        assert!(allowed("registry.example.com:5000/team/app:1", &registry));
        assert!(!allowed("registry.example.com:5001/team/app:1", &registry));
        assert!(!allowed("registry.example.com:5000", &registry));
    }

    #[test]
    fn tags_are_found_past_ports_and_digests() {
        assert_eq!(tag("ghcr.io/org/app:1.2.3"), Some("1.2.3"));
        assert_eq!(tag("ghcr.io/org/app:1.2.3@sha256:ab"), Some("1.2.3"));
        assert_eq!(tag("registry:5000/app"), None);
        assert_eq!(tag("registry:5000/app@sha256:ab"), None);
        assert_eq!(tag("app"), None);
    }

    #[test]
    fn no_list_allows_everything() {
        assert!(allowed("anything:latest", &[]));
    }
}
