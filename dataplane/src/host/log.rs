//! Structured log lines on stderr: `<UTC time> <LEVEL> <message with key=value fields>`.
//!
//! The runtime logs startup, shutdown, PFCP association and session events; the worker
//! never logs. A line is written with one `write` call so that lines from different
//! threads do not interleave.

use std::fmt;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Something failed.
    Error,
    /// Something is wrong but the process goes on.
    Warn,
    /// Normal operation.
    Info,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Error => "ERROR",
            Level::Warn => "WARN",
            Level::Info => "INFO",
        })
    }
}

/// Formats seconds and milliseconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
/// Pure.
pub fn format_utc(secs: u64, millis: u32) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Writes one log line to stderr.
pub fn log(level: Level, args: fmt::Arguments<'_>) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let line = format!(
        "{} {level} vbng-up: {args}\n",
        format_utc(now.as_secs(), now.subsec_millis())
    );
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Logs at INFO.
#[macro_export]
macro_rules! up_info {
    ($($arg:tt)*) => { $crate::host::log::log($crate::host::log::Level::Info, format_args!($($arg)*)) };
}

/// Logs at WARN.
#[macro_export]
macro_rules! up_warn {
    ($($arg:tt)*) => { $crate::host::log::log($crate::host::log::Level::Warn, format_args!($($arg)*)) };
}

/// Logs at ERROR.
#[macro_export]
macro_rules! up_error {
    ($($arg:tt)*) => { $crate::host::log::log($crate::host::log::Level::Error, format_args!($($arg)*)) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_utc(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(format_utc(1_735_689_599, 999), "2024-12-31T23:59:59.999Z");
    }
}
