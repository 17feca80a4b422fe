//! [`Figure`]: one measured figure, printed as a table row or as one JSON line.
//!
//! The JSON line format is the one every `vbng-perf` subcommand shares (ARCHITECTURE.md,
//! rule 7):
//!
//! ```text
//! {"figure": "...", "value": 12.3, "unit": "ns/packet",
//!  "baseline": {"name": "...", "value": 30.1} or null, "ratio": 0.41 or null, "params": {...}}
//! ```
//!
//! The line is written by hand (keys in this order, no dependency); the tests parse it back
//! with `serde_json` and check every key and type.

use std::fmt::Write as _;

/// A figure's baseline: another figure measured in the same run.
#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    /// Name of the baseline (usually the `figure` name of the baseline's own line).
    pub name: String,
    /// Its value, in the same unit as the figure.
    pub value: f64,
}

/// A parameter value in a figure's `params` object.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    /// An unsigned integer (counts, sizes).
    Int(u64),
    /// A float (rates, fractions). Non-finite values are written as `null`.
    Float(f64),
    /// A string (CPU model, method).
    Str(String),
    /// A flag.
    Bool(bool),
}

impl From<u64> for Param {
    fn from(v: u64) -> Self {
        Param::Int(v)
    }
}
impl From<u32> for Param {
    fn from(v: u32) -> Self {
        Param::Int(u64::from(v))
    }
}
impl From<usize> for Param {
    fn from(v: usize) -> Self {
        Param::Int(v as u64)
    }
}
impl From<f64> for Param {
    fn from(v: f64) -> Self {
        Param::Float(v)
    }
}
impl From<&str> for Param {
    fn from(v: &str) -> Self {
        Param::Str(v.to_owned())
    }
}
impl From<String> for Param {
    fn from(v: String) -> Self {
        Param::Str(v)
    }
}
impl From<bool> for Param {
    fn from(v: bool) -> Self {
        Param::Bool(v)
    }
}

/// One measured figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// Stable, dotted name (`qos.pipeline_downstream_with_qos`), tracked over time by CI.
    pub figure: String,
    /// The measured value.
    pub value: f64,
    /// Unit of `value` (`ns/packet`, `Mbit/s`, `instructions/packet`).
    pub unit: String,
    /// The figure it should be read against, measured in the same run.
    pub baseline: Option<Baseline>,
    /// `value / baseline.value`, when there is a baseline.
    pub ratio: Option<f64>,
    /// Parameters of the measurement, in insertion order.
    pub params: Vec<(String, Param)>,
}

impl Figure {
    /// A figure without baseline or parameters.
    pub fn new(figure: &str, value: f64, unit: &str) -> Self {
        Figure {
            figure: figure.to_owned(),
            value,
            unit: unit.to_owned(),
            baseline: None,
            ratio: None,
            params: Vec::new(),
        }
    }

    /// Sets the baseline and the ratio `value / baseline` (no ratio if the baseline is 0).
    pub fn with_baseline(mut self, name: &str, value: f64) -> Self {
        self.ratio = (value != 0.0).then(|| self.value / value);
        self.baseline = Some(Baseline {
            name: name.to_owned(),
            value,
        });
        self
    }

    /// Appends a parameter.
    pub fn param(mut self, key: &str, value: impl Into<Param>) -> Self {
        self.params.push((key.to_owned(), value.into()));
        self
    }

    /// The parameter `key`, if set.
    pub fn get_param(&self, key: &str) -> Option<&Param> {
        self.params.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The figure as one JSON object on one line (no trailing newline).
    pub fn to_json_line(&self) -> String {
        let mut s = String::with_capacity(256);
        s.push_str("{\"figure\": ");
        json_str(&mut s, &self.figure);
        s.push_str(", \"value\": ");
        json_f64(&mut s, self.value);
        s.push_str(", \"unit\": ");
        json_str(&mut s, &self.unit);
        s.push_str(", \"baseline\": ");
        match &self.baseline {
            Some(b) => {
                s.push_str("{\"name\": ");
                json_str(&mut s, &b.name);
                s.push_str(", \"value\": ");
                json_f64(&mut s, b.value);
                s.push('}');
            }
            None => s.push_str("null"),
        }
        s.push_str(", \"ratio\": ");
        match self.ratio {
            Some(r) => json_f64(&mut s, r),
            None => s.push_str("null"),
        }
        s.push_str(", \"params\": {");
        for (i, (k, v)) in self.params.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            json_str(&mut s, k);
            s.push_str(": ");
            match v {
                Param::Int(n) => {
                    let _ = write!(s, "{n}");
                }
                Param::Float(f) => json_f64(&mut s, *f),
                Param::Str(t) => json_str(&mut s, t),
                Param::Bool(b) => s.push_str(if *b { "true" } else { "false" }),
            }
        }
        s.push_str("}}");
        s
    }
}

/// Rounds to 4 decimal places (figures from a noisy machine carry no more precision).
fn round(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

/// Writes a JSON number; NaN and infinities (not representable) become `null`.
fn json_f64(s: &mut String, v: f64) {
    if v.is_finite() {
        let v = round(v);
        // `{}` never uses an exponent and prints integers without a point: both valid JSON.
        let _ = write!(s, "{v}");
    } else {
        s.push_str("null");
    }
}

/// Writes a JSON string with the escapes RFC 8259 requires.
fn json_str(s: &mut String, t: &str) {
    s.push('"');
    for c in t.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
}

/// Formats a value for the table: 2 decimals, fewer for large values.
pub fn fmt_value(v: f64) -> String {
    if !v.is_finite() {
        "-".to_owned()
    } else if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Renders figures as an aligned text table: figure, value, unit, baseline, ratio, and the
/// `note` parameter (if any).
pub fn table(figures: &[Figure]) -> String {
    let header = ["figure", "value", "unit", "baseline", "ratio", "note"];
    let rows: Vec<[String; 6]> = figures
        .iter()
        .map(|f| {
            [
                f.figure.clone(),
                fmt_value(f.value),
                f.unit.clone(),
                f.baseline
                    .as_ref()
                    .map(|b| format!("{} ({})", fmt_value(b.value), b.name))
                    .unwrap_or_else(|| "-".to_owned()),
                f.ratio
                    .map(|r| format!("{r:.3}"))
                    .unwrap_or_else(|| "-".to_owned()),
                match f.get_param("note") {
                    Some(Param::Str(n)) => n.clone(),
                    _ => String::new(),
                },
            ]
        })
        .collect();
    let mut width = header.map(str::len);
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut l = String::new();
        for (i, (c, w)) in cells.iter().zip(width).enumerate() {
            // Numbers right-aligned, text left-aligned.
            if i == 1 || i == 4 {
                let _ = write!(l, "{c:>w$}  ");
            } else {
                let _ = write!(l, "{c:<w$}  ");
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&header);
    let rule: Vec<String> = width.iter().map(|w| "-".repeat(*w)).collect();
    line(&rule.iter().map(String::as_str).collect::<Vec<_>>());
    for r in &rows {
        line(&r.each_ref().map(String::as_str));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn sample() -> Vec<Figure> {
        vec![
            Figure::new("qos.pipeline_downstream_no_qos", 30.1, "ns/packet")
                .param("subscribers", 10_000u64)
                .param("cpu", "AMD \"EPYC\"\t1"),
            Figure::new("qos.added_cost", 12.3, "ns/packet")
                .with_baseline("qos.pipeline_downstream_no_qos", 30.1)
                .param("goal_ns", 25.0)
                .param("met", true)
                .param("note", "goal <= 25 ns"),
            Figure::new("qos.nan", f64::NAN, "x").with_baseline("zero", 0.0),
        ]
    }

    /// Checks one parsed line against the ARCHITECTURE.md rule 7 schema: exactly the six
    /// keys, with their types.
    fn check_schema(v: &Value) {
        let o = v.as_object().expect("a JSON object");
        let mut keys: Vec<&str> = o.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["baseline", "figure", "params", "ratio", "unit", "value"]
        );
        assert!(o["figure"].is_string());
        assert!(o["value"].is_number() || o["value"].is_null());
        assert!(o["unit"].is_string());
        match &o["baseline"] {
            Value::Null => assert!(o["ratio"].is_null()),
            Value::Object(b) => {
                let mut bk: Vec<&str> = b.keys().map(String::as_str).collect();
                bk.sort_unstable();
                assert_eq!(bk, ["name", "value"]);
                assert!(b["name"].is_string());
                assert!(b["value"].is_number());
            }
            other => panic!("baseline must be an object or null, found {other}"),
        }
        assert!(o["ratio"].is_number() || o["ratio"].is_null());
        assert!(o["params"].is_object());
    }

    #[test]
    fn json_lines_match_the_schema() {
        for f in sample() {
            let line = f.to_json_line();
            assert!(!line.contains('\n'), "one line: {line}");
            let v: Value = serde_json::from_str(&line).expect(&line);
            check_schema(&v);
            assert_eq!(v["figure"], f.figure.as_str());
            assert_eq!(v["unit"], f.unit.as_str());
        }
    }

    #[test]
    fn json_values_round_trip() {
        let [plain, added, nan] = <[Figure; 3]>::try_from(sample()).unwrap();
        let v: Value = serde_json::from_str(&plain.to_json_line()).unwrap();
        assert_eq!(v["value"].as_f64(), Some(30.1));
        assert!(v["baseline"].is_null() && v["ratio"].is_null());
        assert_eq!(v["params"]["subscribers"].as_u64(), Some(10_000));
        assert_eq!(v["params"]["cpu"], "AMD \"EPYC\"\t1");

        let v: Value = serde_json::from_str(&added.to_json_line()).unwrap();
        assert_eq!(v["baseline"]["name"], "qos.pipeline_downstream_no_qos");
        assert_eq!(v["baseline"]["value"].as_f64(), Some(30.1));
        assert_eq!(v["ratio"].as_f64(), Some(0.4086));
        assert_eq!(v["params"]["met"], true);
        assert_eq!(v["params"]["goal_ns"].as_f64(), Some(25.0));

        // Not representable in JSON: null, never `NaN`. A zero baseline has no ratio.
        let v: Value = serde_json::from_str(&nan.to_json_line()).unwrap();
        assert!(v["value"].is_null() && v["ratio"].is_null());
    }

    #[test]
    fn every_qos_figure_matches_the_schema() {
        // The figures the `qos` subcommand really prints, from a tiny run.
        let args = crate::qos::QosArgs {
            subscribers: 64,
            packets: 4_096,
            reps: 1,
            callgrind: false,
            accuracy_seconds: 0.05,
        };
        let figs = crate::qos::run(&args);
        assert!(figs.len() >= 8, "{figs:?}");
        for f in &figs {
            let v: Value = serde_json::from_str(&f.to_json_line()).unwrap();
            check_schema(&v);
            assert_eq!(
                v["params"]["subscribers"].as_u64(),
                Some(64),
                "{}",
                f.figure
            );
        }
    }

    #[test]
    fn table_is_aligned() {
        let t = table(&sample());
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 5);
        assert!(lines[0].starts_with("figure"));
        assert!(lines[3].contains("30.10 (qos.pipeline_downstream_no_qos)"));
        assert!(lines[3].contains("0.409"));
    }
}
