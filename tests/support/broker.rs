//! A Kafka broker of a test's own: own ports, own state directory, own
//! listeners and settings if the test asks, stopped on every path.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A Kafka broker of one test (own ports, own state directory), started
/// with `scripts/kafka-up.sh` and stopped with `scripts/kafka-down.sh`,
/// also when the test fails.
pub struct Broker {
    pub port: u16,
    /// Free ports reserved for listeners of the test's own
    /// ([`Broker::start_with`]).
    pub extra_ports: Vec<u16>,
    dir: tempfile::TempDir,
    /// Properties appended to the template's (`KAFKA_EXTRA_CONFIG`).
    extra_config: Option<PathBuf>,
    /// Arguments of the storage format (`KAFKA_FORMAT_ARGS`).
    format_args: String,
}

/// Makes broker properties from the broker's ports and state directory.
pub type BrokerProperties = Box<dyn FnOnce(&Broker) -> String>;

/// What a test adds to the template broker (`kafka/server.properties`).
#[derive(Default)]
pub struct BrokerSetup {
    /// Free ports to reserve besides the client and controller ports, for
    /// listeners of the test's own ([`Broker::extra_ports`]).
    pub extra_ports: usize,
    /// Broker properties, given the broker (its ports and state directory);
    /// appended to the template's, so they win (e.g. more `listeners`).
    pub properties: Option<BrokerProperties>,
    /// Arguments of the one-time storage format, split on blanks (e.g.
    /// `--add-scram SCRAM-SHA-512=[name=alice,password=secret]`).
    pub format_args: String,
}

impl Broker {
    /// Formats and starts a broker on a free port pair (client port in
    /// 20000..22767, controller port +10000: both below the ephemeral range,
    /// so outgoing connections cannot take them between the probe and the bind).
    pub fn start() -> Broker {
        Self::start_with(BrokerSetup::default())
    }

    /// [`Broker::start`] with listeners, settings and storage-format
    /// arguments of the test's own.
    pub fn start_with(setup: BrokerSetup) -> Broker {
        let dir = tempfile::Builder::new()
            .prefix("kafka-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("broker state dir");
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos() as usize);
        let seed = std::process::id() as usize ^ nanos;
        let mut candidates = (0..2767).map(|i| 20_000 + ((seed + i * 7) % 2767) as u16);
        let port = candidates.find(|&p| port_free(p) && port_free(p + 10_000)).expect("a free port pair");
        let extra_ports: Vec<u16> = candidates.filter(|&p| port_free(p)).take(setup.extra_ports).collect();
        assert_eq!(extra_ports.len(), setup.extra_ports, "free ports for the extra listeners");
        let mut broker = Broker { port, extra_ports, dir, extra_config: None, format_args: setup.format_args };
        if let Some(properties) = setup.properties {
            let path = broker.dir.path().join("extra.properties");
            std::fs::write(&path, properties(&broker)).expect("write the extra broker properties");
            broker.extra_config = Some(path);
        }
        broker.up();
        broker
    }

    /// The KRaft controller port (the client port + 10000, as `kafka-up.sh` derives it).
    pub fn controller_port(&self) -> u16 {
        self.port + 10_000
    }

    /// The broker's state directory (config, data, logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The broker's own log.
    pub fn server_log(&self) -> PathBuf {
        self.dir.path().join("logs/server.log")
    }

    fn script(&self, name: &str) -> std::process::Output {
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts").join(name))
            .env("KAFKA_PORT", self.port.to_string())
            .env("KAFKA_DIR", self.dir.path())
            .env_remove("KAFKA_CONTROLLER_PORT")
            .env("KAFKA_EXTRA_CONFIG", self.extra_config.as_deref().unwrap_or(Path::new("")))
            .env("KAFKA_FORMAT_ARGS", &self.format_args)
            // Bounds each start (the default is 90 s).
            .env("KAFKA_START_TIMEOUT", "60")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {name}: {e}"))
    }

    /// Starts the broker (again, keeping its data) and waits until it
    /// answers; returns how long that took.
    pub fn up(&self) -> Duration {
        let started = Instant::now();
        let out = self.script("kafka-up.sh");
        assert!(out.status.success(), "kafka-up.sh failed: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), self.address());
        started.elapsed()
    }

    /// Stops the broker (SIGTERM, clean shutdown); returns how long it took.
    pub fn down(&self) -> Duration {
        let started = Instant::now();
        let out = self.script("kafka-down.sh");
        assert!(out.status.success(), "kafka-down.sh failed: {}", String::from_utf8_lossy(&out.stderr));
        started.elapsed()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.script("kafka-down.sh");
    }
}

fn port_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}
