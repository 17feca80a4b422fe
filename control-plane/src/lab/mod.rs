//! The namespace lab behind `vbngctl demo` and the end-to-end tests.
//!
//! It builds network namespaces joined by veth pairs (see [`topology`]),
//! starts `vbng-up` and `vbng-cp` in the BNG namespace, and drives real
//! subscribers (ISC `dhclient`, `ping`) through the user plane. Everything it
//! makes is removed when the [`topology::Lab`] value is dropped.

pub mod access_node;
pub mod demo;
pub mod dpdk;
pub mod netns;
pub mod procs;
pub mod rawpkt;
pub mod topology;
pub mod uml;

use std::io::Write as _;
use std::path::{Path, PathBuf};

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

/// Sum of every sample of metric `name` whose labels contain all of
/// `labels` (for example `port="core"`), in Prometheus text `text`.
pub fn metric_sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let rest = series.strip_prefix(name)?;
            if !(rest.is_empty() || rest.starts_with('{')) {
                return None;
            }
            labels
                .iter()
                .all(|want| rest.contains(want))
                .then(|| value.parse::<f64>().ok())?
        })
        .sum()
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

/// A test's scratch directory, `$TMPDIR/vbng-<name>-<pid>`, removed with
/// everything in it when dropped, also while the test panics; then the
/// last [`ScratchDir::LOG_TAIL_LINES`] lines of each `*.log` file in it
/// (subdirectories included) go to stderr first. With `VBNG_KEEP_SCRATCH`
/// set to anything non-empty it is kept and its path printed instead.
///
/// Declare it before whatever writes into it (a [`topology::Lab`], a child
/// process, a server), so that it drops after them. The process id keeps
/// test binaries apart, not tests: two tests that run at once need
/// different names. Something that outlives the guard (a process it did
/// not stop, say) may still write into the path after it is gone.
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
    keep: bool,
}

impl ScratchDir {
    /// How many lines of each log file a panicking drop prints.
    pub const LOG_TAIL_LINES: usize = 40;
    /// The variable that keeps the directory when set and non-empty.
    pub const KEEP_VAR: &str = "VBNG_KEEP_SCRATCH";

    /// Creates `$TMPDIR/vbng-<name>-<pid>` empty, removing a stale one.
    ///
    /// # Panics
    ///
    /// If the directory cannot be removed or created; the message names it.
    pub fn new(name: &str) -> ScratchDir {
        let path = std::env::temp_dir().join(format!("vbng-{name}-{}", std::process::id()));
        match std::fs::remove_dir_all(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                panic!(
                    "cannot remove the stale scratch directory {}: {e}",
                    path.display()
                )
            }
            _ => {}
        }
        if let Err(e) = std::fs::create_dir_all(&path) {
            panic!(
                "cannot create the scratch directory {}: {e}",
                path.display()
            );
        }
        let keep = std::env::var_os(Self::KEEP_VAR).is_some_and(|v| !v.is_empty());
        ScratchDir { path, keep }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `name` inside the directory, created (with its parents) if missing.
    ///
    /// # Panics
    ///
    /// If it cannot be created; the message names it.
    pub fn sub(&self, name: &str) -> PathBuf {
        let dir = self.path.join(name);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            panic!(
                "cannot create the scratch subdirectory {}: {e}",
                dir.display()
            );
        }
        dir
    }
}

impl std::ops::Deref for ScratchDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for ScratchDir {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if self.keep {
            // Straight to the stream: the harness hides a passing test's output.
            let _ = writeln!(
                std::io::stderr(),
                "{} is set: kept the scratch directory {}",
                Self::KEEP_VAR,
                self.path.display()
            );
            return;
        }
        if std::thread::panicking() {
            // Captured with the failing test's output, so it is shown with it.
            let mut text = Vec::new();
            write_log_tails(&self.path, Self::LOG_TAIL_LINES, &mut text);
            eprint!("{}", String::from_utf8_lossy(&text));
        }
        if let Err(e) = std::fs::remove_dir_all(&self.path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            let _ = writeln!(
                std::io::stderr(),
                "cannot remove the scratch directory {}: {e}",
                self.path.display()
            );
        }
    }
}

/// Writes to `out` the last `lines` lines of every regular `*.log` file
/// under `dir`, by path, each after a header naming it. Only a file's last
/// 64 KiB are read, so a longer last line is cut; symbolic links are not
/// followed and unreadable entries are skipped.
fn write_log_tails(dir: &Path, lines: usize, out: &mut impl std::io::Write) {
    const MAX_BYTES: u64 = 64 * 1024;
    let mut pending = vec![dir.to_owned()];
    let mut logs = Vec::new();
    while let Some(d) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() && path.extension().is_some_and(|e| e == "log") {
                logs.push(path);
            }
        }
    }
    logs.sort();
    for log in logs {
        let tail = std::fs::File::open(&log).and_then(|mut f| {
            use std::io::{Read, Seek};
            let len = f.metadata()?.len();
            f.seek(std::io::SeekFrom::Start(len.saturating_sub(MAX_BYTES)))?;
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes)?;
            Ok(bytes)
        });
        let Ok(bytes) = tail else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        let all: Vec<&str> = text.lines().collect();
        let _ = writeln!(out, "--- last {lines} lines of {} ---", log.display());
        for line in &all[all.len().saturating_sub(lines)..] {
            let _ = writeln!(out, "{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_dir_is_made_empty_and_removed_with_its_content() {
        let name = "scratch-unit";
        let stale = std::env::temp_dir().join(format!("vbng-{name}-{}", std::process::id()));
        std::fs::create_dir_all(stale.join("old")).unwrap();
        std::fs::write(stale.join("old").join("a.log"), "stale\n").unwrap();

        let mut dir = ScratchDir::new(name);
        dir.keep = false;
        assert_eq!(dir.path(), stale);
        assert!(dir.is_dir());
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "emptied");
        std::fs::write(dir.join("b.log"), "new\n").unwrap();
        std::fs::write(dir.sub("x/y").join("c"), "new\n").unwrap();
        drop(dir);
        assert!(!stale.exists());
    }

    #[test]
    fn scratch_dir_is_removed_while_panicking() {
        let mut path = PathBuf::new();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut dir = ScratchDir::new("scratch-unit-panic");
            dir.keep = false;
            std::fs::write(dir.join("x.log"), "x\n").unwrap();
            path = dir.path().to_owned();
            panic!("on purpose");
        }));
        assert!(panicked.is_err());
        assert!(!path.as_os_str().is_empty() && !path.exists());
    }

    #[test]
    fn log_tails_are_the_last_lines_of_each_log_file() {
        let dir = ScratchDir::new("scratch-unit-tails");
        let numbered: String = (1..=50).map(|n| format!("line {n}\n")).collect();
        std::fs::write(dir.join("a.log"), &numbered).unwrap();
        std::fs::write(dir.sub("guest").join("b.log"), "only\n").unwrap();
        std::fs::write(dir.join("c.txt"), "not a log\n").unwrap();
        let mut out = Vec::new();
        write_log_tails(&dir, 40, &mut out);
        let out = String::from_utf8(out).unwrap();
        let a = dir.join("a.log");
        let b = dir.join("guest").join("b.log");
        let expected: String = (11..=50).map(|n| format!("line {n}\n")).collect();
        assert_eq!(
            out,
            format!(
                "--- last 40 lines of {} ---\n{expected}--- last 40 lines of {} ---\nonly\n",
                a.display(),
                b.display()
            )
        );
    }
}
