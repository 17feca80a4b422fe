//! The baseline: `dpdk-testpmd` in io forwarding mode over the same devices (same pcap
//! files, same transmit sink), one forwarding lcore per worker on the CPUs the workers use,
//! `--stats-period=1`; the forwarded rate is the sum over ports of testpmd's per-second
//! `Tx-pps`, averaged over the measured seconds after the warm-up ones.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use super::{BaselineRate, worker_cpu};

/// Name of the baseline figure.
pub const BASELINE_NAME: &str = "testpmd.io_mpps_per_core";

/// What testpmd needs to run over the devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestpmdSetup {
    /// `--vdev` specs.
    pub vdevs: Vec<String>,
    /// Forwarding lcores (one per worker).
    pub cores: u32,
    /// `--total-num-mbufs`.
    pub mbufs: u32,
    /// `-m` (MB).
    pub mem_mb: u32,
    /// `--file-prefix`.
    pub prefix: String,
}

impl TestpmdSetup {
    /// The command line (program first): forwarding starts at once and statistics print
    /// every second.
    pub fn command(&self) -> Vec<String> {
        let mut v = self.eal_command();
        v.extend(["--stats-period=1".into(), "--auto-start".into()]);
        v
    }

    /// The command line of an interactive testpmd (`-i`), which forwards between the
    /// `start` and `stop` written to its standard input ([`Interactive`]). Without
    /// `--no-flush-rx`, every `start` would first drain the receive queues (tens of
    /// milliseconds on replay devices, which never run dry).
    pub fn interactive_command(&self) -> Vec<String> {
        let mut v = self.eal_command();
        v.extend(["-i".into(), "--no-flush-rx".into()]);
        v
    }

    /// The options both command lines share.
    fn eal_command(&self) -> Vec<String> {
        // lcore 0 (main, prints the stats and sleeps) on CPU 0, forwarding lcore w + 1 on
        // the CPU worker w uses.
        let mut lcores = vec!["0@0".to_owned()];
        lcores.extend((0..self.cores).map(|w| format!("{}@{}", w + 1, worker_cpu(w))));
        let mut v = vec![
            "dpdk-testpmd".to_owned(),
            "--no-huge".into(),
            "-m".into(),
            self.mem_mb.to_string(),
            "--no-pci".into(),
            "--no-shconf".into(),
            format!("--file-prefix={}", self.prefix),
            format!("--lcores={}", lcores.join(",")),
            "--no-telemetry".into(),
            "--log-level=*:error".into(),
        ];
        v.extend(self.vdevs.iter().map(|d| format!("--vdev={d}")));
        v.extend([
            "--".into(),
            format!("--total-num-mbufs={}", self.mbufs),
            "--forward-mode=io".into(),
            format!("--nb-cores={}", self.cores),
        ]);
        v
    }
}

/// Starts `cmd` (testpmd's command line) with its output piped, through `stdbuf -oL` when
/// stdbuf exists, so that testpmd's lines arrive as they are printed.
fn spawn(mut cmd: Vec<String>, stdin: Stdio) -> Result<Child, String> {
    if Command::new("stdbuf")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        cmd.splice(0..0, ["stdbuf".to_owned(), "-oL".to_owned()]);
    }
    Command::new(&cmd[0])
        .args(&cmd[1..])
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start dpdk-testpmd: {e}"))
}

/// The rate of a port's `Tx-pps:` line in testpmd's port statistics, None for other lines.
fn tx_pps(line: &str) -> Option<f64> {
    let rest = line.trim_start().strip_prefix("Tx-pps:")?;
    rest.split_whitespace().next()?.parse().ok()
}

/// The per-second forwarded rates testpmd printed (sum of `Tx-pps` over its ports, one
/// value per statistics block).
#[derive(Debug, Default)]
struct BlockParser {
    current: Option<f64>,
}

impl BlockParser {
    /// Feeds one line; returns a finished block's sum when a new block starts or forwarding
    /// stops.
    fn line(&mut self, l: &str) -> Option<f64> {
        if l.contains("Port statistics ====") || l.contains("Telling cores to stop") {
            return self.current.replace(0.0);
        }
        if let Some(n) = tx_pps(l)
            && let Some(c) = self.current.as_mut()
        {
            *c += n;
        }
        None
    }
}

/// A running testpmd, stopped on drop (its EAL runtime directory removed).
#[derive(Debug)]
struct Running(Child, String);

impl Drop for Running {
    fn drop(&mut self) {
        let pid = self.0.id() as libc::pid_t;
        // SAFETY: kill(2) on the pid of our own child, which we have not waited for yet
        // (so the pid cannot have been reused).
        unsafe { libc::kill(pid, libc::SIGINT) };
        super::child::wait_or_kill(&mut self.0, Duration::from_secs(5));
        super::child::remove_eal_runtime_dir(&self.1);
    }
}

/// Runs testpmd for the warm-up and `seconds` measured seconds; returns its rate.
pub fn run(
    setup: &TestpmdSetup,
    warmup: f64,
    seconds: f64,
) -> Result<(BaselineRate, Vec<f64>), String> {
    let mut child = spawn(setup.command(), Stdio::null())?;
    let stdout = child.stdout.take().ok_or("no testpmd stdout")?;
    let stderr = child.stderr.take().ok_or("no testpmd stderr")?;
    let running = Running(child, setup.prefix.clone());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut p = BlockParser::default();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(v) = p.line(&line) {
                let _ = tx.send(Ok(v));
            }
        }
        let _ = tx.send(Err(()));
    });
    let err_lines = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    // Block 1 is "since start" (0 pps); then the warm-up seconds; then the window.
    let skip = 1 + warmup.ceil() as usize;
    let want = seconds.ceil().max(1.0) as usize;
    let deadline = Instant::now() + Duration::from_secs_f64(warmup + seconds + 30.0);
    let mut blocks = Vec::new();
    while blocks.len() < skip + want {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Ok(v)) => blocks.push(v),
            Ok(Err(())) | Err(_) => {
                drop(running);
                let err = err_lines.join().unwrap_or_default();
                return Err(format!(
                    "dpdk-testpmd stopped after {} statistics blocks: {}",
                    blocks.len(),
                    err.iter()
                        .rev()
                        .take(3)
                        .rev()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(" | ")
                ));
            }
        }
    }
    drop(running);
    let window: Vec<f64> = blocks[skip..].to_vec();
    let total = window.iter().sum::<f64>() / window.len() as f64;
    Ok((
        BaselineRate {
            name: BASELINE_NAME.into(),
            mpps_per_core: total / f64::from(setup.cores.max(1)) / 1e6,
            mpps_total: total / 1e6,
        },
        window,
    ))
}

/// The forwarded rate a `show port stats all` prints: the sum of its ports' `Tx-pps`,
/// which testpmd computes over the time since the previous `show port stats` from its own
/// time-stamp counter.
#[derive(Debug)]
struct ShowParser {
    ports: usize,
    seen: usize,
    pps: f64,
}

impl ShowParser {
    fn new(ports: usize) -> ShowParser {
        ShowParser {
            ports,
            seen: 0,
            pps: 0.0,
        }
    }

    /// Feeds one line; returns the sum once every port's `Tx-pps` line came.
    fn line(&mut self, l: &str) -> Option<f64> {
        self.pps += tx_pps(l)?;
        self.seen += 1;
        (self.seen == self.ports).then_some(self.pps)
    }
}

/// An interactive testpmd over the setup's devices that forwards only in the windows
/// [`Interactive::window`] opens, so that another process can measure on the same CPU in
/// between (a stopped testpmd's forwarding lcores sleep). Stopped on drop.
#[derive(Debug)]
pub struct Interactive {
    /// Held for its drop.
    _process: Running,
    stdin: std::process::ChildStdin,
    lines: mpsc::Receiver<String>,
    /// Its last lines on stderr.
    last_errors: Arc<Mutex<Vec<String>>>,
    /// Ports it forwards between.
    ports: usize,
}

impl Interactive {
    /// Starts testpmd and waits until its command line answers (the pcaps are loaded).
    pub fn start(setup: &TestpmdSetup) -> Result<Interactive, String> {
        let mut child = spawn(setup.interactive_command(), Stdio::piped())?;
        let stdout = child.stdout.take().ok_or("no testpmd stdout")?;
        let stderr = child.stderr.take().ok_or("no testpmd stderr")?;
        let stdin = child.stdin.take().ok_or("no testpmd stdin")?;
        let running = Running(child, setup.prefix.clone());
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Kept for the error if testpmd exits; its warnings are not shown otherwise.
        let last_errors = Arc::new(Mutex::new(Vec::new()));
        let sink = last_errors.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut v = sink.lock().unwrap_or_else(|p| p.into_inner());
                if v.len() == 3 {
                    v.remove(0);
                }
                v.push(line);
            }
        });
        let mut t = Interactive {
            _process: running,
            stdin,
            lines,
            last_errors,
            ports: setup.vdevs.len(),
        };
        // Answered once EAL, the ports and the pcaps are up.
        t.command("show config fwd")?;
        t.wait_for(Duration::from_secs(120), |l| {
            l.contains("packet forwarding - ports=").then_some(())
        })?;
        Ok(t)
    }

    fn command(&mut self, c: &str) -> Result<(), String> {
        use std::io::Write;
        writeln!(self.stdin, "{c}")
            .and_then(|()| self.stdin.flush())
            .map_err(|e| format!("dpdk-testpmd stopped reading commands: {e}"))
    }

    /// Reads testpmd's output until `done` returns Some for a line.
    fn wait_for<T>(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&str) -> Option<T>,
    ) -> Result<T, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    if let Some(v) = done(&l) {
                        return Ok(v);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "dpdk-testpmd did not answer within {} s",
                        timeout.as_secs()
                    ));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let last = self.last_errors.lock().unwrap_or_else(|p| p.into_inner());
                    return Err(format!("dpdk-testpmd exited: {}", last.join(" | ")));
                }
            }
        }
    }

    /// Forwards for about `seconds` and returns testpmd's forwarded rate (packets per
    /// second, summed over the ports) and the window's length in nanoseconds. The rate is
    /// what testpmd itself measures between two `show port stats all`, the first processed
    /// once `start` has launched the forwarding lcores, the second `seconds` later: neither
    /// the start-up of the lcores nor the latency of the commands falls inside it.
    pub fn window(&mut self, seconds: f64) -> Result<(f64, u64), String> {
        let timeout = Duration::from_secs(30);
        self.command("start")?;
        // testpmd reads its commands one after the other: this one runs once start is done.
        self.command("show port stats all")?;
        let mut first = ShowParser::new(self.ports);
        self.wait_for(timeout, |l| first.line(l))?;
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_secs_f64(seconds));
        self.command("show port stats all")?;
        let mut second = ShowParser::new(self.ports);
        let pps = self.wait_for(timeout, |l| second.line(l))?;
        let elapsed = t0.elapsed();
        self.command("stop")?;
        self.wait_for(timeout, |l| (l.trim() == "Done.").then_some(()))?;
        Ok((pps, elapsed.as_nanos() as u64))
    }
}

impl Drop for Interactive {
    fn drop(&mut self) {
        // Then `_process`'s own drop interrupts testpmd (nothing left to interrupt if it
        // quit already), waits for the exit and removes the runtime directory.
        let _ = self.command("quit");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stats_blocks() {
        let text = "\
Port statistics ====================================
  ######################## NIC statistics for port 0  ########################
  RX-packets: 382720     RX-missed: 0          RX-bytes:  22963200
  Throughput (since last show)
  Rx-pps:            0          Rx-bps:            0
  Tx-pps:            0          Tx-bps:            0
Port statistics ====================================
  Rx-pps:     21926048          Rx-bps:  10524503344
  Tx-pps:     21926048          Tx-bps:  10524503344
  Rx-pps:     21926031          Rx-bps:  10524494952
  Tx-pps:     21926015          Tx-bps:  10524487272
Telling cores to stop...
";
        let mut p = BlockParser::default();
        let blocks: Vec<f64> = text.lines().filter_map(|l| p.line(l)).collect();
        // The first marker opens block 1; each later marker closes the previous block.
        assert_eq!(blocks, [0.0, 43_852_063.0]);
    }

    #[test]
    fn parses_show_port_stats() {
        let text = "\
  ######################## NIC statistics for port 0  ########################
  RX-packets: 9287360    RX-missed: 0          RX-bytes:  0
  RX-errors: 0
  RX-nombuf:  0
  TX-packets: 8892096    TX-errors: 0          TX-bytes:  0

  Throughput (since last show)
  Rx-pps:     21926048          Rx-bps:  10524503344
  Tx-pps:     21926015          Tx-bps:  10524487272
  ############################################################################

  ######################## NIC statistics for port 1  ########################
  RX-packets: 9310400    RX-missed: 0          RX-bytes:  0
  Throughput (since last show)
  Rx-pps:     21900000          Rx-bps:  10524503344
  Tx-pps:     21900001          Tx-bps:  10524487272
  ############################################################################
";
        let mut p = ShowParser::new(2);
        let got: Vec<f64> = text.lines().filter_map(|l| p.line(l)).collect();
        // One value, once both ports' lines came; Rx-pps lines are not counted.
        assert_eq!(got, [43_826_016.0]);
        let mut p = ShowParser::new(2);
        assert_eq!(p.line("  Tx-pps:     5   Tx-bps: 0"), None);
    }

    #[test]
    fn command_line() {
        let s = TestpmdSetup {
            vdevs: vec!["net_null0".into(), "net_null1".into()],
            cores: 1,
            mbufs: 16384,
            mem_mb: 1024,
            prefix: "x".into(),
        };
        let c = s.command().join(" ");
        assert!(
            c.contains("--vdev=net_null0 --vdev=net_null1 -- --total-num-mbufs=16384"),
            "{c}"
        );
        assert!(c.contains("--nb-cores=1"));
        assert!(c.ends_with("--stats-period=1 --auto-start"), "{c}");
        let i = s.interactive_command().join(" ");
        assert!(i.ends_with("--nb-cores=1 -i --no-flush-rx"), "{i}");
    }
}
