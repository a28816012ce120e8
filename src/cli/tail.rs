//! `klinecast tail`: a Kafka consumer that reads bars in place from the
//! payload librdkafka hands out (validated, zero-copy) and prints them.

use std::io::{self, Write};
use std::time::{Duration, UNIX_EPOCH};

use clap::Args;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::common::KafkaArgs;
use crate::aggregate::windows::{label, parse_window};
use crate::codec::bar::{self, ArchivedBar};
use crate::codec::json::{BarJson, parse_mint};
use crate::kafka::topic::describe;
use crate::kafka::{ConnectError, KafkaConfig, Reader, reader};
use crate::runtime::Shutdown;

/// Flags of `tail`.
#[derive(Debug, Clone, Args)]
pub struct TailArgs {
    /// Kafka connection.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Only this window (1s, 1m, 5m, 1h, ...).
    #[arg(long, value_parser = |s: &str| parse_window(s).map_err(|e| e.to_string()))]
    pub window: Option<u32>,
    /// Only this mint (base58).
    #[arg(long, value_parser = parse_mint)]
    pub mint: Option<[u8; 32]>,
    /// Only closing updates.
    #[arg(long)]
    pub closed: bool,
    /// JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Start at the oldest bar kept by Kafka (default: only new bars).
    #[arg(long, conflicts_with = "from")]
    pub from_beginning: bool,
    /// Start at a time: unix seconds or RFC 3339 (2026-11-26T10:00:00Z).
    #[arg(long, value_parser = parse_time_ms)]
    pub from: Option<i64>,
    /// Exit after printing this many bars.
    #[arg(long)]
    pub count: Option<u64>,
    /// Exit when no bar arrived for this long (e.g. 5s); default: never.
    #[arg(long, value_parser = super::common::parse_duration)]
    pub idle_exit: Option<Duration>,
}

/// Runs `tail` until `--count`, `--idle-exit` or a signal.
pub fn run(args: &TailArgs, shutdown: &Shutdown) -> anyhow::Result<()> {
    let config = args.kafka.config();
    let consumer = connect(&config, args)?;
    let mut out = io::BufWriter::new(io::stdout().lock());
    if !args.json {
        writeln!(
            out,
            "{:<4} {:<20} {:<44} {:>12} {:>12} {:>12} {:>12} {:>12} {:<6} {:<17} {:>6} {:>8} closed",
            "win", "open_time", "mint", "open", "high", "low", "close", "volume", "quote", "venue", "trades", "seq"
        )?;
    }
    let (mut printed, mut skipped) = (0u64, 0u64);
    let mut last_bar = std::time::Instant::now();
    while !shutdown.requested() && args.count.is_none_or(|n| printed < n) {
        if args.idle_exit.is_some_and(|idle| last_bar.elapsed() >= idle) {
            break;
        }
        let Some(result) = consumer.poll(Duration::from_millis(200)) else {
            out.flush()?;
            continue;
        };
        let message = match result {
            Ok(message) => message,
            Err(KafkaError::PartitionEOF(_)) => continue,
            Err(error) => {
                eprintln!("kafka: {error}");
                continue;
            }
        };
        last_bar = std::time::Instant::now();
        match bar::access(message.payload().unwrap_or_default()) {
            Ok(bar) if wanted(args, bar) => {
                print_bar(&mut out, args.json, bar)?;
                printed += 1;
            }
            Ok(_) => {}
            Err(error) => {
                skipped += 1;
                eprintln!("skipping offset {} of partition {}: {error}", message.offset(), message.partition());
            }
        }
    }
    out.flush()?;
    if skipped > 0 {
        eprintln!("{skipped} malformed messages skipped");
    }
    Ok(())
}

fn connect(config: &KafkaConfig, args: &TailArgs) -> anyhow::Result<Reader> {
    let consumer: Reader = config.create_reader(&reader::unique_group("tail")).map_err(ConnectError::Config)?;
    let partitions = describe(config)?.ok_or_else(|| ConnectError::Topic {
        topic: config.topic.clone(),
        reason: "does not exist yet (it is created by `klinecast ingest` or `serve`)".into(),
    })?;
    let mut list = TopicPartitionList::new();
    match (args.from_beginning, args.from) {
        (false, Some(ms)) => {
            // Kafka turns the time into the first offset at or after it.
            let since: Vec<(i32, Option<i64>)> = (0..partitions).map(|p| (p, Some(ms))).collect();
            for span in reader::spans(&consumer, &config.topic, &since)? {
                list.add_partition_offset(&config.topic, span.partition, Offset::Offset(span.start))?;
            }
        }
        (from_beginning, _) => {
            let start = if from_beginning { Offset::Beginning } else { Offset::End };
            for partition in 0..partitions {
                list.add_partition_offset(&config.topic, partition, start)?;
            }
        }
    }
    consumer.assign(&list)?;
    Ok(consumer)
}

fn wanted(args: &TailArgs, bar: &ArchivedBar) -> bool {
    args.window.is_none_or(|w| bar.window_s.to_native() == w)
        && args.mint.is_none_or(|m| bar.mint == m)
        && (!args.closed || bar.closed)
}

fn print_bar(out: &mut impl Write, json: bool, archived: &ArchivedBar) -> io::Result<()> {
    let bar = archived.to_bar();
    if json {
        return writeln!(out, "{}", BarJson::line(&bar));
    }
    let time = UNIX_EPOCH + Duration::from_secs(bar.open_time_s.max(0) as u64);
    writeln!(
        out,
        "{:<4} {:<20} {:<44} {:>12.4e} {:>12.4e} {:>12.4e} {:>12.4e} {:>12.4} {:<6} {:<17} {:>6} {:>8} {}",
        label(bar.window_s),
        humantime::format_rfc3339_seconds(time).to_string(),
        bs58::encode(bar.mint).into_string(),
        bar.open,
        bar.high,
        bar.low,
        bar.close,
        bar.volume_quote_units(),
        crate::codec::quote::label(&bar.quote_mint),
        crate::codec::bar::Venue::names(bar.venues),
        bar.trades,
        bar.seq,
        if bar.closed { "yes" } else { "" }
    )
}

/// Parses `--from`: unix seconds or RFC 3339; returns unix milliseconds.
fn parse_time_ms(text: &str) -> Result<i64, String> {
    if let Ok(seconds) = text.trim().parse::<i64>() {
        return Ok(seconds.saturating_mul(1000));
    }
    let time = humantime::parse_rfc3339_weak(text.trim())
        .map_err(|e| format!("{e}: give unix seconds or RFC 3339 like 2026-11-26T10:00:00Z"))?;
    Ok(time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_unix_seconds_or_rfc3339() {
        assert_eq!(parse_time_ms("1770648704"), Ok(1_770_648_704_000));
        assert_eq!(parse_time_ms("2026-02-09T14:51:44Z"), Ok(1_770_648_704_000));
        assert!(parse_time_ms("yesterday").unwrap_err().contains("RFC 3339"));
    }
}
