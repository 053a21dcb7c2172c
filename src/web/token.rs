//! The token that commands from the page need: read from `[web]
//! token_file` (its first line), compared in constant time, never logged
//! (its `Debug` prints nothing of it).

use std::fmt;
use std::path::Path;

use anyhow::{bail, Context, Result};

/// Shortest token accepted: a guessable one would make the lock a formality.
pub const MIN_LEN: usize = 16;

#[derive(Clone, PartialEq, Eq)]
pub struct Token(Vec<u8>);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(…)")
    }
}

impl Token {
    /// The first line of `path`, trimmed.
    pub fn from_file(path: &Path) -> Result<Token> {
        let text = std::fs::read_to_string(path).with_context(|| format!("web.token_file {}", path.display()))?;
        let line = text.lines().next().unwrap_or("").trim();
        if line.len() < MIN_LEN {
            bail!(
                "web.token_file {}: the token (its first line) must be at least {MIN_LEN} characters, e.g. `openssl rand -hex 16`",
                path.display()
            );
        }
        if !line.bytes().all(|b| b.is_ascii_graphic()) {
            bail!(
                "web.token_file {}: the token must be printable ASCII without spaces (it travels in an HTTP header)",
                path.display()
            );
        }
        Ok(Token(line.as_bytes().to_vec()))
    }

    #[cfg(test)]
    pub fn new(text: &str) -> Token {
        Token(text.as_bytes().to_vec())
    }

    /// Whether `given` is the token. Takes the same time whatever the bytes
    /// are (it depends on the lengths only): no byte of the token leaks
    /// through how fast a wrong guess is refused.
    pub fn matches(&self, given: &[u8]) -> bool {
        let mut diff = (self.0.len() ^ given.len()) as u8 | u8::from(self.0.len() != given.len());
        for (i, &b) in given.iter().enumerate() {
            // Compared against the token cyclically so the loop runs over all
            // of `given` even when the lengths differ.
            let t = self.0.get(i % self.0.len().max(1)).copied().unwrap_or(0);
            diff |= b ^ t;
        }
        std::hint::black_box(diff) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_only_the_token() {
        let t = Token::new("0123456789abcdef");
        assert!(t.matches(b"0123456789abcdef"));
        assert!(!t.matches(b"0123456789abcdeF"));
        assert!(!t.matches(b"0123456789abcde"));
        assert!(!t.matches(b"0123456789abcdef0"));
        assert!(!t.matches(b"0123456789abcdef0123456789abcdef"), "the token twice");
        assert!(!t.matches(b""));
        assert_eq!(format!("{t:?}"), "Token(…)", "never printed");
    }

    #[test]
    fn read_from_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t");
        std::fs::write(&p, "  s3cret-s3cret-s3cret \nignored\n").unwrap();
        assert!(Token::from_file(&p).unwrap().matches(b"s3cret-s3cret-s3cret"));
        std::fs::write(&p, "short\n").unwrap();
        let e = Token::from_file(&p).unwrap_err().to_string();
        assert!(e.contains("at least 16") && !e.contains("short"), "{e}");
        std::fs::write(&p, "with a space in it, long enough\n").unwrap();
        assert!(Token::from_file(&p).is_err());
        assert!(Token::from_file(&dir.path().join("missing")).is_err());
    }
}
