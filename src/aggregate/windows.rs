//! The list of bar windows, parsed once from flags such as `1s,1m,5m,1h`.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// Longest window accepted: 7 days. Longer windows would keep a bar open for
/// weeks, which is not a K-line anybody streams.
pub const MAX_WINDOW_S: u32 = 7 * 24 * 3600;

/// Most windows in one list; each window costs one series per mint.
pub const MAX_WINDOWS: usize = 16;

/// A validated, non-empty list of distinct whole-second windows, in the order
/// given (window `i` goes to Kafka partition `i mod partitions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Windows(Vec<u32>);

/// Why a window list was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WindowError {
    /// A window that is not `<n>s|m|h|d` or a plain number of seconds.
    #[error("bad window {0:?}: use a whole number with s, m, h or d, e.g. 1s, 5m, 1h")]
    Syntax(String),
    /// Zero or above [`MAX_WINDOW_S`].
    #[error("window {0:?} out of range: 1s to 7d")]
    Range(String),
    /// The same window twice.
    #[error("window {0:?} given twice")]
    Duplicate(String),
    /// No windows, or more than [`MAX_WINDOWS`].
    #[error("give between 1 and {MAX_WINDOWS} windows")]
    Count,
}

impl Windows {
    /// The windows in seconds, in the order given.
    pub fn seconds(&self) -> &[u32] {
        &self.0
    }

    /// Number of windows.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: a `Windows` is never empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Index of a window in the list.
    pub fn position(&self, window_s: u32) -> Option<usize> {
        self.0.iter().position(|&w| w == window_s)
    }
}

impl Default for Windows {
    fn default() -> Self {
        Self(vec![1, 60, 300, 3600])
    }
}

impl FromStr for Windows {
    type Err = WindowError;

    fn from_str(list: &str) -> Result<Self, Self::Err> {
        let mut out = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let window = parse_window(item)?;
            if out.contains(&window) {
                return Err(WindowError::Duplicate(item.to_owned()));
            }
            out.push(window);
        }
        if out.is_empty() || out.len() > MAX_WINDOWS {
            return Err(WindowError::Count);
        }
        Ok(Self(out))
    }
}

impl fmt::Display for Windows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let labels: Vec<String> = self.0.iter().map(|&w| label(w)).collect();
        f.write_str(&labels.join(","))
    }
}

/// Parses one window: `30s`, `5m`, `1h`, `1d` or a plain number of seconds.
pub fn parse_window(item: &str) -> Result<u32, WindowError> {
    let syntax = || WindowError::Syntax(item.to_owned());
    let (digits, unit) = match item.char_indices().last() {
        Some((at, c)) if c.is_ascii_alphabetic() => (&item[..at], c.to_ascii_lowercase()),
        _ => (item, 's'),
    };
    let scale: u64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(syntax()),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(syntax());
    }
    let count: u64 = digits.parse().map_err(|_| WindowError::Range(item.to_owned()))?;
    let seconds = count.saturating_mul(scale);
    match u32::try_from(seconds) {
        Ok(s) if (1..=MAX_WINDOW_S).contains(&s) => Ok(s),
        _ => Err(WindowError::Range(item.to_owned())),
    }
}

/// The short label of a window: `1s`, `5m`, `1h`, `1d`, or seconds.
pub fn label(window_s: u32) -> String {
    for (unit, scale) in [('d', 86_400), ('h', 3600), ('m', 60)] {
        if window_s.is_multiple_of(scale) {
            return format!("{}{unit}", window_s / scale);
        }
    }
    format!("{window_s}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_read_like_the_flags() {
        let labels: Vec<String> = [1, 60, 300, 3600, 86_400, 90].into_iter().map(label).collect();
        assert_eq!(labels, ["1s", "1m", "5m", "1h", "1d", "90s"]);
    }

    #[test]
    fn parses_the_spec_examples() {
        let w: Windows = "1s,1m,5m,15m,1h,4h,1d".parse().unwrap();
        assert_eq!(w.seconds(), &[1, 60, 300, 900, 3600, 14_400, 86_400]);
        assert_eq!(w.to_string(), "1s,1m,5m,15m,1h,4h,1d");
        assert_eq!(Windows::default().to_string(), "1s,1m,5m,1h");
        assert_eq!("90".parse::<Windows>().map(|w| w.to_string()), Ok("90s".into()));
    }

    #[test]
    fn refuses_bad_lists() {
        assert_eq!("".parse::<Windows>(), Err(WindowError::Count));
        assert_eq!("0s".parse::<Windows>(), Err(WindowError::Range("0s".into())));
        assert_eq!("8d".parse::<Windows>(), Err(WindowError::Range("8d".into())));
        assert_eq!("5x".parse::<Windows>(), Err(WindowError::Syntax("5x".into())));
        assert_eq!("m".parse::<Windows>(), Err(WindowError::Syntax("m".into())));
        assert_eq!("-1s".parse::<Windows>(), Err(WindowError::Syntax("-1s".into())));
        assert_eq!("1m,60s".parse::<Windows>(), Err(WindowError::Duplicate("60s".into())));
        let many = (1..=17).map(|i| format!("{i}s")).collect::<Vec<_>>().join(",");
        assert_eq!(many.parse::<Windows>(), Err(WindowError::Count));
    }
}
