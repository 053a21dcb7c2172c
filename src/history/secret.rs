//! Athletes' ids and personal links, from the kernel's random source, and
//! the display names the roster accepts.

use super::store::{Result, StoreError};

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // getrandom(2) through /dev/urandom: never blocks once the system booted.
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("/dev/urandom is readable");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// `a-` and 8 hex digits: short enough to type in an automation, unique
/// enough for a roster (the database refuses a repeat).
pub fn athlete_id() -> String {
    format!("a-{}", random_hex(4))
}

/// 128 random bits: an athlete's own page cannot be guessed.
pub fn link_secret() -> String {
    random_hex(16)
}

/// A display name: 1 to 64 characters, no control characters, trimmed.
pub fn check_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(StoreError::Invalid(format!(
            "athlete name \"{name}\": must be 1 to 64 characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(StoreError::Invalid("athlete name: no control characters".into()));
    }
    Ok(name.to_string())
}

/// An athlete id as [`athlete_id`] makes them (what commands may name).
pub fn is_athlete_id(id: &str) -> bool {
    // The alphabet of every id that goes into topics and unique_ids.
    crate::config::check_id(id).is_ok()
}

/// A personal link's secret as [`link_secret`] makes them.
pub fn is_link_secret(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_secrets_have_their_shape_and_differ() {
        let (a, b) = (athlete_id(), athlete_id());
        assert!(is_athlete_id(&a) && a.len() == 10 && a.starts_with("a-"), "{a}");
        assert_ne!(a, b);
        let s = link_secret();
        assert!(is_link_secret(&s), "{s}");
        assert_ne!(s, link_secret());
        assert!(!is_athlete_id("a b") && !is_athlete_id("") && !is_link_secret("zz"));
    }

    #[test]
    fn names() {
        assert_eq!(check_name("  Ana  ").unwrap(), "Ana");
        assert!(check_name("").is_err());
        assert!(check_name(&"x".repeat(65)).is_err());
        assert!(check_name("a\nb").is_err());
        assert_eq!(check_name("Zoë").unwrap(), "Zoë");
    }
}
