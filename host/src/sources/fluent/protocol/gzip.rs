//! CompressedPackedForward's gzip payload (also the HTTP source's gzip bodies): one or
//! more concatenated members inflated, refusing more than a byte limit out.

use std::io::Read;

use flate2::read::MultiGzDecoder;

use super::{ProtocolError, garbage};

/// Inflates one or more concatenated gzip members, refusing more than `limit` bytes out.
pub(crate) fn gunzip(bytes: &[u8], limit: usize) -> Result<Vec<u8>, ProtocolError> {
    let mut out = Vec::new();
    if bytes.is_empty() {
        return Ok(out);
    }
    MultiGzDecoder::new(bytes)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|error| garbage(format!("the gzip payload does not inflate: {error}")))?;
    if out.len() > limit {
        return Err(ProtocolError::TooLarge {
            what: "decompressed payload",
            limit,
        });
    }
    Ok(out)
}
