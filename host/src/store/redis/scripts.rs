//! The Lua scripts every shared decision runs as (`*.lua` beside this file), and a
//! connection that has them loaded: a script is called by the SHA-1 `SCRIPT LOAD`
//! answered, indexed by [`Script`] as `usize`.

use std::time::Duration;

use anyhow::{Context, Result};

/// How many scripts [`Script`] names.
pub(super) const SCRIPTS: usize = 7;

/// The Lua scripts, loaded once per connection and called by their SHA-1.
#[derive(Clone, Copy)]
pub(super) enum Script {
    Observe,
    Add,
    Record,
    Buckets,
    Touch,
    Keys,
    Episode,
}

impl Script {
    const ALL: [Script; SCRIPTS] = [
        Script::Observe,
        Script::Add,
        Script::Record,
        Script::Buckets,
        Script::Touch,
        Script::Keys,
        Script::Episode,
    ];

    pub(super) fn source(self) -> &'static str {
        match self {
            Script::Observe => include_str!("observe.lua"),
            Script::Add => include_str!("add.lua"),
            Script::Record => include_str!("record.lua"),
            Script::Buckets => include_str!("buckets.lua"),
            Script::Touch => include_str!("touch.lua"),
            Script::Keys => include_str!("keys.lua"),
            Script::Episode => include_str!("episode.lua"),
        }
    }
}

/// A live connection with the scripts loaded.
pub(super) struct Connection {
    pub(super) connection: redis::Connection,
    pub(super) shas: [String; SCRIPTS],
}

impl Connection {
    /// Connects to `client` (`url` names it in errors), with `timeout` on the connect and
    /// every read and write, and loads the scripts.
    ///
    /// # Errors
    /// Redis cannot be reached, or refused a script.
    pub(super) fn open(client: &redis::Client, url: &str, timeout: Duration) -> Result<Connection> {
        let mut connection = client
            .get_connection_with_timeout(timeout)
            .with_context(|| format!("cannot connect to Redis at {url}"))?;
        connection.set_read_timeout(Some(timeout))?;
        connection.set_write_timeout(Some(timeout))?;
        let mut shas: [String; SCRIPTS] = Default::default();
        for (sha, script) in shas.iter_mut().zip(Script::ALL) {
            *sha = redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(script.source())
                .query(&mut connection)
                .context("Redis refused to load a script")?;
        }
        tracing::info!(%url, "Connected to Redis.");
        Ok(Connection { connection, shas })
    }
}
