//! How long closed bars are kept, per window, and how the store cuts each
//! window's bars into buckets (one table each) so that dropping old bars is
//! dropping whole tables.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::aggregate::windows::{label, parse_window};

/// Kept by default for windows under a minute (`1s`): six hours.
pub const SHORT_WINDOW_RETENTION_S: i64 = 6 * 3600;
/// Kept by default for windows of a minute and more: seven days...
pub const LONG_WINDOW_RETENTION_S: i64 = 7 * 86_400;
/// ...or this many bars, whichever is longer (a `1d` window keeps 1,000
/// days, not seven bars).
pub const MIN_RETAINED_BARS: i64 = 1000;
/// Buckets a retention is cut into, at least: the oldest bucket is dropped
/// whole once all of it is older than the retention, so a window holds
/// between its retention and its retention plus one bucket.
pub const BUCKETS_PER_RETENTION: i64 = 4;

/// Bucket lengths the store picks from (seconds): readable table names, and
/// few tables per window.
const BUCKET_LADDER_S: [i64; 7] = [3600, 6 * 3600, 86_400, 7 * 86_400, 30 * 86_400, 90 * 86_400, 365 * 86_400];

/// The default retention of a window, seconds.
pub fn default_retention_s(window_s: u32) -> i64 {
    if window_s < 60 {
        SHORT_WINDOW_RETENTION_S
    } else {
        LONG_WINDOW_RETENTION_S.max(MIN_RETAINED_BARS * i64::from(window_s))
    }
}

/// The bucket length for a window kept `retention_s`: the longest step of
/// the ladder that still cuts the retention into [`BUCKETS_PER_RETENTION`]
/// buckets (at least one hour).
pub fn bucket_s_for(retention_s: i64) -> i64 {
    let mut pick = BUCKET_LADDER_S[0];
    for step in BUCKET_LADDER_S {
        if step * BUCKETS_PER_RETENTION <= retention_s {
            pick = step;
        }
    }
    pick
}

/// `--history-retention`: per-window overrides, e.g. `1s=6h,1m=30d`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retention {
    /// (window seconds, kept seconds), as given.
    overrides: Vec<(u32, i64)>,
}

impl Retention {
    /// How long bars of `window_s` are kept, seconds.
    pub fn of(&self, window_s: u32) -> i64 {
        self.overrides.iter().find(|(w, _)| *w == window_s).map_or(default_retention_s(window_s), |(_, s)| *s)
    }
}

impl FromStr for Retention {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut overrides = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (window, kept) =
                item.split_once('=').ok_or_else(|| format!("expected WINDOW=DURATION (e.g. 1s=6h), got {item:?}"))?;
            let window_s = parse_window(window.trim()).map_err(|e| e.to_string())?;
            let kept: Duration =
                humantime::parse_duration(kept.trim()).map_err(|e| format!("{item:?}: {e} (e.g. 6h, 7d)"))?;
            let kept_s = kept.as_secs() as i64;
            if kept_s < i64::from(window_s) {
                return Err(format!("{item:?}: keep at least one window"));
            }
            overrides.retain(|(w, _)| *w != window_s);
            overrides.push((window_s, kept_s));
        }
        Ok(Self { overrides })
    }
}

impl fmt::Display for Retention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: Vec<String> = self.overrides.iter().map(|(w, s)| format!("{}={s}s", label(*w))).collect();
        f.write_str(&items.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_keep_six_hours_of_seconds_and_a_week_or_1000_bars_of_the_rest() {
        let none = Retention::default();
        assert_eq!(none.of(1), 6 * 3600);
        assert_eq!(none.of(60), 7 * 86_400);
        assert_eq!(none.of(300), 7 * 86_400);
        assert_eq!(none.of(3600), 1000 * 3600);
        assert_eq!(none.of(86_400), 1000 * 86_400);
    }

    #[test]
    fn overrides_parse_and_bad_ones_say_why() {
        let r: Retention = "1s=1h, 1m=30d".parse().unwrap();
        assert_eq!((r.of(1), r.of(60), r.of(300)), (3600, 30 * 86_400, 7 * 86_400));
        assert!("1s".parse::<Retention>().unwrap_err().contains("WINDOW=DURATION"));
        assert!("1x=1h".parse::<Retention>().is_err());
        assert!("1m=soon".parse::<Retention>().unwrap_err().contains("e.g."));
        assert!("1h=1m".parse::<Retention>().unwrap_err().contains("at least one window"));
    }

    #[test]
    fn buckets_cut_a_retention_into_at_least_four() {
        assert_eq!(bucket_s_for(6 * 3600), 3600);
        assert_eq!(bucket_s_for(7 * 86_400), 86_400);
        assert_eq!(bucket_s_for(1000 * 86_400), 90 * 86_400);
        assert_eq!(bucket_s_for(60), 3600);
    }
}
