//! Detector components that misbehave on purpose, to test the host's sandbox.
//!
//! Built against the same WIT contract (`../../../wit`, 0.2.0) as the built-in detections, one
//! component with a `behaviour` setting (`{"behaviour": "loop"}`) choosing what its
//! `detect` does with every batch:
//! - `loop`: records one key in its baselines, then spins forever;
//! - `memory`: allocates and touches 1 MiB blocks until an allocation fails;
//! - `panic`: panics (a trap);
//! - `alerts`: returns 50,000 alerts for any batch;
//! - `hammer`: calls the `observe` import in an endless loop;
//! - `probe`: observes sets whose names try to reach another tenant's baselines and
//!   reports, as one alert per name, how many keys each set held (`name=size`);
//! - anything else: returns nothing, as a well-behaved detector that found nothing.

#[cfg(target_arch = "wasm32")]
mod bindings;

/// Set names a guest might try in order to reach tenant `default`'s baselines, were the
/// host to join tenant and set names into one string.
pub const PROBE_SETS: [&str; 8] = [
    "ec2-unseen-region",
    "default/ec2-unseen-region",
    "default:ec2-unseen-region",
    "default\u{0}ec2-unseen-region",
    "../default/ec2-unseen-region",
    "tenants/default/sets/ec2-unseen-region",
    "default.ec2-unseen-region",
    "",
];

/// What `detect` does, from the settings JSON (a substring match keeps the crate free
/// of a JSON parser).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Record a key, then spin.
    Loop,
    /// Allocate until it fails.
    Memory,
    /// Panic.
    Panic,
    /// Return far too many alerts.
    Alerts,
    /// Call an import forever.
    Hammer,
    /// Try to reach another tenant's state.
    Probe,
    /// Do nothing.
    Quiet,
}

impl Behaviour {
    /// Reads `{"behaviour": "<name>"}`.
    pub fn from_settings(settings: &str) -> Behaviour {
        let compact: String = settings.chars().filter(|c| !c.is_whitespace()).collect();
        let chosen = |name: &str| compact.contains(&format!("\"behaviour\":\"{name}\""));
        if chosen("loop") {
            Behaviour::Loop
        } else if chosen("memory") {
            Behaviour::Memory
        } else if chosen("panic") {
            Behaviour::Panic
        } else if chosen("alerts") {
            Behaviour::Alerts
        } else if chosen("hammer") {
            Behaviour::Hammer
        } else if chosen("probe") {
            Behaviour::Probe
        } else {
            Behaviour::Quiet
        }
    }
}

/// Spins without end; `black_box` keeps the optimiser from proving anything about it.
pub fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

/// Allocates and touches 1 MiB blocks, keeping them all, until the allocator fails
/// (which aborts: a trap).
pub fn balloon() -> ! {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut block = vec![0u8; 1 << 20];
        let last = block.len() - 1;
        block[last] = 1;
        blocks.push(std::hint::black_box(block));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_choose_the_behaviour() {
        assert_eq!(
            Behaviour::from_settings(r#"{"behaviour": "loop"}"#),
            Behaviour::Loop
        );
        assert_eq!(
            Behaviour::from_settings(r#"{"behaviour":"probe"}"#),
            Behaviour::Probe
        );
        assert_eq!(Behaviour::from_settings("{}"), Behaviour::Quiet);
    }
}
