//! Retry pacing for the delivery loops: exponential backoff with jitter, and a stop
//! signal that cuts a backoff sleep short at shutdown.
//!
//! The delay before retry `n` (counting from zero) is drawn uniformly from
//! `[base / 2, base]`, where `base = min(initial * 2^n, max)`: the wait grows quickly
//! while a receiver is down, and outputs that failed together do not all retry in the
//! same instant when it comes back.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Default delay before the first retry, in milliseconds.
pub const DEFAULT_INITIAL_MS: u64 = 200;

/// Default longest delay between two retries, in milliseconds.
pub const DEFAULT_MAX_MS: u64 = 30_000;

/// The delays between the attempts of a failing operation.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
    rng: u64,
}

impl Backoff {
    /// A backoff starting at `initial` and doubling up to `max` (both at least 1 ms).
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        let initial = initial.max(Duration::from_millis(1));
        Backoff {
            initial,
            max: max.max(initial),
            attempt: 0,
            rng: random_u64() | 1,
        }
    }

    /// A backoff from millisecond settings, as the output configurations give them.
    pub fn from_millis(initial_ms: u64, max_ms: u64) -> Backoff {
        Backoff::new(
            Duration::from_millis(initial_ms),
            Duration::from_millis(max_ms),
        )
    }

    /// The delay to wait before the next attempt; each call counts one failure.
    pub fn next_delay(&mut self) -> Duration {
        let factor = 1u32 << self.attempt.min(20);
        let base = self.initial.saturating_mul(factor).min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let half = base / 2;
        let spread = u64::try_from((base - half).as_micros()).unwrap_or(u64::MAX);
        let jitter = if spread == 0 {
            0
        } else {
            self.next_random() % (spread + 1)
        };
        half + Duration::from_micros(jitter)
    }

    /// Failures counted since the last [`Backoff::reset`].
    pub fn failures(&self) -> u32 {
        self.attempt
    }

    /// Starts over from the initial delay, after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// xorshift64*: plenty for spreading retries, and no dependency.
    fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// 64 bits that differ between calls and between processes (not for cryptography).
///
/// The standard library seeds every `RandomState` from the operating system's random
/// source; mixing in a counter and the clock makes each call distinct.
pub fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    hasher.write_u128(now.as_nanos());
    hasher.finish()
}

/// A flag that asks a background thread to stop, and wakes it from its sleeps.
#[derive(Debug, Default)]
pub struct StopSignal {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl StopSignal {
    /// A signal not yet raised.
    pub fn new() -> StopSignal {
        StopSignal::default()
    }

    /// Asks the thread to stop, waking it if it sleeps.
    pub fn raise(&self) {
        *self.stopped.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.wake.notify_all();
    }

    /// True once [`StopSignal::raise`] was called.
    pub fn is_raised(&self) -> bool {
        *self.stopped.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sleeps for `duration` or until the signal is raised; true when raised.
    pub fn sleep(&self, duration: Duration) -> bool {
        let deadline = Instant::now() + duration;
        let mut stopped = self.stopped.lock().unwrap_or_else(|p| p.into_inner());
        while !*stopped {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            stopped = self
                .wake
                .wait_timeout(stopped, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_within_jitter_and_stop_at_the_maximum() {
        let mut backoff = Backoff::from_millis(200, 30_000);
        let mut base = 200u64;
        for _ in 0..12 {
            let delay = backoff.next_delay().as_millis() as u64;
            assert!(
                delay >= base / 2 && delay <= base,
                "{delay} ms outside [{}, {base}]",
                base / 2
            );
            base = (base * 2).min(30_000);
        }
        assert_eq!(backoff.failures(), 12);
        for _ in 0..100 {
            assert!(backoff.next_delay() <= Duration::from_secs(30));
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(200));
    }

    #[test]
    fn jitter_spreads_the_delays() {
        let mut backoff = Backoff::from_millis(1_000, 1_000);
        let delays: std::collections::HashSet<Duration> =
            (0..20).map(|_| backoff.next_delay()).collect();
        assert!(delays.len() > 10, "{delays:?}");
    }

    #[test]
    fn a_raised_signal_cuts_a_sleep_short() {
        let signal = std::sync::Arc::new(StopSignal::new());
        assert!(!signal.sleep(Duration::from_millis(5)));
        let raiser = std::sync::Arc::clone(&signal);
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            raiser.raise();
        });
        // An hour: only the raise ends this sleep, so a missed wakeup hangs the test
        // instead of being measured.
        assert!(signal.sleep(Duration::from_secs(3600)));
        assert!(signal.is_raised());
        thread.join().unwrap();
    }

    #[test]
    fn random_values_differ() {
        assert_ne!(random_u64(), random_u64());
    }
}
