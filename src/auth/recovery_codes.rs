//! Single-use recovery codes, usable instead of a second factor. Shown once; stored hashed.

use super::{random_hex, sha256_hex};
use crate::domain::Secret;

pub const COUNT: usize = 10;

/// Ten fresh codes (64 random bits each, as `xxxx-xxxx-xxxx-xxxx`) and their hashes.
pub fn generate() -> (Vec<String>, Vec<Secret<String>>) {
    let codes: Vec<String> = (0..COUNT)
        .map(|_| {
            let hex = random_hex(8);
            format!(
                "{}-{}-{}-{}",
                &hex[0..4],
                &hex[4..8],
                &hex[8..12],
                &hex[12..16]
            )
        })
        .collect();
    let hashes = codes.iter().map(|code| Secret::new(hash(code))).collect();
    (codes, hashes)
}

/// The stored form of a code as typed: case, spaces and dashes don't matter.
pub fn hash(code: &str) -> String {
    let normalized: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    sha256_hex(&normalized)
}

#[cfg(test)]
mod tests {
    #[test]
    fn codes_are_distinct_and_hash_loosely() {
        let (codes, hashes) = super::generate();
        assert_eq!(codes.len(), super::COUNT);
        assert!(hashes[0].matches(&super::hash(&codes[0].to_uppercase().replace('-', " "))));
        let mut unique = codes.clone();
        unique.dedup();
        assert_eq!(unique.len(), codes.len());
    }
}
