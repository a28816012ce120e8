#!/usr/bin/env bash
# Sets up everything a fresh machine needs (tools, Kafka broker, web assets),
# builds klinecast in release mode and runs `klinecast serve`. Arguments are
# passed on, e.g. `scripts/run.sh --mock-mints 5`. Ctrl-C stops klinecast;
# the broker keeps running (scripts/kafka-down.sh stops it).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/setup.sh"
cd "$REPO_ROOT"

setup_check_tools
setup_apt libssl-dev pkg-config
setup_web
setup_kafka
say "building klinecast (release)"
cargo build --release --locked
say "running klinecast serve $*"
exec target/release/klinecast serve "$@"
