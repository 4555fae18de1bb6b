//! Structure-aware Fluent Forward input: valid msgpack messages in the four modes,
//! built from the fuzzer's bytes, whose length headers may lie.
//!
//! Bytes alone rarely reach a gzip member inside a `bin` inside the third item of an
//! array; this builder always does, and then lies where a stranger would: a string,
//! binary, array or map header claiming more (or fewer) items or bytes than follow, up
//! to 4 GiB. Messages without a lie must round-trip: each decodes to exactly the
//! records built, as JSON.

use arbitrary::{Result, Unstructured};
use serde_json::{Map, Value};

use super::{LIMIT, text};

/// Keys records are built from: CloudTrail's, shippers' wrappers, and one of no meaning.
const KEYS: [&str; 10] = [
    "eventName",
    "eventSource",
    "eventTime",
    "awsRegion",
    "userIdentity",
    "requestParameters",
    "message",
    "log",
    "Records",
    "x",
];

/// Lengths a lying header claims.
const LIES: [u32; 9] = [
    0,
    1,
    0x7f,
    0xffff,
    0x1_0000,
    LIMIT as u32,
    LIMIT as u32 + 1,
    0x7fff_ffff,
    u32::MAX,
];

/// Builds up to eight messages from `data`, scans and decodes them as a connection's
/// bytes (checking what [`super::forward_stream`] checks), plus the round trip.
pub fn forward_frames(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok((bytes, expected)) = build(&mut u) else {
        return;
    };
    let (decoded, unscanned) = super::scan_forward(&bytes);
    if let Some(expected) = expected {
        assert_eq!(unscanned, 0, "honest bytes left unscanned");
        assert_eq!(decoded.len(), expected.len(), "honest messages lost");
        for (got, want) in decoded.into_iter().zip(expected) {
            match got {
                Ok(Some(records)) => assert_eq!(records, want, "an honest message changed"),
                other => panic!("an honest message decoded as {other:?}"),
            }
        }
    }
}

/// Each message's records, as JSON.
type Records = Vec<Vec<Value>>;

/// The connection's bytes, and when no header lies, each message's records.
fn build(u: &mut Unstructured) -> Result<(Vec<u8>, Option<Records>)> {
    let mut writer = Writer {
        out: Vec::new(),
        lying: u.ratio(1, 2)?,
        lied: false,
    };
    let mut expected = Vec::new();
    for _ in 0..u.int_in_range(1..=8)? {
        expected.push(writer.message(u)?);
    }
    let honest = !writer.lied;
    Ok((writer.out, honest.then_some(expected)))
}

/// A msgpack writer whose headers may lie.
struct Writer {
    out: Vec<u8>,
    /// Whether headers may lie in this input.
    lying: bool,
    /// Whether one did.
    lied: bool,
}

impl Writer {
    /// The length a header claims for `len` items or bytes.
    fn claim(&mut self, u: &mut Unstructured, len: usize) -> Result<u32> {
        if self.lying && u.ratio(1, 6)? {
            let lie = *u.choose(&LIES)?;
            self.lied |= lie as usize != len;
            return Ok(lie);
        }
        Ok(len as u32)
    }

    fn str(&mut self, u: &mut Unstructured, text: &str) -> Result<()> {
        let claim = self.claim(u, text.len())?;
        if claim < 32 && claim as usize == text.len() {
            self.out.push(0xa0 | claim as u8);
        } else {
            self.out.push(0xdb);
            self.out.extend_from_slice(&claim.to_be_bytes());
        }
        self.out.extend_from_slice(text.as_bytes());
        Ok(())
    }

    fn bin(&mut self, u: &mut Unstructured, bytes: &[u8]) -> Result<()> {
        let claim = self.claim(u, bytes.len())?;
        self.out.push(0xc6);
        self.out.extend_from_slice(&claim.to_be_bytes());
        self.out.extend_from_slice(bytes);
        Ok(())
    }

    fn array(&mut self, u: &mut Unstructured, len: usize) -> Result<()> {
        let claim = self.claim(u, len)?;
        self.out.push(0xdd);
        self.out.extend_from_slice(&claim.to_be_bytes());
        Ok(())
    }

    fn map(&mut self, u: &mut Unstructured, len: usize) -> Result<()> {
        let claim = self.claim(u, len)?;
        self.out.push(0xdf);
        self.out.extend_from_slice(&claim.to_be_bytes());
        Ok(())
    }

    fn int(&mut self, value: i64) {
        self.out.push(0xd3);
        self.out.extend_from_slice(&value.to_be_bytes());
    }

    /// An event time: an integer, or Fluent's EventTime (ext 0, 8 bytes).
    fn time(&mut self, u: &mut Unstructured) -> Result<()> {
        let seconds: u32 = u.arbitrary()?;
        if u.ratio(1, 2)? {
            self.int(i64::from(seconds));
        } else {
            let nanos = u.int_in_range(0..=999_999_999u32)?;
            self.out.extend_from_slice(&[0xd7, 0x00]);
            self.out.extend_from_slice(&seconds.to_be_bytes());
            self.out.extend_from_slice(&nanos.to_be_bytes());
        }
        Ok(())
    }

    /// One message in a mode the input picks; returns its records as JSON.
    fn message(&mut self, u: &mut Unstructured) -> Result<Vec<Value>> {
        let tag = if u.ratio(1, 8)? {
            text(u)?
        } else {
            "cloudtrail".to_string()
        };
        let mode = u.int_in_range(0..=3u8)?;
        let entries = if mode == 0 {
            1
        } else {
            u.int_in_range(0..=4usize)?
        };
        let chunk = u.ratio(1, 3)?;
        let options = usize::from(chunk) + usize::from(mode == 3);
        let with_options = options > 0 || u.ratio(1, 4)?;
        self.array(u, 2 + usize::from(mode == 0) + usize::from(with_options))?;
        self.str(u, &tag)?;
        let mut records = Vec::new();
        match mode {
            0 => {
                self.time(u)?;
                records.push(self.record(u)?);
            }
            1 => {
                self.array(u, entries)?;
                for _ in 0..entries {
                    records.push(self.entry(u)?);
                }
            }
            _ => {
                let mut inner = Writer {
                    out: Vec::new(),
                    lying: self.lying,
                    lied: false,
                };
                for _ in 0..entries {
                    records.push(inner.entry(u)?);
                }
                self.lied |= inner.lied;
                let payload = if mode == 3 {
                    let (payload, bomb) = gzip(u, &inner.out)?;
                    self.lied |= bomb;
                    payload
                } else {
                    inner.out
                };
                self.bin(u, &payload)?;
            }
        }
        if with_options {
            self.map(u, options)?;
            if chunk {
                self.str(u, "chunk")?;
                self.str(u, "cDg2NTQzMjE=")?;
            }
            if mode == 3 {
                self.str(u, "compressed")?;
                self.str(u, "gzip")?;
            }
        }
        Ok(records)
    }

    /// `[time, record]`.
    fn entry(&mut self, u: &mut Unstructured) -> Result<Value> {
        self.array(u, 2)?;
        self.time(u)?;
        self.record(u)
    }

    /// A map of distinct string keys.
    fn record(&mut self, u: &mut Unstructured) -> Result<Value> {
        let mut keys: Vec<&str> = Vec::new();
        for _ in 0..u.int_in_range(0..=6usize)? {
            let key = *u.choose(&KEYS)?;
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        self.map(u, keys.len())?;
        let mut record = Map::new();
        for key in keys {
            self.str(u, key)?;
            record.insert(key.to_string(), self.value(u, 0)?);
        }
        Ok(Value::Object(record))
    }

    /// A value with a JSON equivalent: nil, booleans, integers, strings, arrays, maps.
    fn value(&mut self, u: &mut Unstructured, depth: u32) -> Result<Value> {
        let kind = if depth >= 4 {
            u.int_in_range(0..=3u8)?
        } else {
            u.int_in_range(0..=5u8)?
        };
        Ok(match kind {
            0 => {
                self.out.push(0xc0);
                Value::Null
            }
            1 => {
                let b: bool = u.arbitrary()?;
                self.out.push(if b { 0xc3 } else { 0xc2 });
                Value::Bool(b)
            }
            2 => {
                let n: i64 = u.arbitrary()?;
                self.int(n);
                n.into()
            }
            3 => {
                let text = if u.ratio(1, 2)? {
                    u.choose(&["RunInstances", "ec2.amazonaws.com", "us-east-1"])?
                        .to_string()
                } else {
                    text(u)?
                };
                self.str(u, &text)?;
                Value::String(text)
            }
            4 => {
                let len = u.int_in_range(0..=4usize)?;
                self.array(u, len)?;
                let items = (0..len)
                    .map(|_| self.value(u, depth + 1))
                    .collect::<Result<Vec<_>>>()?;
                Value::Array(items)
            }
            _ => {
                let len = u.int_in_range(0..=3usize)?;
                self.map(u, len)?;
                let mut map = Map::new();
                for index in 0..len {
                    // Distinct keys, so the JSON object keeps every pair.
                    let key = format!("k{index}");
                    self.str(u, &key)?;
                    map.insert(key, self.value(u, depth + 1)?);
                }
                Value::Object(map)
            }
        })
    }
}

/// `bytes` gzipped, sometimes followed by a bomb: a second member of zeros that
/// inflates past the limit (then true).
fn gzip(u: &mut Unstructured, bytes: &[u8]) -> Result<(Vec<u8>, bool)> {
    let mut out = super::gzip(bytes);
    let bomb = u.ratio(1, 16)?;
    if bomb {
        out.extend_from_slice(super::bomb());
    }
    Ok((out, bomb))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Some inputs build honest connections, whose round trip is then checked.
    #[test]
    fn honest_connections_are_built_and_round_trip() {
        let mut honest = 0;
        for seed in 0..200u64 {
            let data = super::super::noise(seed, 600);
            if let Ok((_, Some(expected))) = build(&mut Unstructured::new(&data)) {
                honest += usize::from(expected.iter().any(|records| !records.is_empty()));
            }
            forward_frames(&data);
        }
        assert!(honest >= 20, "{honest} of 200 inputs built honest records");
    }
}
