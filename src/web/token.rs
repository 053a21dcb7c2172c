//! The token that commands from the page need: read from `[web]
//! token_file` (its first line), compared in constant time, never logged
//! (its `Debug` prints nothing of it).

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// Wrong tokens an address may send within [`GUESS_WINDOW`]; after them
/// every command from it is refused until the window is over.
pub const GUESSES: u32 = 10;
/// The window starts at an address's first wrong token.
pub const GUESS_WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at most; past that (many addresses guessing at once)
/// the new ones share one window, so memory stays bounded and guessing
/// stays slow.
const TRACKED: usize = 4096;

/// Wrong tokens per client address, so that guessing the token takes
/// forever while the right token from elsewhere still works.
#[derive(Debug, Default)]
pub struct Guesses {
    windows: Mutex<HashMap<IpAddr, Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    wrong: u32,
}

impl Guesses {
    /// How long `ip` is still refused, if it is.
    pub fn blocked(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let w = windows.get(&ip).or_else(|| windows.get(&OVERFLOW))?;
        let left = GUESS_WINDOW.checked_sub(now.saturating_duration_since(w.start))?;
        (w.wrong >= GUESSES && !left.is_zero()).then_some(left)
    }

    /// `ip` sent a wrong token.
    pub fn wrong(&self, ip: IpAddr, now: Instant) {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let mut key = ip;
        if !windows.contains_key(&ip) && windows.len() >= TRACKED {
            windows.retain(|_, w| now.saturating_duration_since(w.start) < GUESS_WINDOW);
            if windows.len() >= TRACKED {
                key = OVERFLOW;
            }
        }
        let w = windows.entry(key).or_insert(Window { start: now, wrong: 0 });
        if now.saturating_duration_since(w.start) >= GUESS_WINDOW {
            *w = Window { start: now, wrong: 0 };
        }
        w.wrong += 1;
    }
}

/// The window the addresses past [`TRACKED`] share.
const OVERFLOW: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_wrong_tokens_lock_an_address_until_its_minute_is_over() {
        let g = Guesses::default();
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let t0 = Instant::now();
        for k in 0..GUESSES {
            assert_eq!(g.blocked(a, t0), None, "after {k} wrong");
            g.wrong(a, t0 + Duration::from_secs(u64::from(k)));
        }
        assert_eq!(
            g.blocked(a, t0 + Duration::from_secs(10)),
            Some(Duration::from_secs(50))
        );
        assert_eq!(g.blocked(b, t0 + Duration::from_secs(10)), None, "another address");
        assert!(g.blocked(a, t0 + Duration::from_millis(59_999)).is_some());
        assert_eq!(g.blocked(a, t0 + GUESS_WINDOW), None, "the minute is over");
        // A new minute starts from the next wrong token.
        g.wrong(a, t0 + Duration::from_secs(61));
        assert_eq!(g.blocked(a, t0 + Duration::from_secs(61)), None);
    }

    #[test]
    fn addresses_past_the_tracked_ones_share_a_window() {
        let g = Guesses::default();
        let t0 = Instant::now();
        for k in 0..TRACKED as u32 {
            g.wrong(IpAddr::V4(k.into()), t0);
        }
        let late: IpAddr = "2001:db8::1".parse().unwrap();
        for _ in 0..GUESSES {
            g.wrong(late, t0);
        }
        assert!(g.blocked(late, t0).is_some());
        assert!(g.windows.lock().unwrap().len() <= TRACKED + 1, "bounded");
        // Once the old windows are over, a new address has one of its own.
        let later = t0 + GUESS_WINDOW;
        g.wrong("2001:db8::2".parse().unwrap(), later);
        assert!(g.windows.lock().unwrap().len() < 4);
    }

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
