//! The namespace lab behind `vbngctl demo` and the end-to-end tests.
//!
//! It builds network namespaces joined by veth pairs (see [`topology`]),
//! starts `vbng-up` and `vbng-cp` in the BNG namespace, and drives real
//! subscribers (ISC `dhclient`, `ping`) through the user plane. Everything it
//! makes is removed when the [`topology::Lab`] value is dropped.

pub mod access_node;
pub mod demo;
pub mod netns;
pub mod procs;
pub mod rawpkt;
pub mod topology;
pub mod uml;

use std::path::PathBuf;

pub use demo::{DemoOptions, run_demo};

/// What went wrong while building or driving the lab.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A command or system call failed; the text says which and why.
    #[error("{0}")]
    Command(String),
    /// A named demo step failed.
    #[error("step \"{step}\" failed: {detail}")]
    Step {
        /// The step's name, as the demo prints it.
        step: String,
        /// What failed.
        detail: String,
    },
    /// Ctrl-C or SIGTERM arrived.
    #[error("interrupted")]
    Interrupted,
}

/// Checks `cond` every 100 ms until it holds or `timeout` has passed, and once more at
/// the end; true if it held.
pub fn wait_until(timeout: std::time::Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    cond()
}

/// Decodes the capture `file` with `tshark -r FILE -V` and `options` (`-d`, `-o`, ...)
/// and returns the decoded text; Err says why it does not decode cleanly: tshark failed,
/// or it reports a malformed packet or an expert error or warning (the line is quoted).
pub fn tshark_verbose(file: &std::path::Path, options: &[&str]) -> Result<String, String> {
    let out = std::process::Command::new("tshark")
        .arg("-r")
        .arg(file)
        .arg("-V")
        .args(options)
        .output()
        .map_err(|e| format!("cannot run tshark: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "tshark failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    for bad in ["Malformed", "[Expert Info (Error", "[Expert Info (Warning"] {
        if let Some(hit) = text.lines().find(|l| l.contains(bad)) {
            return Err(format!("tshark reports {hit:?} in {}", file.display()));
        }
    }
    Ok(text)
}

/// Finds one of the project's binaries: `$VBNG_BIN_DIR`, then the directory
/// of the running executable and its parent (so both `target/debug/vbngctl`
/// and a test binary in `target/debug/deps/` find their siblings).
pub fn find_binary(name: &str) -> Result<PathBuf, LabError> {
    let mut dirs = Vec::new();
    if let Ok(dir) = std::env::var("VBNG_BIN_DIR") {
        dirs.push(PathBuf::from(dir));
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        dirs.push(dir.to_owned());
        dirs.extend(dir.parent().map(std::path::Path::to_owned));
    }
    dirs.iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            LabError::Command(format!(
                "cannot find the `{name}` binary next to this program (looked in {dirs:?}); \
             build it with `cargo build --workspace --bins` or set VBNG_BIN_DIR"
            ))
        })
}
