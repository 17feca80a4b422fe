//! The vbng-uk image: its path in this source tree and how to build it. It is its own
//! Cargo workspace (a freestanding target with its own linker flags), built from its
//! directory so that its `.cargo/config.toml` applies.

use std::path::{Path, PathBuf};
use std::process::Command;

/// unikernel-target/image in this source tree.
pub fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../image")
}

/// The release image built by [`build`].
pub fn path() -> PathBuf {
    source_dir().join("target/x86_64-unknown-linux-gnu/release/vbng-uk")
}

/// Builds the release image (incrementally) and returns its path.
pub fn build() -> std::io::Result<PathBuf> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--quiet"])
        .current_dir(source_dir())
        // The image has its own target directory and flags.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .output()?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "building the image failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(path())
}
