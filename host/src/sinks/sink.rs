//! The interface every output implements.

use anyhow::Result;
use serde_json::Value;

/// Receives rendered alerts (or, for passthrough outputs, enriched events).
///
/// The pipeline calls [`AlertSink::write`] for each item of a batch, then
/// [`AlertSink::flush`]; only when every sink's flush has returned is the batch's
/// baseline committed and its input acknowledged upstream.
pub trait AlertSink: Send {
    /// Queues one item.
    ///
    /// # Errors
    /// Writing failed.
    fn write(&mut self, item: &Value) -> Result<()>;

    /// Queues one line of input passed through unchanged (a passthrough output): its
    /// bytes, without the newline. Sinks that write lines write it as it is; the others
    /// write [`line_item`]. No default, so a wrapper cannot lose the bytes by forgetting it.
    ///
    /// # Errors
    /// Writing failed.
    fn write_line(&mut self, line: &[u8]) -> Result<()>;

    /// Makes everything queued durable (a file or spool: written and fsynced) or
    /// delivered (stdout: flushed).
    ///
    /// # Errors
    /// Writing or syncing failed; the batch must not be acknowledged.
    fn flush(&mut self) -> Result<()>;

    /// False while the sink cannot take another batch (a spool at its size limit);
    /// the pipeline then refuses batches before processing them, and ingest answers
    /// with back-pressure.
    fn has_room(&self) -> bool {
        true
    }

    /// The spool a network output delivers from, to watch its backlog; none for
    /// outputs written synchronously (stdout, files).
    fn spool(&self) -> Option<super::spool::SpoolHandle> {
        None
    }
}

/// A passed-through line as an item, for sinks that send items rather than lines: the
/// JSON it holds, or the line as a JSON string when it is not JSON.
pub fn line_item(line: &[u8]) -> Value {
    serde_json::from_slice(line)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(line).into_owned()))
}
