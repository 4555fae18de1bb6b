//! The memory budget for what strangers send: one count of the bytes every source holds
//! in flight (HTTP bodies as they arrive and once inflated, Forward messages as they
//! arrive and their inflated payloads, the events parsed from them), shared by every
//! connection of every listener.
//!
//! Each holder takes a [`Reservation`] and grows it before its buffer grows; a growth
//! the budget cannot cover is refused at once, never waited for (two half-received
//! messages waiting on each other's bytes would wait forever), and the source answers
//! that request or connection with a retryable refusal: HTTP 503 with `Retry-After`, a
//! Forward connection closed without its ack, which Fluent Bit and Fluentd retry. So a
//! gzip bomb stops where the budget does, wherever its bytes came from, and one that
//! takes the budget gives it back as soon as it is refused. Per-request limits
//! (`max_body_bytes`, `max_decompressed_bytes`) still apply on top.
//!
//! The budget bounds resident memory only if freed bytes leave the process before
//! another holder takes them. Allocators keep freed pages for a while (mimalloc purges
//! them after a delay), so bombs growing buffers one after another would hold the
//! budget's bytes once in use and again in freed pages: up to twice the budget. The
//! binary, which picks the allocator, sets [`set_return_freed`]; a reservation calls it
//! before it gives back a large share (after its holder freed the buffer), so those
//! pages are returned first.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// Default budget: 256 MiB in flight across all sources.
pub const DEFAULT_MAX_INFLIGHT_BYTES: usize = 256 << 20;

/// A give-back of at least this fraction of the budget (16 MiB of the default) first
/// returns freed memory to the OS; smaller ones, such as a usual batch's body, do not
/// pay for it.
const RETURN_FREED_SHARE: usize = 16;

/// Returns the allocator's freed pages to the OS; see [`set_return_freed`].
static RETURN_FREED: OnceLock<fn()> = OnceLock::new();

/// Sets how the process returns the memory its allocator holds after frees to the OS
/// (for mimalloc, `mi_collect(true)`). Without it, the budget counts the bytes held but
/// the allocator may keep freed pages a while after they were given back. Only the first
/// call counts.
pub fn set_return_freed(hook: fn()) {
    let _ = RETURN_FREED.set(hook);
}

/// The bytes all sources may hold in flight, and how many they hold now.
#[derive(Debug, Clone)]
pub struct Budget {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    limit: usize,
    used: AtomicUsize,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Budget {
        Budget {
            inner: Arc::new(Inner {
                limit,
                used: AtomicUsize::new(0),
            }),
        }
    }

    /// An empty reservation, to grow as a buffer fills.
    pub fn reservation(&self, source: &'static str) -> Reservation {
        Reservation {
            budget: self.clone(),
            source,
            bytes: 0,
        }
    }

    /// Bytes held now.
    pub fn in_use(&self) -> usize {
        self.inner.used.load(Ordering::Relaxed)
    }

    /// The limit, in bytes.
    pub fn limit(&self) -> usize {
        self.inner.limit
    }

    fn take(&self, bytes: usize) -> bool {
        let limit = self.inner.limit;
        let taken = self
            .inner
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|after| *after <= limit)
            })
            .is_ok();
        if taken {
            self.publish();
        }
        taken
    }

    fn give_back(&self, bytes: usize) {
        if bytes >= self.inner.limit / RETURN_FREED_SHARE
            && let Some(return_freed) = RETURN_FREED.get()
        {
            return_freed();
        }
        self.inner.used.fetch_sub(bytes, Ordering::AcqRel);
        self.publish();
    }

    fn publish(&self) {
        metrics::gauge!("minewatch_source_inflight_bytes").set(self.in_use() as f64);
    }
}

impl Default for Budget {
    fn default() -> Self {
        Budget::new(DEFAULT_MAX_INFLIGHT_BYTES)
    }
}

/// Bytes one request, message or connection holds; given back when dropped. A holder
/// keeps its reservation after its buffer (declared after it, or dropped later), so the
/// buffer is freed before its share is given back.
#[derive(Debug)]
pub struct Reservation {
    budget: Budget,
    source: &'static str,
    bytes: usize,
}

/// The budget could not cover a growth: the holder must let go of what it was reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverBudget {
    /// The whole budget, in bytes (for messages).
    pub limit: usize,
}

impl std::fmt::Display for OverBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the sources' memory budget ({} MiB in flight, max_inflight_bytes) is taken; retry later",
            self.limit >> 20
        )
    }
}

impl std::error::Error for OverBudget {}

impl Reservation {
    /// Makes the reservation at least `bytes`, taking the difference from the budget.
    ///
    /// # Errors
    /// The budget cannot cover it; the reservation keeps what it had, and the refusal
    /// is counted in `minewatch_budget_refusals_total`.
    pub fn cover(&mut self, bytes: usize) -> Result<(), OverBudget> {
        if bytes <= self.bytes {
            return Ok(());
        }
        if self.budget.take(bytes - self.bytes) {
            self.bytes = bytes;
            Ok(())
        } else {
            metrics::counter!("minewatch_budget_refusals_total", "source" => self.source)
                .increment(1);
            Err(OverBudget {
                limit: self.budget.limit(),
            })
        }
    }

    /// Makes `buffer` hold at least `len` bytes (`len` at most `limit`), covered by this
    /// reservation: it grows by half at a time, to at least `first` and never past
    /// `limit`, and while the bytes move to the bigger allocation both are covered, so
    /// the budget bounds the peak, not only what stays.
    ///
    /// # Errors
    /// The budget cannot cover the growth; the buffer is left as it was.
    pub fn grow(
        &mut self,
        buffer: &mut Vec<u8>,
        len: usize,
        first: usize,
        limit: usize,
    ) -> Result<(), OverBudget> {
        let capacity = buffer.capacity();
        if len <= capacity {
            return Ok(());
        }
        let grown = (capacity + capacity / 2).max(len).max(first).min(limit);
        self.cover(capacity + grown)?;
        buffer.reserve_exact(grown - buffer.len());
        self.shrink_to(buffer.capacity());
        Ok(())
    }

    /// Shrinks the reservation to `bytes`, giving the rest back.
    pub fn shrink_to(&mut self, bytes: usize) {
        if bytes < self.bytes {
            self.budget.give_back(self.bytes - bytes);
            self.bytes = bytes;
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.shrink_to(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_share_one_limit_and_give_back_when_dropped() {
        let budget = Budget::new(100);
        let mut a = budget.reservation("http");
        let mut b = budget.reservation("forward");
        a.cover(60).unwrap();
        assert_eq!(b.cover(50), Err(OverBudget { limit: 100 }));
        assert_eq!(b.bytes(), 0);
        b.cover(40).unwrap();
        assert_eq!(budget.in_use(), 100);
        a.shrink_to(10);
        b.cover(90).unwrap();
        drop(a);
        drop(b);
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn covering_less_than_held_takes_nothing() {
        let budget = Budget::new(10);
        let mut a = budget.reservation("http");
        a.cover(8).unwrap();
        a.cover(3).unwrap();
        assert_eq!((a.bytes(), budget.in_use()), (8, 8));
    }
}
