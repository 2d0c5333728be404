//! Stripe's merchant categories (`merchant_data.category`), all 273 of them.

/// The category names, in Stripe's order.
pub fn merchant_categories() -> impl ExactSizeIterator<Item = &'static str> + Clone {
    CATEGORIES.iter().copied()
}

/// Whether `name` is one of Stripe's merchant categories.
pub fn is_merchant_category(name: &str) -> bool {
    CATEGORIES.contains(&name)
}

static CATEGORIES: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    include_str!("merchant-categories.txt")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect()
});

#[cfg(test)]
mod tests {
    #[test]
    fn all_273_categories_are_known() {
        assert_eq!(super::merchant_categories().len(), 273);
        assert!(super::is_merchant_category("taxicabs_limousines"));
        assert!(!super::is_merchant_category("taxicabs"));
    }
}
