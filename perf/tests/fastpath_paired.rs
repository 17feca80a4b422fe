//! `vbng-perf fastpath --paired` against the real `dpdk-testpmd`: an interactive testpmd
//! and the pipeline child take turns on one CPU over the same net_pcap devices, and the
//! paired figure reports both sides' rates from windows measured in turn.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

fn testpmd_missing() -> Option<String> {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("dpdk-testpmd").exists()));
    (!found).then(|| "dpdk-testpmd is not installed (apt-get install dpdk)".to_owned())
}

#[test]
fn paired_windows_measure_both_sides_and_leave_nothing_behind() {
    if let Some(why) = testpmd_missing() {
        println!("SKIPPED: fastpath_paired: {why}");
        return;
    }
    let started = std::time::SystemTime::now();
    let child = Command::new(env!("CARGO_BIN_EXE_vbng-perf"))
        .args([
            "fastpath",
            "--pipeline",
            "ipoe",
            "--sessions",
            "200",
            "--seconds",
            "0.3",
            "--warmup",
            "0.2",
            "--paired",
            "3",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vbng-perf");
    let pid = child.id();
    let child = child.wait_with_output().expect("run vbng-perf");
    let stdout = String::from_utf8_lossy(&child.stdout);
    let stderr = String::from_utf8_lossy(&child.stderr);
    assert!(
        child.status.success(),
        "vbng-perf failed: {}\n{stderr}",
        child.status
    );
    let figures: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON figure per line"))
        .collect();
    let paired = figures
        .iter()
        .find(|f| f["figure"] == "fastpath.paired_mpps_per_core")
        .unwrap_or_else(|| panic!("no paired figure in:\n{stdout}\n{stderr}"));
    let ours = paired["value"].as_f64().expect("value");
    let baseline = &paired["baseline"];
    assert_eq!(baseline["name"], "testpmd.paired_io_mpps_per_core");
    let theirs = baseline["value"].as_f64().expect("baseline value");
    assert!(ours > 0.1 && theirs > 0.1, "rates {ours} and {theirs} Mpps");
    let ratio = paired["ratio"].as_f64().expect("ratio");
    assert!((ratio - ours / theirs).abs() < 1e-3, "ratio {ratio}");
    let params = &paired["params"];
    assert_eq!(params["pairs"], 3);
    // The frames are the scheme's, for the sessions installed: every one is forwarded.
    assert_eq!(params["fraction"], "1.0000", "{params}");
    let median: f64 = params["median_pair_ratio"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("median pair ratio");
    assert!(median > 0.0);
    // The run's DPDK processes (testpmd, named after vbng-perf's pid, and the paired
    // child, named after its own) removed their runtime directories.
    let testpmd_prefix = format!("vbng-perf-testpmd-{pid}");
    for base in ["/var/run/dpdk", "/tmp/dpdk"] {
        let Ok(dir) = std::fs::read_dir(Path::new(base)) else {
            continue;
        };
        let left: Vec<String> = dir
            .filter_map(Result::ok)
            .filter(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let ours = name.ends_with("-paired")
                    && e.metadata()
                        .and_then(|m| m.modified())
                        .is_ok_and(|t| t >= started);
                ours || name == testpmd_prefix
            })
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            left.is_empty(),
            "EAL runtime directories left in {base}: {left:?}"
        );
    }
}
