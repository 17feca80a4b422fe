//! vbng-up on DPDK ports in the lab: the example configuration with a file prefix of its
//! own, and the removal of DPDK's runtime directories afterwards.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Why DPDK cannot run here, if it cannot: `libdpdk` missing (`pkg-config libdpdk`).
pub fn libdpdk_unavailable() -> Option<String> {
    let libdpdk = Command::new("pkg-config")
        .args(["--exists", "libdpdk"])
        .status()
        .is_ok_and(|s| s.success());
    (!libdpdk).then(|| "libdpdk is not installed (pkg-config libdpdk)".to_string())
}

/// Removes the DPDK runtime directories (`/var/run/dpdk/<prefix>`) of the file prefixes
/// used, once the processes are gone: declare it before the lab so that it drops after.
#[derive(Debug)]
pub struct RuntimeDirs(pub Vec<String>);

impl Drop for RuntimeDirs {
    fn drop(&mut self) {
        for prefix in &self.0 {
            let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
        }
    }
}

/// The example `configs/vbng-up-dpdk.toml` with its own EAL file prefix and the example
/// ACL file by absolute path, with `edit` applied; written to `dir`, whose path is returned.
pub fn up_config(dir: &Path, file_prefix: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
    let example = std::fs::read_to_string(configs.join("vbng-up-dpdk.toml"))
        .expect("read configs/vbng-up-dpdk.toml");
    let text = replace_once(
        &example,
        "\"--file-prefix=vbng-up\"",
        &format!("\"--file-prefix={file_prefix}\""),
    );
    let acl = configs.join("acl.toml");
    let text = replace_once(
        &text,
        "acl_file = \"acl.toml\"",
        &format!("acl_file = \"{}\"", acl.display()),
    );
    let path = dir.join("vbng-up-dpdk.toml");
    std::fs::write(&path, edit(text)).expect("write the vbng-up config");
    path
}

/// [`up_config`] with `workers` queue pairs on every device (one per worker; the worker
/// count itself comes from vbng-up's `--workers`).
pub fn up_config_with_queue_pairs(dir: &Path, file_prefix: &str, workers: u32) -> PathBuf {
    up_config(dir, file_prefix, |t| {
        assert_eq!(t.matches(",qdisc_bypass=1\"").count(), 3);
        t.replace(
            ",qdisc_bypass=1\"",
            &format!(",qdisc_bypass=1,qpairs={workers}\""),
        )
    })
}

/// `text` with its one occurrence of `from` replaced (the example changed under the test if
/// there is not exactly one).
pub fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "expected {from:?} once in the config"
    );
    text.replace(from, to)
}
