//! Test-only fault points: pause or crash `serve` at a named point of the request path.
//!
//! **For tests only.** Compiled in debug builds alone (`cfg(debug_assertions)`); in a
//! release build [`point`] is an empty function and the variables below are never read.
//! The end-to-end tests in `tests/promises.rs` use it to prove what an acknowledgement
//! promises: that it waits for the outputs, that alerts are synced before the baselines
//! commit, and that several sidecars racing one key raise one alert.
//!
//! - `MINEWATCH_TEST_HOOK=<action>@<point>`, `action` one of `pause` (log
//!   `Test hook: paused at <point>` and wait until the file named by
//!   `MINEWATCH_TEST_RELEASE` exists) or `crash` (log `Test hook: crashing at <point>`
//!   and SIGKILL the process).
//! - Points: `decode` (an HTTP body being decoded, before it is queued), `before-detect`
//!   (a batch about to be judged), `before-write` (a batch judged, with alerts, before
//!   any output is written), `before-commit` (a batch's alerts written and synced to
//!   every output, its baselines not yet committed), `redis-observed:<set>` (Redis has
//!   answered which keys of the first-seen set `<set>` are new, e.g.
//!   `redis-observed:ec2-unseen-user`, and the batch goes on).
//!   `before-write` and `before-commit` fire only for batches that raised alerts.

/// Reaches the named point: pauses or crashes when `MINEWATCH_TEST_HOOK` names it.
/// Does nothing in a release build.
#[cfg(debug_assertions)]
pub fn point(name: &str) {
    reached(name, None);
}

/// Reaches the point `<name>:<detail>` (see [`point`]), with nothing built for it in a
/// release build.
#[cfg(debug_assertions)]
pub fn point_of(name: &str, detail: &str) {
    reached(name, Some(detail));
}

#[cfg(debug_assertions)]
fn reached(name: &str, detail: Option<&str>) {
    let Ok(hook) = std::env::var("MINEWATCH_TEST_HOOK") else {
        return;
    };
    let Some((action, at)) = hook.split_once('@') else {
        return;
    };
    let named = match detail {
        None => at == name,
        Some(detail) => at
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(':'))
            .is_some_and(|rest| rest == detail),
    };
    if !named {
        return;
    }
    let name = at;
    match action {
        "pause" => {
            let release = std::env::var_os("MINEWATCH_TEST_RELEASE")
                .map(std::path::PathBuf::from)
                .expect("MINEWATCH_TEST_RELEASE names the file that ends a pause");
            if release.exists() {
                return;
            }
            tracing::warn!(point = name, "Test hook: paused at {name}");
            while !release.exists() {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
        "crash" => {
            tracing::warn!(point = name, "Test hook: crashing at {name}");
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &std::process::id().to_string()])
                .status();
            // `kill` delivers the signal before it exits; never go on past the point.
            std::process::abort();
        }
        _ => {}
    }
}

/// Reaches the named point: pauses or crashes when `MINEWATCH_TEST_HOOK` names it.
/// Does nothing in a release build.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn point(_name: &str) {}

/// Reaches the point `<name>:<detail>` (see [`point`]), with nothing built for it in a
/// release build.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn point_of(_name: &str, _detail: &str) {}
