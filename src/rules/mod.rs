//! The server's CLIENT TRACKING / CLIENT CACHING rules, replayed as pure functions:
//! (state, argv) -> outcome. Nothing here touches the server, so all of it is unit-tested.

pub mod caching;
pub mod delivery;
pub mod state;
pub mod tracking;

pub use state::{Flags, TrackingState};

/// What the server replied to one command, as the replay predicts it.
/// The prefix-overlap quirk gives two replies (an error, then `+OK`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerReply {
    Ok,
    Error(String),
}

/// The server's `!strcasecmp(arg, word)` on an argument: option words are compared as C
/// strings, so an argument matches up to its first NUL byte (`ON\0junk` is `ON`).
pub fn is_word(arg: &[u8], word: &[u8]) -> bool {
    let end = arg.iter().position(|&b| b == 0).unwrap_or(arg.len());
    arg[..end].eq_ignore_ascii_case(word)
}

/// The server's `string2ll`: strict decimal, no sign but `-`, no leading zeros, no spaces.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::{is_word, parse_i64};

    #[test]
    fn is_word_compares_as_strcasecmp() {
        assert!(is_word(b"on", b"on"));
        assert!(is_word(b"ON", b"on"));
        assert!(is_word(b"On\0junk", b"on"));
        assert!(is_word(b"optin\0", b"optin"));
        assert!(!is_word(b"onn", b"on"));
        assert!(!is_word(b"o", b"on"));
        assert!(!is_word(b"\0on", b"on"));
        assert!(!is_word(b"", b"on"));
    }

    #[test]
    fn parse_i64_follows_string2ll() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"42"), Some(42));
        assert_eq!(parse_i64(b"-7"), Some(-7));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"-0",
            b"007",
            b"+5",
            b" 5",
            b"5 ",
            b"1e3",
            b"9223372036854775808",
            b"abc",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
