//! [`Key`]: a key's name as the scheduler stores it.

use std::fmt;
use std::sync::Arc;

/// Longest name kept inline.
const INLINE: usize = 22;

/// A key name: up to 22 bytes inline (no allocation, and no pointer to
/// chase when the name table compares it), longer names in a shared
/// `Arc<str>`. 24 bytes either way; cloning never copies a long name.
#[derive(Clone)]
pub struct Key(Repr);

#[derive(Clone)]
enum Repr {
    Inline { len: u8, buf: [u8; INLINE] },
    Shared(Arc<str>),
}

impl Key {
    pub fn new(s: &str) -> Key {
        if s.len() <= INLINE {
            let mut buf = [0u8; INLINE];
            buf[..s.len()].copy_from_slice(s.as_bytes());
            Key(Repr::Inline {
                len: s.len() as u8,
                buf,
            })
        } else {
            Key(Repr::Shared(s.into()))
        }
    }

    #[inline]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // SAFETY: `buf[..len]` is a copy of a whole `&str` (`new`).
            Repr::Inline { len, buf } => unsafe {
                std::str::from_utf8_unchecked(buf.get_unchecked(..*len as usize))
            },
            Repr::Shared(s) => s,
        }
    }
}

impl std::ops::Deref for Key {
    type Target = str;
    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for Key {
    fn from(s: &str) -> Key {
        Key::new(s)
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.as_str() == other.as_str()
    }
}
impl Eq for Key {}

impl PartialEq<str> for Key {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_names() {
        assert_eq!(std::mem::size_of::<Key>(), 24);
        for s in [
            "",
            "a",
            "('x', 0, 1)",
            "exactly-twenty-two-by",
            "inc-0a1b2c3d4e5f60718293a4b5c6d7e8f9",
            "ключ-ключ-ключ-ключ",
        ] {
            let k = Key::new(s);
            assert_eq!(k.as_str(), s);
            assert_eq!(k.clone(), k);
            assert_eq!(format!("{k}"), s);
        }
    }
}
