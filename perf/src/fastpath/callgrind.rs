//! Instructions per packet: this binary run under `valgrind --tool=callgrind` in
//! `--callgrind` mode, counting only inside `measure_pipeline` and `measure_io_only`
//! (`--collect-atstart=no --toggle-collect=...`), read back with `callgrind_annotate`.
//! Instruction counts do not move with the machine's noise.

use std::process::{Command, Stdio};

use crate::report::Figure;
use crate::timing::Machine;

use super::{FastpathCli, base_params};

/// Toggle pattern: both measurement functions (callgrind honours one `--toggle-collect`
/// pattern here, so one pattern covers both; `callgrind_annotate --inclusive=yes` then
/// splits them).
pub const TOGGLE: &str = "*fastpath::worker::measure_*";

/// Instructions counted by one callgrind run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Instructions {
    /// Frames each measurement ran.
    pub packets: u64,
    /// Ir inside `measure_pipeline`.
    pub pipeline_ir: u64,
    /// Ir inside `measure_io_only`.
    pub io_only_ir: u64,
}

impl Instructions {
    /// Pipeline instructions per packet.
    pub fn pipeline_per_packet(&self) -> f64 {
        self.pipeline_ir as f64 / self.packets.max(1) as f64
    }
    /// I/O-only instructions per packet.
    pub fn io_only_per_packet(&self) -> f64 {
        self.io_only_ir as f64 / self.packets.max(1) as f64
    }
}

/// The command that measures (printed in the README and in the figure's params).
pub fn command(cli: &FastpathCli, sessions: u32, out_file: &str) -> Vec<String> {
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "vbng-perf".into());
    let mut v: Vec<String> = vec![
        "valgrind".into(),
        "--tool=callgrind".into(),
        format!("--callgrind-out-file={out_file}"),
        "--collect-atstart=no".into(),
        format!("--toggle-collect={TOGGLE}"),
        exe,
        "fastpath".into(),
    ];
    v.extend(cli.child_args(sessions));
    if let Some(p) = v.iter().position(|a| a == "--device") {
        v[p + 1] = "memory".into();
    }
    v.push("--callgrind".into());
    v.push("--packets".into());
    v.push(cli.packets.div_ceil(64).saturating_mul(64).to_string());
    v
}

/// Runs the measurement; `Ok(None)` if valgrind is not installed.
pub fn measure(cli: &FastpathCli, sessions: u32) -> Result<Option<Instructions>, String> {
    let have = Command::new("valgrind")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !have {
        return Ok(None);
    }
    let out_file = std::env::temp_dir().join(format!(
        "vbng-perf-fastpath-{}-{}.callgrind",
        std::process::id(),
        sessions
    ));
    let out_str = out_file.display().to_string();
    let cmd = command(cli, sessions, &out_str);
    let run = Command::new(&cmd[0])
        .args(&cmd[1..])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run valgrind: {e}"))?;
    if !run.status.success() {
        let _ = std::fs::remove_file(&out_file);
        return Err(format!(
            "valgrind failed ({}): {}",
            run.status,
            String::from_utf8_lossy(&run.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ));
    }
    let stdout = String::from_utf8_lossy(&run.stdout);
    let frames = |name: &str| -> Option<u64> {
        stdout
            .lines()
            .find(|l| l.contains(name))?
            .split_whitespace()
            .find_map(|w| w.strip_prefix("frames=")?.parse().ok())
    };
    let packets = frames("measure_pipeline").ok_or("no frame count from the callgrind run")?;
    let ann = Command::new("callgrind_annotate")
        .args(["--inclusive=yes", "--threshold=100"])
        .arg(&out_file)
        .output()
        .map_err(|e| format!("cannot run callgrind_annotate: {e}"));
    let _ = std::fs::remove_file(&out_file);
    let ann = ann?;
    let text = String::from_utf8_lossy(&ann.stdout);
    let pipeline_ir = inclusive_ir(&text, "measure_pipeline")
        .ok_or("callgrind_annotate lists no measure_pipeline")?;
    let io_only_ir = inclusive_ir(&text, "measure_io_only")
        .ok_or("callgrind_annotate lists no measure_io_only")?;
    Ok(Some(Instructions {
        packets,
        pipeline_ir,
        io_only_ir,
    }))
}

/// The inclusive Ir of `function` in `callgrind_annotate --inclusive=yes` output: the
/// largest count on a line naming it (`12,345,678 (40.1%)  file.rs:path::function [binary]`;
/// the smaller ones are the parts inlined from other files).
pub fn inclusive_ir(annotate: &str, function: &str) -> Option<u64> {
    annotate
        .lines()
        .filter(|l| l.contains(&format!("::{function}")))
        .filter_map(|l| l.split_whitespace().next()?.replace(',', "").parse().ok())
        .max()
}

/// The figures of a measurement.
pub fn figures(cli: &FastpathCli, sessions: u32, ir: &Instructions, m: &Machine) -> Vec<Figure> {
    let cmd = command(cli, sessions, "/tmp/cg.out").join(" ");
    vec![
        base_params(
            Figure::new(
                "fastpath.instructions_per_packet",
                ir.pipeline_per_packet(),
                "instructions/packet",
            )
            .with_baseline(
                "fastpath.memory_io_only_instructions_per_packet",
                ir.io_only_per_packet(),
            ),
            cli,
            sessions,
            m,
        )
        .param("packets", ir.packets)
        .param("ir", ir.pipeline_ir)
        .param("baseline_ir", ir.io_only_ir)
        .param("command", cmd)
        .param(
            "note",
            "callgrind Ir inside measure_pipeline / frames (memory device, worker 0 of 1)",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_inclusive_ir() {
        let text = "\
--------------------------------------------------------------------------------
Ir
--------------------------------------------------------------------------------
140,123,456 (100.0%)  PROGRAM TOTALS

Ir                    file:function
--------------------------------------------------------------------------------
80,000,000 (57.09%)  worker.rs:vbng_perf::fastpath::worker::measure_pipeline [/x/vbng-perf]
60,123,456 (42.91%)  worker.rs:vbng_perf::fastpath::worker::measure_io_only [/x/vbng-perf]
 3,100,992 ( 3.60%)  ptr/mod.rs:vbng_perf::fastpath::worker::measure_io_only
      7 ( 0.00%)  pub fn measure_pipeline<P: Port>(w: &mut FastpathWorker<P>, packets: u64) -> u64 {
";
        assert_eq!(inclusive_ir(text, "measure_pipeline"), Some(80_000_000));
        assert_eq!(inclusive_ir(text, "measure_io_only"), Some(60_123_456));
        assert_eq!(inclusive_ir(text, "nothing"), None);
    }
}
