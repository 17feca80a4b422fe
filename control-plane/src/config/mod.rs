//! Configuration of `vbng-cp`: the TOML file, its embedded defaults and the
//! command-line flags that override it.
//!
//! - [`file`](mod@file): the TOML schema ([`Config`] and its sections), with every
//!   default documented on its field.
//! - [`cli`]: the `vbng-cp` flags ([`Cli`]) and how they override the file.
//! - [`radius`]: `[aaa]` (local file or RADIUS) and `[radius]`.
//! - [`load`]: reading and validating a file, turning TOML errors into one
//!   line that names the file, the key and the fix ([`ConfigError`]).

pub mod cli;
pub mod file;
pub mod load;
pub mod pppoe;
pub mod radius;

pub use cli::Cli;
pub use file::{ApiSection, Config, DhcpSection, GtpuSection, PfcpSection, UserPlaneConfig};
pub use load::{load_config, parse_config};
pub use radius::{AaaBackend, AaaSection, IpoeUserName, RadiusSection, RadiusServer};

/// A configuration the service cannot run with.
///
/// Its `Display` is one line: `FILE: key `KEY`: PROBLEM; fix: HINT`.
#[derive(Debug, thiserror::Error)]
#[error("{file}: key `{key}`: {problem}; fix: {fix}")]
pub struct ConfigError {
    /// The file (or `--flag`, or `<defaults>`) the bad value came from.
    pub file: String,
    /// Dotted key path, such as `pfcp.listen` or `pools[0].gateway`.
    pub key: String,
    /// What was expected and what was found.
    pub problem: String,
    /// What the user should change.
    pub fix: String,
}

impl ConfigError {
    /// A new error about `key` in `file`.
    pub fn new(
        file: impl Into<String>,
        key: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        ConfigError {
            file: file.into(),
            key: key.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}
