//! CompressedPackedForward's gzip payload (also the HTTP source's gzip bodies): one or
//! more concatenated members inflated, refusing more than a byte limit out, with the
//! memory it takes covered by the sources' [`Budget`] as it grows.

use std::io::{ErrorKind, Read};

use flate2::read::MultiGzDecoder;

use super::{ProtocolError, garbage};
use crate::sources::budget::{Budget, Reservation};

/// Bytes inflated at a time.
const STEP: usize = 64 * 1024;

/// An inflated payload and the share of the budget that covers it.
#[derive(Debug)]
pub(crate) struct Inflated {
    /// The inflated bytes.
    pub(crate) bytes: Vec<u8>,
    /// Covers `bytes`' capacity until dropped.
    pub(crate) reservation: Reservation,
}

/// Inflates one or more concatenated gzip members, refusing more than `limit` bytes out
/// and any growth `budget` cannot cover (counted for `source`). The buffer grows by half
/// at a time and never past `limit`, so it holds at most 1.5x what came out, and 2.5x
/// while it moves to a bigger allocation, which the budget covers too.
pub(crate) fn gunzip(
    bytes: &[u8],
    limit: usize,
    budget: &Budget,
    source: &'static str,
) -> Result<Inflated, ProtocolError> {
    let mut out = Inflated {
        bytes: Vec::new(),
        reservation: budget.reservation(source),
    };
    if bytes.is_empty() {
        return Ok(out);
    }
    let mut decoder = MultiGzDecoder::new(bytes);
    let mut step = vec![0; STEP];
    loop {
        let n = match decoder.read(&mut step) {
            Ok(0) => return Ok(out),
            Ok(n) => n,
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            Err(error) => {
                return Err(garbage(format!(
                    "the gzip payload does not inflate: {error}"
                )));
            }
        };
        let len = out.bytes.len() + n;
        if len > limit {
            return Err(ProtocolError::TooLarge {
                what: "decompressed payload",
                limit,
            });
        }
        out.reservation
            .grow(&mut out.bytes, len, STEP, limit)
            .map_err(ProtocolError::OverBudget)?;
        out.bytes.extend_from_slice(&step[..n]);
    }
}
