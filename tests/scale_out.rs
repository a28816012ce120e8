//! Scale-out on one topic (SPEC §6): two `klinecast ingest` processes split
//! the mints with `--mint-shard 0/2` and `1/2`, two `klinecast gateway`
//! processes serve them, all on one topic of the shared broker. A client
//! on each gateway sees every mint of both ingest processes, gap-free, and
//! the same bytes as the other client; in the topic each mint's series was
//! produced by exactly one ingest process.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use klinecast::codec::bar::{self, Bar};
use klinecast::codec::trade::Pubkey;
use klinecast::ingest::shard_for;
use klinecast::source::{MockConfig, MockSource};
use support::{Child, Recorder};

/// A seed whose six mints split 3/3 between the two shards (`shard_for`).
const SEED: u64 = 7;
const MINTS: u32 = 6;
/// Events per second each ingest process generates (over all six mints;
/// each keeps its half).
const RATE: u64 = 300;
/// The default `--windows` (1s,1m,5m,1h): one partition each.
const WINDOWS: usize = 4;
/// How long the clients record.
const RECORD: Duration = Duration::from_secs(6);

/// Per (mint, window): seq numbers strictly consecutive.
fn assert_no_gaps(bars: &[Bar], who: &str) {
    let mut last: BTreeMap<(Pubkey, u32), u64> = BTreeMap::new();
    for bar in bars {
        if let Some(prev) = last.insert((bar.mint, bar.window_s), bar.seq) {
            assert_eq!(bar.seq, prev + 1, "{who}: gap in window {} of a mint", bar.window_s);
        }
    }
}

fn ingest(topic: &str, shard: u32) -> Child {
    let brokers = support::brokers();
    let (mints, rate, seed, mint_shard) = (MINTS.to_string(), RATE.to_string(), SEED.to_string(), format!("{shard}/2"));
    let args = [
        "ingest",
        "--brokers",
        &brokers,
        "--topic",
        topic,
        "--mock-mints",
        &mints,
        "--mock-rate",
        &rate,
        "--mock-seed",
        &seed,
        "--mint-shard",
        &mint_shard,
    ];
    let mut child =
        Child::spawn(&format!("ingest-{shard}"), &args, support::log_path(topic, &format!("ingest{shard}")), false);
    assert!(child.wait_for_log("ingest starting", Duration::from_secs(30)), "ingest {shard}: {}", child.log_text());
    child
}

fn gateway(topic: &str, name: &str) -> (Child, u16) {
    let port = support::free_port();
    let (brokers, listen) = (support::brokers(), format!("127.0.0.1:{port}"));
    let args = ["gateway", "--brokers", &brokers, "--topic", topic, "--listen", &listen];
    let mut child = Child::spawn(name, &args, support::log_path(topic, name), false);
    support::await_healthy(&mut child, port, Duration::from_secs(30));
    (child, port)
}

#[test]
fn two_ingest_shards_and_two_gateways_share_one_topic() {
    let started = std::time::Instant::now();
    let mints = MockSource::new(MockConfig { mints: MINTS, rate_per_s: RATE, seed: SEED }).mints();
    let owner: BTreeMap<Pubkey, u32> = mints.iter().map(|m| (*m, shard_for(m, 2))).collect();
    let owned = |shard: u32| owner.values().filter(|&&s| s == shard).count();
    assert_eq!((owned(0), owned(1)), (3, 3), "seed {SEED} splits the mints evenly");
    let topic = support::fresh_topic("it-scale");
    support::create_topic(&support::brokers(), &topic, WINDOWS as i32).expect("create the topic");

    let mut ingests = [ingest(&topic, 0), ingest(&topic, 1)];
    let (mut gw_a, port_a) = gateway(&topic, "gateway-a");
    let (mut gw_b, port_b) = gateway(&topic, "gateway-b");
    let mut clients = Vec::new();
    for port in [port_a, port_b] {
        let mut ws = support::ws(port, "/ws");
        assert_eq!(support::command(&mut ws, "sub-1s")["type"], "subscribed");
        clients.push(Recorder::start(ws));
    }
    std::thread::sleep(RECORD);
    let recordings: Vec<_> = clients.into_iter().map(|c| c.finish().1).collect();
    assert!(gw_a.alive() && gw_b.alive(), "a gateway exited");

    let streams: Vec<Vec<(Vec<u8>, Bar)>> = recordings
        .iter()
        .map(|r| {
            assert!(r.error.is_none(), "client error: {:?}", r.error);
            support::bar_frames(r).into_iter().map(|(_, b)| (b.clone(), bar::access(&b).unwrap().to_bar())).collect()
        })
        .collect();
    for (stream, who) in streams.iter().zip(["client of gateway a", "client of gateway b"]) {
        let bars: Vec<Bar> = stream.iter().map(|(_, b)| *b).collect();
        assert!(bars.iter().all(|b| b.window_s == 1), "{who}: only 1 s bars");
        let seen: BTreeSet<Pubkey> = bars.iter().map(|b| b.mint).collect();
        assert_eq!(seen.len(), mints.len(), "{who}: bars of every mint of both shards ({} bars)", bars.len());
        assert_no_gaps(&bars, who);
    }
    // Over the stretch both saw, the same messages in the same order, byte for byte.
    let key = |(_, bar): &(Vec<u8>, Bar)| (bar.mint, bar.seq);
    let (a, b) = (&streams[0], &streams[1]);
    let first_common = b.iter().map(key).find(|k| a.iter().any(|x| key(x) == *k)).expect("a common update");
    let a_tail: Vec<&Vec<u8>> = a.iter().skip_while(|x| key(x) != first_common).map(|(bytes, _)| bytes).collect();
    let b_tail: Vec<&Vec<u8>> = b.iter().skip_while(|x| key(x) != first_common).map(|(bytes, _)| bytes).collect();
    let common_len = a_tail.len().min(b_tail.len());
    assert!(common_len > 100, "only {common_len} updates in common");
    assert!(a_tail[..common_len] == b_tail[..common_len], "the two gateways sent different streams");

    // Stop the producers (their reports count what each sent), then read the
    // topic: each (mint, window, seq) once, and each mint's messages add up
    // to what its owner reported.
    let mut sent = [0u64; 2];
    for (shard, child) in ingests.iter_mut().enumerate() {
        let status = child.terminate(Duration::from_secs(40));
        assert!(status.is_some_and(|s| s.success()), "ingest {shard} did not stop cleanly: {}", child.log_text());
        let report = support::ingest_report(&child.log_text()).expect("report");
        sent[shard] = support::count_before(&report, "sent").unwrap();
        assert!(support::count_after(&report, "other shard").unwrap() > 0, "ingest {shard} skipped the other half");
        assert_eq!(support::count_before(&report, "unflushed"), Some(0), "{report}");
    }
    let messages = support::read_all(&support::brokers(), &topic, Duration::from_secs(60));
    let mut per_series: BTreeMap<(Pubkey, u32), Vec<u64>> = BTreeMap::new();
    let mut per_shard = [0u64; 2];
    for m in &messages {
        let bar = bar::access(&m.payload).unwrap().to_bar();
        per_series.entry((bar.mint, bar.window_s)).or_default().push(bar.seq);
        per_shard[owner[&bar.mint] as usize] += 1;
    }
    assert_eq!(per_series.len(), mints.len() * WINDOWS, "six mints × four windows");
    for ((mint, window_s), seqs) in &per_series {
        let want: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert!(*seqs == want, "window {window_s} of mint owned by shard {}: seq not 1..n once each", owner[mint]);
    }
    assert_eq!(per_shard, sent, "messages of each shard's mints vs. what that ingest process sent");
    eprintln!(
        "mints per shard {}/{}; clients got {} and {} bars, {common_len} in common; topic {} messages ({per_shard:?}); \
         took {:?}",
        owned(0),
        owned(1),
        a.len(),
        b.len(),
        messages.len(),
        started.elapsed()
    );
}
