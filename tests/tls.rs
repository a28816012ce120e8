//! Kafka over TLS and SASL_SSL against a real broker (SPEC §6: TLS and SASL
//! settings pass through `--kafka-config`; docs/operations.md §3).
//!
//! The test owns a broker with three listeners on 127.0.0.1: PLAINTEXT (the
//! start script's readiness check, the topic's creation and the reference
//! read), SSL, and SASL_SSL with a SCRAM-SHA-512 user. Its certificate is
//! signed by a CA made for this run with the openssl CLI, in a temp dir.
//!
//! 1. `klinecast serve` talks to the SSL listener only, with
//!    `--kafka-config security.protocol=ssl --kafka-config
//!    ssl.ca.location=<ca>`: every Kafka client of the process (topic check,
//!    producer, restart read-back, shard feed, a per-client consumer, the
//!    `/healthz` probe) goes over TLS. A WebSocket client gets live bars with
//!    no `seq` gap, closing bars included, and the process exits 0 with
//!    every bar acknowledged.
//! 2. `klinecast tail` over SASL_SSL with SCRAM-SHA-512, configured through
//!    `KLINECAST_KAFKA_CONFIG` as the operations guide shows, prints exactly
//!    the closing 1 s bars a plaintext reader finds in the topic.
//! 3. Misconfigurations end each role with exit code 1 within seconds
//!    instead of hanging, with the error class "not reachable: security
//!    settings" and its hint: a CA that did not sign the broker's
//!    certificate, plaintext against the TLS listener, TLS against the
//!    plaintext listener, a wrong SCRAM password. The test asserts on these
//!    stable facts, not on librdkafka's reason: its wording for the same
//!    failure varies between runs ("SSL handshake failed" one time, "SSL
//!    connection closed by peer" the next).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use klinecast::codec::bar;
use klinecast::kafka::Unreachable;
use support::{Broker, BrokerSetup, Child};

/// The SCRAM user the broker is formatted with.
const SCRAM_USER: &str = "klinecast";
const SCRAM_PASSWORD: &str = "s3cret";

/// Longest a misconfigured process may take to give up. It fails after
/// klinecast's metadata time-out (5 s, `kafka::topic::METADATA_TIMEOUT`);
/// the rest is process start-up on a loaded machine. A process that hangs
/// never ends, so any bound this size tells the two apart.
const GIVE_UP_BOUND: Duration = Duration::from_secs(30);

/// A throwaway PKI: a CA, a broker certificate it signed (for IP
/// 127.0.0.1, which librdkafka checks by default), and an unrelated CA.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn make() -> Pki {
        let dir = tempfile::Builder::new().prefix("tls-").tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
        let at = dir.path();
        for (name, subject) in [("ca", "/CN=klinecast test CA"), ("other-ca", "/CN=some other CA")] {
            let (key, cert) = (format!("{name}.key"), format!("{name}.pem"));
            #[rustfmt::skip]
            openssl(at, &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", subject, "-keyout", &key, "-out", &cert]);
        }
        #[rustfmt::skip]
        openssl(at, &["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "broker.key", "-out", "broker.csr"]);
        std::fs::write(at.join("san.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
        #[rustfmt::skip]
        openssl(at, &[
            "x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", "san.cnf", "-out", "broker.crt",
        ]);
        // Kafka's PEM key store: the private key (unencrypted PKCS#8, as
        // `openssl req -newkey` writes it), then the certificate chain.
        let mut pem = std::fs::read(at.join("broker.key")).unwrap();
        pem.extend(std::fs::read(at.join("broker.crt")).unwrap());
        pem.extend(std::fs::read(at.join("ca.pem")).unwrap());
        std::fs::write(at.join("broker.pem"), pem).unwrap();
        Pki { dir }
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn other_ca(&self) -> PathBuf {
        self.dir.path().join("other-ca.pem")
    }

    fn broker_key_store(&self) -> PathBuf {
        self.dir.path().join("broker.pem")
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run the openssl CLI (Debian package openssl)");
    assert!(out.status.success(), "openssl {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

/// A broker with SSL and SASL_SSL listeners besides the template's
/// PLAINTEXT one; `extra_ports` are [SSL, SASL_SSL].
fn tls_broker(pki: &Pki) -> Broker {
    let key_store = pki.broker_key_store();
    Broker::start_with(BrokerSetup {
        extra_ports: 2,
        properties: Some(Box::new(move |broker: &Broker| {
            let (plain, controller) = (broker.port, broker.controller_port());
            let (ssl, sasl) = (broker.extra_ports[0], broker.extra_ports[1]);
            format!(
                "listeners=PLAINTEXT://127.0.0.1:{plain},CONTROLLER://127.0.0.1:{controller},\
                 SSL://127.0.0.1:{ssl},SASL_SSL://127.0.0.1:{sasl}\n\
                 advertised.listeners=PLAINTEXT://127.0.0.1:{plain},SSL://127.0.0.1:{ssl},SASL_SSL://127.0.0.1:{sasl}\n\
                 listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL\n\
                 ssl.keystore.type=PEM\n\
                 ssl.keystore.location={}\n\
                 sasl.enabled.mechanisms=SCRAM-SHA-512\n\
                 listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=\
                 org.apache.kafka.common.security.scram.ScramLoginModule required;\n",
                key_store.display()
            )
        })),
        format_args: format!("--add-scram SCRAM-SHA-512=[name={SCRAM_USER},password={SCRAM_PASSWORD}]"),
    })
}

/// `(mint, open_time_s, seq)` of a closing bar.
type Closing = (String, i64, u64);

#[test]
fn bars_flow_over_tls_and_sasl_ssl_and_misconfigurations_fail_clearly() {
    let started = Instant::now();
    let pki = Pki::make();
    let broker = tls_broker(&pki);
    let plain = broker.address();
    let ssl = format!("127.0.0.1:{}", broker.extra_ports[0]);
    let sasl_ssl = format!("127.0.0.1:{}", broker.extra_ports[1]);
    let broker_up_s = started.elapsed().as_secs_f64();
    let topic = support::fresh_topic("it-tls");
    support::create_topic(&plain, &topic, 4).expect("create the topic");

    let ws_closing = serve_over_tls(&pki, &ssl, &topic);
    let tailed = tail_over_sasl_ssl(&pki, &sasl_ssl, &plain, &topic);
    for bar in &ws_closing {
        assert!(tailed.contains(bar), "a closing bar the WebSocket client got is not in the topic: {bar:?}");
    }
    misconfigurations_fail_clearly(&pki, &plain, &ssl, &sasl_ssl, &topic);
    eprintln!(
        "tls: broker up in {broker_up_s:.1} s; {} closing 1 s bars over WebSocket, {} read back over SASL_SSL; \
         {:.1} s in all",
        ws_closing.len(),
        tailed.len(),
        started.elapsed().as_secs_f64()
    );
}

/// Step 1: `serve` over the SSL listener; returns the closing bars its
/// WebSocket client got.
fn serve_over_tls(pki: &Pki, ssl: &str, topic: &str) -> Vec<Closing> {
    let port = support::free_port();
    let (listen, ca) = (format!("127.0.0.1:{port}"), format!("ssl.ca.location={}", pki.ca().display()));
    #[rustfmt::skip]
    let args = [
        "serve", "--brokers", ssl, "--topic", topic, "--listen", &listen,
        "--kafka-config", "security.protocol=ssl", "--kafka-config", &ca,
        "--fanout", "per-client", "--mock-mints", "2", "--mock-rate", "200",
    ];
    let mut serve = Child::spawn("serve", &args, support::log_path(topic, "serve"), false);
    support::await_healthy(&mut serve, port, Duration::from_secs(60));
    let health = support::http_get(port, "/healthz");
    assert!(health.contains(r#""partitions":4"#), "health over TLS: {health}");

    let mut ws = support::ws(port, "/ws");
    assert_eq!(support::command(&mut ws, "sub-1s")["type"], "subscribed");
    let recorder = support::Recorder::start(ws);
    // Two mints close a 1 s bar each per second: wait for a few of each.
    let deadline = Instant::now() + Duration::from_secs(30);
    let closing_seen = |recorder: &support::Recorder| {
        recorder
            .with(|r| support::bar_frames(r).iter().filter(|(_, b)| bar::access(b).is_ok_and(|bar| bar.closed)).count())
    };
    while closing_seen(&recorder) < 6 {
        assert!(Instant::now() < deadline, "no closing bars over TLS within 30 s: {}", serve.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
    let (_, recording) = recorder.finish();
    assert_eq!(recording.error, None, "the WebSocket client's connection");
    let bars: Vec<bar::Bar> =
        support::bar_frames(&recording).iter().map(|(_, b)| bar::access(b).expect("valid bar").to_bar()).collect();
    assert!(bars.iter().all(|b| b.window_s == 1));
    // Per-client mode forwards every Kafka message: no update missing.
    support::assert_no_gaps(&bars);

    let status = serve.terminate(Duration::from_secs(40)).expect("serve stops on SIGTERM");
    assert!(status.success(), "serve over TLS exited with {status}: {}", serve.log_text());
    let report = support::ingest_report(&serve.log_text()).expect("ingest report");
    assert!(report.contains(" 0 failed, 0 unflushed"), "{report}");
    bars.iter().filter(|b| b.closed).map(|b| (bs58::encode(b.mint).into_string(), b.open_time_s, b.seq)).collect()
}

/// Step 2: `tail` over SASL_SSL (SCRAM-SHA-512) against the topic as a
/// plaintext reader sees it; returns the closing 1 s bars.
fn tail_over_sasl_ssl(pki: &Pki, sasl_ssl: &str, plain: &str, topic: &str) -> Vec<Closing> {
    let reference: Vec<Closing> = support::read_all(plain, topic, Duration::from_secs(60))
        .iter()
        .filter(|m| m.key == "key_1")
        .map(|m| bar::access(&m.payload).expect("valid bar").to_bar())
        .filter(|b| b.closed)
        .map(|b| (bs58::encode(b.mint).into_string(), b.open_time_s, b.seq))
        .collect();
    assert!(reference.len() >= 6, "closing 1 s bars in the topic: {}", reference.len());
    // As docs/operations.md §3 shows it: settings (and the password) from
    // the environment, not the command line.
    let settings = format!(
        "security.protocol=SASL_SSL,sasl.mechanisms=SCRAM-SHA-512,sasl.username={SCRAM_USER},\
         sasl.password={SCRAM_PASSWORD},ssl.ca.location={}",
        pki.ca().display()
    );
    let count = reference.len().to_string();
    #[rustfmt::skip]
    let args = [
        "tail", "--brokers", sasl_ssl, "--topic", topic, "--from-beginning", "--window", "1s", "--closed",
        "--json", "--count", &count, "--idle-exit", "20s",
    ];
    let out = Command::new(env!("CARGO_BIN_EXE_klinecast"))
        .args(args)
        .env("KLINECAST_KAFKA_CONFIG", settings)
        .env("KLINECAST_LOG", "info")
        .output()
        .expect("run klinecast tail");
    assert!(out.status.success(), "tail over SASL_SSL: {}", String::from_utf8_lossy(&out.stderr));
    let tailed: Vec<Closing> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let bar: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            let mint = bar["mint"].as_str().expect("mint").to_owned();
            (mint, bar["unix_timestamp"].as_i64().expect("open time"), bar["seq"].as_u64().expect("seq"))
        })
        .collect();
    assert_eq!(tailed, reference, "tail over SASL_SSL against the topic read in plaintext");
    tailed
}

/// A misconfigured process.
struct Misconfigured<'a> {
    what: &'static str,
    args: Vec<&'a str>,
    /// The bootstrap address the error names.
    brokers: &'a str,
}

/// Step 3: each role, misconfigured, exits 1 naming the brokers and the
/// security class of failure with its hint.
fn misconfigurations_fail_clearly(pki: &Pki, plain: &str, ssl: &str, sasl_ssl: &str, topic: &str) {
    let wrong_ca = format!("ssl.ca.location={}", pki.other_ca().display());
    let right_ca = format!("ssl.ca.location={}", pki.ca().display());
    let listen = format!("127.0.0.1:{}", support::free_port());
    let wrong_password = format!(
        "security.protocol=SASL_SSL,sasl.mechanisms=SCRAM-SHA-512,sasl.username={SCRAM_USER},\
         sasl.password=not-{SCRAM_PASSWORD},{right_ca}"
    );
    #[rustfmt::skip]
    let cases = [
        Misconfigured {
            what: "ingest, TLS with a CA that did not sign the broker's certificate",
            args: vec!["ingest", "--kafka-config", "security.protocol=ssl", "--kafka-config", &wrong_ca],
            brokers: ssl,
        },
        Misconfigured {
            what: "gateway, plaintext against the TLS listener",
            args: vec!["gateway", "--listen", &listen],
            brokers: ssl,
        },
        Misconfigured {
            what: "tail, TLS against the plaintext listener",
            args: vec!["tail", "--kafka-config", "security.protocol=ssl", "--kafka-config", &right_ca],
            brokers: plain,
        },
        Misconfigured {
            what: "ingest, SASL_SSL with a wrong password",
            args: vec!["ingest", "--kafka-config", &wrong_password],
            brokers: sasl_ssl,
        },
    ];
    // All at once: each waits out the same time-out.
    let started = Instant::now();
    let mut children: Vec<Child> = cases
        .iter()
        .enumerate()
        .map(|(i, case)| {
            let args: Vec<&str> =
                case.args.iter().copied().chain(["--brokers", case.brokers, "--topic", topic]).collect();
            Child::spawn(case.what, &args, support::log_path(topic, &format!("misconfigured-{i}")), false)
        })
        .collect();
    for (case, child) in cases.iter().zip(&mut children) {
        let status = loop {
            if let Ok(Some(status)) = child.child.try_wait() {
                break status;
            }
            assert!(started.elapsed() < GIVE_UP_BOUND, "{}: still running after {GIVE_UP_BOUND:?}", case.what);
            std::thread::sleep(Duration::from_millis(100));
        };
        let log = child.log_text();
        assert_eq!(status.code(), Some(1), "{}: {log}", case.what);
        let error = log.lines().skip_while(|l| !l.starts_with("error: ")).collect::<Vec<_>>().join("\n");
        let expected = format!("error: Kafka is not reachable at {}: ", case.brokers);
        assert!(error.starts_with(&expected), "{}: {log}", case.what);
        // librdkafka's reason sits between the two: present, in its own words.
        let reason = error[expected.len()..].lines().next().unwrap_or_default();
        assert!(!reason.trim().is_empty(), "{}: no reason in {error}", case.what);
        assert!(
            error.contains(Unreachable::Security.hint()),
            "{}: not classed as a security failure: {error}",
            case.what
        );
        assert!(!error.contains(Unreachable::NoBroker.hint()), "{}: {error}", case.what);
        eprintln!("{}: exit 1 after {:.1} s:\n{error}", case.what, started.elapsed().as_secs_f64());
    }
}
