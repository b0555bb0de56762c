//! A fast decoder for the messages that travel once per task
//! (`compute-task`, `task-finished`, `key-in-memory`, `free-keys`,
//! `release-keys`), used by [`super::decode_batch`].
//!
//! `Message` is an internally tagged serde enum: serde cannot know the
//! variant before it has seen `op`, so it first buffers every message into
//! its generic `Content` tree (a `String` and a `Vec` per field), then
//! decodes the variant from that. rask's encoder always writes `op` first,
//! so here `op` is read first and the fields are decoded straight from the
//! bytes. The wire format is unchanged: anything this decoder does not
//! recognise exactly (another op, `op` not first, an unknown or repeated
//! field, a missing one, a value of an unexpected msgpack type, invalid
//! UTF-8) returns `None`, and the caller decodes that message with serde,
//! which then accepts or rejects it as it always did. What this decoder
//! accepts it decodes to the value serde would give.

use super::messages::Message;
use serde_bytes::ByteBuf;
use std::collections::BTreeMap;

/// A cursor over a msgpack body.
pub(crate) struct Cursor<'a> {
    pub buf: &'a [u8],
    pub pos: usize,
}

impl<'a> Cursor<'a> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    fn be(&mut self, n: usize) -> Option<u64> {
        Some(self.take(n)?.iter().fold(0u64, |a, &b| (a << 8) | b as u64))
    }

    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// An array header.
    pub fn array_len(&mut self) -> Option<usize> {
        match self.byte()? {
            b @ 0x90..=0x9f => Some((b & 0x0f) as usize),
            0xdc => Some(self.be(2)? as usize),
            0xdd => Some(self.be(4)? as usize),
            _ => None,
        }
    }

    fn map_len(&mut self) -> Option<usize> {
        match self.byte()? {
            b @ 0x80..=0x8f => Some((b & 0x0f) as usize),
            0xde => Some(self.be(2)? as usize),
            0xdf => Some(self.be(4)? as usize),
            _ => None,
        }
    }

    fn str_bytes(&mut self) -> Option<&'a [u8]> {
        let n = match self.byte()? {
            b @ 0xa0..=0xbf => (b & 0x1f) as usize,
            0xd9 => self.be(1)? as usize,
            0xda => self.be(2)? as usize,
            0xdb => self.be(4)? as usize,
            _ => return None,
        };
        self.take(n)
    }

    fn str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.str_bytes()?).ok()
    }

    fn string(&mut self) -> Option<String> {
        self.str().map(str::to_owned)
    }

    fn strings(&mut self) -> Option<Vec<String>> {
        let n = self.array_len()?;
        // Each element takes at least one byte: a bogus length fails
        // before it allocates much.
        let mut v = Vec::with_capacity(n.min(self.buf.len() - self.pos));
        for _ in 0..n {
            v.push(self.string()?);
        }
        Some(v)
    }

    fn bin(&mut self) -> Option<ByteBuf> {
        let n = match self.byte()? {
            0xc4 => self.be(1)? as usize,
            0xc5 => self.be(2)? as usize,
            0xc6 => self.be(4)? as usize,
            _ => return None,
        };
        Some(ByteBuf::from(self.take(n)?.to_vec()))
    }

    /// `nil` (None) or bin.
    fn opt_bin(&mut self) -> Option<Option<ByteBuf>> {
        if self.peek()? == 0xc0 {
            self.pos += 1;
            return Some(None);
        }
        self.bin().map(Some)
    }

    fn u64(&mut self) -> Option<u64> {
        match self.byte()? {
            b @ 0x00..=0x7f => Some(b as u64),
            0xcc => self.be(1),
            0xcd => self.be(2),
            0xce => self.be(4),
            0xcf => self.be(8),
            0xd0 => u64::try_from(self.be(1)? as u8 as i8).ok(),
            0xd1 => u64::try_from(self.be(2)? as u16 as i16).ok(),
            0xd2 => u64::try_from(self.be(4)? as u32 as i32).ok(),
            0xd3 => u64::try_from(self.be(8)? as i64).ok(),
            _ => None,
        }
    }

    fn f64(&mut self) -> Option<f64> {
        match self.peek()? {
            0xca => {
                self.pos += 1;
                Some(f32::from_bits(self.be(4)? as u32) as f64)
            }
            0xcb => {
                self.pos += 1;
                Some(f64::from_bits(self.be(8)?))
            }
            0xe0..=0xff => {
                self.pos += 1;
                Some((self.buf[self.pos - 1] as i8) as f64)
            }
            0xd0 => {
                self.pos += 1;
                Some((self.be(1)? as u8 as i8) as f64)
            }
            0xd1 => {
                self.pos += 1;
                Some((self.be(2)? as u16 as i16) as f64)
            }
            0xd2 => {
                self.pos += 1;
                Some((self.be(4)? as u32 as i32) as f64)
            }
            0xd3 => {
                self.pos += 1;
                Some((self.be(8)? as i64) as f64)
            }
            _ => self.u64().map(|u| u as f64),
        }
    }
}

/// Sets `slot` once; a repeated field fails (serde rejects duplicates).
fn set<T>(slot: &mut Option<T>, v: Option<T>) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(v?);
    Some(())
}

/// Decodes the message at the cursor if it is one of the hot ones in the
/// form rask writes; `None` (with the cursor anywhere) otherwise.
pub(crate) fn message(c: &mut Cursor<'_>) -> Option<Message> {
    let n = c.map_len()?;
    if n == 0 || c.str_bytes()? != b"op" {
        return None;
    }
    let op = c.str_bytes()?;
    let fields = n - 1;
    match op {
        b"task-finished" => {
            let (mut key, mut nbytes, mut duration, mut value) = (None, None, None, None);
            for _ in 0..fields {
                match c.str_bytes()? {
                    b"key" => set(&mut key, c.string())?,
                    b"nbytes" => set(&mut nbytes, c.u64())?,
                    b"duration" => set(&mut duration, c.f64())?,
                    b"value" => set(&mut value, c.opt_bin())?,
                    _ => return None,
                }
            }
            Some(Message::TaskFinished {
                key: key?,
                nbytes: nbytes?,
                duration: duration?,
                value: value.flatten(),
            })
        }
        b"compute-task" => {
            let (mut key, mut func, mut args, mut priority, mut who_has) =
                (None, None, None, None, None);
            for _ in 0..fields {
                match c.str_bytes()? {
                    b"key" => set(&mut key, c.string())?,
                    b"func" => set(&mut func, c.string())?,
                    b"args" => set(&mut args, c.bin())?,
                    b"priority" => set(&mut priority, c.u64())?,
                    b"who_has" => {
                        let m = (|| {
                            let n = c.map_len()?;
                            let mut m = BTreeMap::new();
                            for _ in 0..n {
                                let k = c.string()?;
                                let v = c.strings()?;
                                m.insert(k, v);
                            }
                            Some(m)
                        })();
                        set(&mut who_has, m)?
                    }
                    _ => return None,
                }
            }
            Some(Message::ComputeTask {
                key: key?,
                func: func?,
                args: args?,
                priority: priority?,
                who_has: who_has.unwrap_or_default(),
            })
        }
        b"key-in-memory" => {
            let (mut key, mut nbytes, mut workers, mut value) = (None, None, None, None);
            for _ in 0..fields {
                match c.str_bytes()? {
                    b"key" => set(&mut key, c.string())?,
                    b"nbytes" => set(&mut nbytes, c.u64())?,
                    b"workers" => set(&mut workers, c.strings())?,
                    b"value" => set(&mut value, c.opt_bin())?,
                    _ => return None,
                }
            }
            Some(Message::KeyInMemory {
                key: key?,
                nbytes: nbytes?,
                workers: workers?,
                value: value.flatten(),
            })
        }
        b"free-keys" | b"release-keys" => {
            let (mut keys, mut id) = (None, None);
            for _ in 0..fields {
                match c.str_bytes()? {
                    b"keys" => set(&mut keys, c.strings())?,
                    // `free-keys` has no id: serde's answer stands.
                    b"id" if op == b"release-keys" => set(&mut id, c.u64())?,
                    _ => return None,
                }
            }
            let keys = keys?;
            Some(if op == b"free-keys" {
                Message::FreeKeys { keys }
            } else {
                Message::ReleaseKeys { keys, id }
            })
        }
        _ => None,
    }
}

/// Decodes a whole batch: the hot messages here, any other with serde.
/// `None` if any message fails either way (the caller then takes its
/// careful path, which reports each bad message on its own).
pub(crate) fn batch(body: &[u8]) -> Option<Vec<Message>> {
    let mut c = Cursor { buf: body, pos: 0 };
    let n = c.array_len()?;
    let mut out = Vec::with_capacity(n.min(body.len()));
    for _ in 0..n {
        let start = c.pos;
        if let Some(m) = message(&mut c) {
            out.push(m);
            continue;
        }
        let rest = &body[start..];
        let mut de = rmp_serde::Deserializer::new(std::io::Cursor::new(rest));
        let m: Message = serde::Deserialize::deserialize(&mut de).ok()?;
        c.pos = start + de.position() as usize;
        out.push(m);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hot() -> Vec<Message> {
        let mut who_has = BTreeMap::new();
        who_has.insert("a".to_string(), vec!["tcp://x:1".to_string()]);
        vec![
            Message::ComputeTask {
                key: "k".into(),
                func: "noop".into(),
                args: ByteBuf::from(vec![0x91, 0x01]),
                priority: 7,
                who_has,
            },
            Message::ComputeTask {
                key: "k2".into(),
                func: "inc".into(),
                args: ByteBuf::from(vec![0x90]),
                priority: u64::MAX,
                who_has: BTreeMap::new(),
            },
            Message::TaskFinished {
                key: "k".into(),
                nbytes: 300,
                duration: 1.5e-6,
                value: Some(ByteBuf::from(vec![0xc0])),
            },
            Message::TaskFinished {
                key: "ü".repeat(40),
                nbytes: 70000,
                duration: 0.0,
                value: None,
            },
            Message::KeyInMemory {
                key: "k".into(),
                nbytes: 1,
                workers: vec!["tcp://a:1".into(), "tcp://b:2".into()],
                value: None,
            },
            Message::FreeKeys {
                keys: vec!["a".into(), "b".into()],
            },
            Message::ReleaseKeys {
                keys: vec![],
                id: None,
            },
            Message::ReleaseKeys {
                keys: vec!["a".into()],
                id: Some(9),
            },
        ]
    }

    #[test]
    fn hot_messages_take_the_fast_path_and_match_serde() {
        for m in hot() {
            let bytes = rmp_serde::to_vec_named(&m).unwrap();
            let mut c = Cursor {
                buf: &bytes,
                pos: 0,
            };
            let fast = message(&mut c).unwrap_or_else(|| panic!("not fast: {m:?}"));
            assert_eq!(c.pos, bytes.len());
            assert_eq!(fast, m);
            assert_eq!(rmp_serde::from_slice::<Message>(&bytes).unwrap(), m);
        }
    }

    #[test]
    fn mixed_batches_decode_like_serde() {
        let mut msgs = hot();
        msgs.insert(1, Message::GetWorkers { id: 3 });
        msgs.push(Message::Close {
            reason: "bye".into(),
        });
        let body = rmp_serde::to_vec_named(&msgs).unwrap();
        assert_eq!(batch(&body).unwrap(), msgs);
    }

    #[test]
    fn unusual_forms_fall_back() {
        use crate::value::Value;
        let enc = |pairs: Vec<(&str, Value)>| {
            crate::value::encode(&Value::Map(
                pairs
                    .into_iter()
                    .map(|(k, v)| (Value::from(k), v))
                    .collect(),
            ))
            .unwrap()
        };
        let base = || {
            vec![
                ("key", Value::from("k")),
                ("nbytes", Value::Int(1)),
                ("duration", Value::Float(0.5)),
            ]
        };
        let mut op_last = base();
        op_last.push(("op", Value::from("task-finished")));
        let mut unknown = vec![("op", Value::from("task-finished"))];
        unknown.extend(base());
        unknown.push(("extra", Value::Int(1)));
        let mut dup = vec![("op", Value::from("task-finished"))];
        dup.extend(base());
        dup.push(("key", Value::from("again")));
        let mut missing = vec![("op", Value::from("task-finished"))];
        missing.extend(base());
        missing.pop();
        for pairs in [op_last, unknown, dup, missing] {
            let bytes = enc(pairs);
            let mut c = Cursor {
                buf: &bytes,
                pos: 0,
            };
            assert!(message(&mut c).is_none());
            // serde's answer stands, whatever it is.
            let body = [&[0x91u8][..], &bytes].concat();
            assert_eq!(
                batch(&body),
                rmp_serde::from_slice::<Vec<Message>>(&body).ok()
            );
        }
    }
}
