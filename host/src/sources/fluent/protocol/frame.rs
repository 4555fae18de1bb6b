//! Framing: where one msgpack message ends in a growing byte stream, found from the
//! markers and lengths alone (nothing decoded), in one pass however the bytes arrive,
//! refusing a message over its byte limit or nested deeper than `MAX_NESTING`.

use super::{MAX_NESTING, ProtocolError, garbage};

/// How the value at the start of a buffer is laid out.
enum Layout {
    /// Header, payload and child counts are known from the marker alone.
    Fixed {
        header: usize,
        payload: u64,
        children: u64,
    },
    /// A big-endian length of `len_bytes` bytes follows the marker.
    Sized {
        header: usize,
        len_bytes: usize,
        kind: Counts,
    },
}

/// What the length of a [`Layout::Sized`] value counts.
enum Counts {
    /// Bytes of payload (str, bin, ext).
    Payload,
    /// Child values (array).
    Items,
    /// Key-value pairs (map), that is two child values each.
    Pairs,
}

fn layout(marker: u8) -> Result<Layout, ProtocolError> {
    let fixed = |header, payload, children| Layout::Fixed {
        header,
        payload,
        children,
    };
    let sized = |header, len_bytes, kind| Layout::Sized {
        header,
        len_bytes,
        kind,
    };
    Ok(match marker {
        0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => fixed(1, 0, 0),
        0x80..=0x8f => fixed(1, 0, 2 * u64::from(marker & 0x0f)),
        0x90..=0x9f => fixed(1, 0, u64::from(marker & 0x0f)),
        0xa0..=0xbf => fixed(1, u64::from(marker & 0x1f), 0),
        0xc1 => return Err(garbage("reserved msgpack marker 0xc1")),
        0xc4 | 0xd9 => sized(2, 1, Counts::Payload),
        0xc5 | 0xda => sized(3, 2, Counts::Payload),
        0xc6 | 0xdb => sized(5, 4, Counts::Payload),
        // ext 8/16/32: marker, length, then a one-byte type before the payload.
        0xc7 => sized(3, 1, Counts::Payload),
        0xc8 => sized(4, 2, Counts::Payload),
        0xc9 => sized(6, 4, Counts::Payload),
        0xca => fixed(5, 0, 0),
        0xcb => fixed(9, 0, 0),
        0xcc | 0xd0 => fixed(2, 0, 0),
        0xcd | 0xd1 => fixed(3, 0, 0),
        0xce | 0xd2 => fixed(5, 0, 0),
        0xcf | 0xd3 => fixed(9, 0, 0),
        // fixext 1/2/4/8/16: marker, type, payload.
        0xd4 => fixed(3, 0, 0),
        0xd5 => fixed(4, 0, 0),
        0xd6 => fixed(6, 0, 0),
        0xd7 => fixed(10, 0, 0),
        0xd8 => fixed(18, 0, 0),
        0xdc => sized(3, 2, Counts::Items),
        0xdd => sized(5, 4, Counts::Items),
        0xde => sized(3, 2, Counts::Pairs),
        0xdf => sized(5, 4, Counts::Pairs),
    })
}

/// Header bytes, payload bytes and child values of the value starting `rest`, or `None` when
/// `rest` does not yet hold the whole header.
fn header(rest: &[u8]) -> Result<Option<(usize, u64, u64)>, ProtocolError> {
    let Some(&marker) = rest.first() else {
        return Ok(None);
    };
    Ok(match layout(marker)? {
        Layout::Fixed {
            header,
            payload,
            children,
        } => Some((header, payload, children)),
        Layout::Sized {
            header,
            len_bytes,
            kind,
        } => rest.get(1..1 + len_bytes).map(|bytes| {
            let n = bytes
                .iter()
                .fold(0u64, |acc, &byte| (acc << 8) | u64::from(byte));
            match kind {
                Counts::Payload => (header, n, 0),
                Counts::Items => (header, 0, n),
                Counts::Pairs => (header, 0, 2 * n),
            }
        }),
    })
}

/// Finds where the msgpack value at the start of a growing buffer ends, resuming where the
/// previous call stopped so that a large message costs one pass however it is split.
#[derive(Debug, Default)]
pub(crate) struct FrameScanner {
    /// Bytes of the current value already walked over.
    pos: usize,
    /// For each open container (outermost first), how many child values are still to come.
    pending: Vec<u64>,
}

impl FrameScanner {
    /// Returns the length of the complete value at the start of `buf`, `None` when more bytes
    /// are needed, or an error when the bytes are not msgpack or exceed `max` bytes.
    ///
    /// `buf` must start at the current value and only grow between calls; once a length is
    /// returned the caller removes that many bytes and the scanner starts afresh.
    pub(crate) fn scan(&mut self, buf: &[u8], max: usize) -> Result<Option<usize>, ProtocolError> {
        if self.pending.is_empty() {
            self.pos = 0;
            self.pending.push(1);
        }
        loop {
            while self.pending.last() == Some(&0) {
                self.pending.pop();
            }
            if self.pending.is_empty() {
                return Ok(Some(std::mem::take(&mut self.pos)));
            }
            let rest = &buf[self.pos..];
            let Some((header, payload, children)) = header(rest)? else {
                return incomplete(buf.len(), max);
            };
            let total = header as u64 + payload;
            if self.pos as u64 + total > max as u64 {
                return Err(ProtocolError::TooLarge {
                    what: "message",
                    limit: max,
                });
            }
            // Bounded by `max` just above, so it fits.
            let total = total as usize;
            if rest.len() < total {
                return incomplete(buf.len(), max);
            }
            self.pos += total;
            if let Some(open) = self.pending.last_mut() {
                *open -= 1;
            }
            if children > 0 {
                if self.pending.len() > MAX_NESTING {
                    return Err(garbage(format!(
                        "msgpack nested deeper than {MAX_NESTING} levels"
                    )));
                }
                self.pending.push(children);
            }
        }
    }
}

fn incomplete(buffered: usize, max: usize) -> Result<Option<usize>, ProtocolError> {
    if buffered > max {
        Err(ProtocolError::TooLarge {
            what: "message",
            limit: max,
        })
    } else {
        Ok(None)
    }
}
