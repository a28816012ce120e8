//! `fill=prev`: a page of closed bars with every empty window between two
//! kept bars filled in (open = high = low = close = the previous close, no
//! volume, no trades, marked as filled), the way chart libraries that want
//! one candle per slot expect. Bars are only filled between bars the store
//! knows: never before the first bar of a series, never after its last (no
//! one knows yet whether that slot stays empty). Pure functions, no I/O.

use crate::codec::bar::Bar;

use super::store::Edge;

/// One row of a page: a kept bar or a filled-in empty window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    /// The bar (for a filled row: the previous bar carried over).
    pub bar: Bar,
    /// Whether this window had no trades and was filled in.
    pub filled: bool,
}

impl Row {
    /// A kept bar.
    pub fn kept(bar: Bar) -> Self {
        Self { bar, filled: false }
    }
}

/// The empty window at `open_time_s` after `prev`.
pub fn filled_after(prev: &Bar, open_time_s: i64) -> Row {
    let bar = Bar {
        open_time_s,
        open: prev.close,
        high: prev.close,
        low: prev.close,
        close: prev.close,
        volume_quote: 0,
        volume_tokens: 0,
        buy_volume_quote: 0,
        buy_volume_tokens: 0,
        trades: 0,
        closed: true,
        ..*prev
    };
    Row { bar, filled: true }
}

/// Rows of one series' page with empty windows filled in. `bars` are kept
/// bars, oldest first, as the store returned them for the page (at most
/// `limit`); `before` is the kept bar just before the first of them, if
/// any, which fills the windows at the start of the page. Only windows at
/// or after `from_s` are filled. At most `limit` rows, taken from the same
/// end of the range as the bars were.
pub fn fill_prev(bars: &[Bar], before: Option<&Bar>, from_s: i64, limit: usize, edge: Edge) -> Vec<Row> {
    let Some(first) = bars.first() else { return Vec::new() };
    let w = i64::from(first.window_s);
    // First window at or after from_s, on the window grid.
    let floor =
        if from_s == i64::MIN { i64::MIN } else { from_s.div_euclid(w) * w + if from_s % w == 0 { 0 } else { w } };
    let prev_of = |i: usize| if i == 0 { before } else { Some(&bars[i - 1]) };
    let mut rows = Vec::with_capacity(limit.min(1024));
    match edge {
        Edge::Start => {
            for (i, bar) in bars.iter().enumerate() {
                if let Some(prev) = prev_of(i) {
                    let mut t = (prev.open_time_s + w).max(floor);
                    while t < bar.open_time_s && rows.len() < limit {
                        rows.push(filled_after(prev, t));
                        t += w;
                    }
                }
                if rows.len() >= limit {
                    break;
                }
                rows.push(Row::kept(*bar));
            }
        }
        Edge::End => {
            for (i, bar) in bars.iter().enumerate().rev() {
                if rows.len() >= limit {
                    break;
                }
                rows.push(Row::kept(*bar));
                if let Some(prev) = prev_of(i) {
                    let low = (prev.open_time_s + w).max(floor);
                    let mut t = bar.open_time_s - w;
                    while t >= low && rows.len() < limit {
                        rows.push(filled_after(prev, t));
                        t -= w;
                    }
                }
            }
            rows.reverse();
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(t: i64, close: f64) -> Bar {
        Bar {
            closed: true,
            close,
            high: close.max(1.0),
            low: close.min(1.0),
            volume_quote: 5,
            ..Bar::one_trade([1; 32], 60, t, 1.0)
        }
    }

    fn times(rows: &[Row]) -> Vec<(i64, bool)> {
        rows.iter().map(|r| (r.bar.open_time_s, r.filled)).collect()
    }

    #[test]
    fn fills_each_empty_window_with_the_previous_close_and_nothing_else() {
        let bars = [bar(60, 2.0), bar(240, 3.0), bar(300, 4.0)];
        let rows = fill_prev(&bars, None, i64::MIN, 100, Edge::Start);
        assert_eq!(times(&rows), [(60, false), (120, true), (180, true), (240, false), (300, false)]);
        let filled = rows[1].bar;
        assert_eq!((filled.open, filled.high, filled.low, filled.close), (2.0, 2.0, 2.0, 2.0));
        assert_eq!((filled.trades, filled.volume_quote, filled.buy_volume_tokens), (0, 0, 0));
        assert_eq!(filled.mint, [1; 32]);
        assert_eq!(rows[3].bar, bars[1], "kept bars are unchanged");
    }

    #[test]
    fn limits_count_rows_from_the_asked_end_and_the_page_start_is_filled_from_the_bar_before() {
        let bars = [bar(300, 2.0), bar(600, 3.0)];
        let before = bar(0, 9.0);
        let rows = fill_prev(&bars, Some(&before), 120, 3, Edge::Start);
        assert_eq!(times(&rows), [(120, true), (180, true), (240, true)]);
        assert_eq!(rows[0].bar.close, 9.0);
        let rows = fill_prev(&bars, Some(&before), 120, 3, Edge::End);
        assert_eq!(times(&rows), [(480, true), (540, true), (600, false)]);
        assert_eq!(rows[0].bar.close, 2.0);
        let rows = fill_prev(&bars, None, 0, 100, Edge::End);
        assert_eq!(rows.len(), 6, "nothing before the first kept bar without one before it");
        assert!(fill_prev(&[], Some(&before), 0, 10, Edge::Start).is_empty());
    }
}
