//! The Prometheus text exposition format, as every part's `/metrics`
//! writes it, and what a part that renders its own counters (a source)
//! implements.

use std::fmt::Write;

/// Anything that renders Prometheus text (a source's counters) and can say
/// what is wrong with it.
pub trait RenderMetrics: Send + Sync {
    /// Appends the text form.
    fn render(&self, out: &mut String);

    /// `None` when healthy, else why not (for `/healthz`).
    fn unhealthy(&self) -> Option<String> {
        None
    }
}

/// Writes one sample with its HELP and TYPE lines.
pub fn sample(out: &mut String, name: &str, help: &str, kind: &str, value: u64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
}

/// Writes one metric with one label, one sample per label value.
pub fn labeled<'a>(
    out: &mut String,
    name: &str,
    help: &str,
    kind: &str,
    label: &str,
    values: impl IntoIterator<Item = (&'a str, u64)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (value_label, value) in values {
        let _ = writeln!(out, "{name}{{{label}=\"{value_label}\"}} {value}");
    }
}
