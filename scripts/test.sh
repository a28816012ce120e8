#!/usr/bin/env bash
# Sets up everything a fresh machine needs (tools, Kafka broker, web assets)
# and runs every check: formatting, import circles, lints, Rust unit and end-to-end tests
# against the real broker, the JavaScript and Python decoder tests.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/setup.sh"
cd "$REPO_ROOT"

setup_check_tools
setup_apt python3-pytest chromium libssl-dev pkg-config openssl
setup_pip chdb==4.4.0 confluent-kafka==2.16.2
setup_web
setup_kafka
prune_old_topics it-

say "cargo fmt --check"
cargo fmt --all -- --check
say "no import circle between files of src/"
python3 scripts/import-cycles.py src
say "cargo clippy -D warnings"
cargo clippy --all-targets --locked -- -D warnings
say "cargo test"
KLINECAST_TEST_BROKERS="${KLINECAST_TEST_BROKERS:-127.0.0.1:9092}" cargo test --all-targets --locked
say "node --test (static/)"
(cd static && node --test test/)
say "browser end-to-end tests (static/test/e2e.mjs, Debian chromium)"
node static/test/e2e.mjs --fanout per-client
node static/test/e2e.mjs --fanout shared
say "pytest (tests/python)"
(cd tests/python && python3 -m pytest -q)
say "all checks passed"
