//! Stripe-shaped ids: a type prefix and 24 base-62 characters (`iauth_1Pgc77B7WZ01zgkWn0SmtHBY`).

use rand::Rng;

const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

pub(crate) fn stripe_id(rng: &mut impl Rng, prefix: &str) -> String {
    let mut id = String::with_capacity(prefix.len() + 25);
    id.push_str(prefix);
    id.push('_');
    id.push('1');
    for _ in 0..23 {
        id.push(char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]));
    }
    id
}
