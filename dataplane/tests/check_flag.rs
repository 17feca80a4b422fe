//! `vbng-up --check` validates a file and prints it; a reader that goes away early
//! (`vbng-up --check | head -1`) must not turn that into a panic or a failure.

use std::process::{Command, Stdio};

fn check_with_closed_stdout(binary: &str) -> std::process::Output {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/vbng-up-dpdk.toml");
    let mut child = Command::new(binary)
        .args(["--config", config, "--check"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vbng-up");
    // Close the reading end at once: vbng-up is still parsing its files, so every write
    // of its report meets a closed pipe.
    drop(child.stdout.take());
    child.wait_with_output().expect("vbng-up exits")
}

#[test]
fn check_survives_a_reader_that_goes_away() {
    let out = check_with_closed_stdout(env!("CARGO_BIN_EXE_vbng-up"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
