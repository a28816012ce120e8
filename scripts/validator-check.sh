#!/usr/bin/env bash
# End-to-end check of `klinecast ingest --source solana` against a real local
# Solana node (Agave's solana-test-validator 3.1.12, scripts/solana-validator.sh):
# trades are sent as real transactions, and every closing bar klinecast
# produces is compared with bars computed from what landed, through a
# validator SIGKILL + restart and an ingest SIGKILL + restart.
#
#   scripts/validator-check.sh        (about 4 minutes; exit 0 = every bar right)
#
# Needs the validator built once (scripts/solana-validator.sh build, about 40
# minutes on 2 cores; exit 2 here if it is not). Everything runs on
# 127.0.0.1. What it checks and why it is not part of scripts/test.sh:
# docs/validator.md.
#
# Environment: KLINECAST_BIN (a klinecast binary to use instead of building
# target/release/klinecast), KLINECAST_CHECK_DIR (where the run's files go,
# default target/validator-check/<time>), and those of scripts/solana-validator.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/setup.sh"
cd "$REPO_ROOT"

T0=$(date +%s)
VENV="$HOME/.cache/klinecast/venv"
RPC_PORT="${KLINECAST_VALIDATOR_RPC_PORT:-8899}"
RPC_URL="http://127.0.0.1:$RPC_PORT"
WS_URL="ws://127.0.0.1:$((RPC_PORT + 1))"
BROKERS="127.0.0.1:${KAFKA_PORT:-9092}"
WINDOWS=1s,1m
CLOSE_DELAY_S=2
TOPIC="validator-check-$T0"
WORK="${KLINECAST_CHECK_DIR:-$REPO_ROOT/target/validator-check/$T0}"
VALIDATOR="$REPO_ROOT/scripts/solana-validator.sh"
mkdir -p "$WORK"

elapsed() { echo "$(($(date +%s) - T0)) s"; }
phase() { say "[$(elapsed)] $*"; }

# --- what runs, and its clean-up -------------------------------------------
INGEST_PID=""
SENDER_PID=""
KAFKA_STARTED=""
VALIDATOR_STARTED=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [[ -n "$SENDER_PID" ]] && kill -TERM "$SENDER_PID" 2>/dev/null && wait "$SENDER_PID" 2>/dev/null
  [[ -n "$INGEST_PID" ]] && kill -TERM "$INGEST_PID" 2>/dev/null && wait "$INGEST_PID" 2>/dev/null
  [[ -n "$VALIDATOR_STARTED" ]] && "$VALIDATOR" stop || true
  [[ -n "$KAFKA_STARTED" ]] && "$REPO_ROOT/scripts/kafka-down.sh" >/dev/null 2>&1 || true
  say "run files: $WORK (total $(elapsed))"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- set-up ------------------------------------------------------------------
if ! "$VALIDATOR" path >/dev/null 2>&1; then
  cat >&2 <<EOF
error: solana-test-validator 3.1.12 (and its log program) is not built.
Build it once (about 40 minutes on 2 cores, cached in ~/.cache/klinecast/agave-3.1.12):

    scripts/solana-validator.sh build

then run this check again.
EOF
  exit 2
fi

if ! "$VENV/bin/python" -c 'import solders' 2>/dev/null; then
  say "installing solders into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet solders >&2
fi
PY="$VENV/bin/python"

if ! (exec 3<>"/dev/tcp/127.0.0.1/${KAFKA_PORT:-9092}") 2>/dev/null; then KAFKA_STARTED=1; fi
setup_kafka
prune_old_topics validator-check || true

if [[ -n "${KLINECAST_BIN:-}" ]]; then
  KLINECAST="$KLINECAST_BIN"
else
  setup_apt libssl-dev pkg-config
  say "building klinecast (release)"
  cargo build --release --locked --quiet
  KLINECAST="$REPO_ROOT/target/release/klinecast"
fi
# A copy: both ingest runs use the same binary even if a build replaces it.
cp "$KLINECAST" "$WORK/klinecast"
KLINECAST="$WORK/klinecast"

rpc() { # method [params-json] -> result JSON on stdout
  curl -s -m 2 -H 'content-type: application/json' \
    -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$1\",\"params\":${2:-[]}}" "$RPC_URL" |
    "$PY" -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["result"]))'
}
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- the node ----------------------------------------------------------------
phase "starting a fresh validator (--reset)"
VALIDATOR_STARTED=1
"$VALIDATOR" start --reset
"$PY" tests/validator/send.py --rpc-url "$RPC_URL" fund --keypair "$WORK/payer.json" >&2
until (($(rpc getSlot '[{"commitment":"confirmed"}]' || echo 0) > 64)); do sleep 1; done
phase "chain at slot $(rpc getSlot '[{"commitment":"confirmed"}]')"

# --- ingest --------------------------------------------------------------------
METRICS_PORT="$(free_port)"
INGEST_RUN=0
start_ingest() {
  INGEST_RUN=$((INGEST_RUN + 1))
  KLINECAST_LOG="${KLINECAST_LOG:-info}" "$KLINECAST" ingest --source solana \
    --rpc-url "$RPC_URL" --rpc-ws-url "$WS_URL" --brokers "$BROKERS" --topic "$TOPIC" \
    --windows "$WINDOWS" --close-delay "${CLOSE_DELAY_S}s" --metrics-listen "127.0.0.1:$METRICS_PORT" \
    --rpc-rps 100 >"$WORK/ingest-$INGEST_RUN.log" 2>&1 &
  INGEST_PID=$!
  local i
  for i in $(seq 1 60); do
    if curl -s -m 1 "http://127.0.0.1:$METRICS_PORT/metrics" 2>/dev/null | grep -q '^klinecast_solana_connected 1'; then
      phase "ingest #$INGEST_RUN up (pid $INGEST_PID, topic $TOPIC, log $WORK/ingest-$INGEST_RUN.log)"
      return 0
    fi
    kill -0 "$INGEST_PID" 2>/dev/null || { tail -20 "$WORK/ingest-$INGEST_RUN.log" >&2; fail "ingest exited"; }
    sleep 0.5
  done
  fail "ingest #$INGEST_RUN did not connect in 30 s (log: $WORK/ingest-$INGEST_RUN.log)"
}
COUNTERS='^klinecast_(solana_(connected|reconnects_total|notifications_total|backfilled_transactions_total|duplicates_dropped_total|already_in_kafka_total|found_on_second_listing_total|failed_tx_skipped_total|unrecoverable_gaps_total|lost_transactions_total|chain_regressions_total|malformed_messages_total|rpc_errors_total)|ingest_late_trades_total)'
scrape() { # file: keep /metrics, print the counters that matter
  curl -s -m 2 "http://127.0.0.1:$METRICS_PORT/metrics" >"$1" || true
  echo "    ingest #$INGEST_RUN counters:" >&2
  grep -E "$COUNTERS" "$1" | sed 's/^/      /' >&2 || echo "      (no metrics)" >&2
}

# --- the sender ------------------------------------------------------------------
send_bg() { # phase-label [send options]: sends in the background until stop_sender
  local label=$1; shift
  "$PY" tests/validator/send.py --rpc-url "$RPC_URL" send --keypair "$WORK/payer.json" \
    --out "$WORK/sent-$label.jsonl" --phase "$label" --duration 100000 "$@" 2>>"$WORK/sender.log" &
  SENDER_PID=$!
}
stop_sender() {
  kill -TERM "$SENDER_PID" 2>/dev/null || true
  wait "$SENDER_PID" 2>/dev/null || true
  SENDER_PID=""
  tail -1 "$WORK/sender.log" | sed 's/^/    /' >&2
}

start_ingest

phase "(a) live, 20 s at 4 trades/s"
send_bg a
sleep 20
stop_sender

phase "(b) SIGKILL the validator, restart it on its ledger after 3 s, 20 s more"
send_bg b
sleep 2
"$VALIDATOR" kill
sleep 3
"$VALIDATOR" start
phase "    validator back (processed slot $(rpc getSlot '[{"commitment":"processed"}]'))"
sleep 20
stop_sender

phase "(c) SIGKILL ingest, 10 s without it, restart it, 20 s more"
send_bg c
sleep 2
scrape "$WORK/metrics-1.txt"
kill -KILL "$INGEST_PID"
wait "$INGEST_PID" 2>/dev/null || true
INGEST_PID=""
sleep 10
start_ingest
sleep 20
stop_sender

phase "(d) bursts of 3 trades of one coin, 20 % failing transactions, 15 s"
send_bg d --several-per-slot --fail-fraction 0.2
sleep 15
stop_sender

# --- every bar closes ----------------------------------------------------------
last_ts="$("$PY" -c 'import json,sys; print(max(json.loads(l)["ts"] for f in sys.argv[1:] for l in open(f)))' "$WORK"/sent-*.jsonl)"
close_at=$(((last_ts / 60 + 1) * 60 + CLOSE_DELAY_S + 3))
phase "waiting $((close_at - $(date +%s))) s for the last 1m bar to close"
"$PY" tests/validator/send.py --rpc-url "$RPC_URL" confirm --status "$WORK/status.json" \
  $(for f in "$WORK"/sent-{a,b,c,d}.jsonl; do echo --out "$f"; done) >&2
while (($(date +%s) < close_at)); do sleep 1; done
scrape "$WORK/metrics-2.txt"
kill -TERM "$INGEST_PID"
wait "$INGEST_PID" 2>/dev/null || true
INGEST_PID=""

# --- compare ---------------------------------------------------------------------
phase "reading the topic back"
"$KLINECAST" tail --brokers "$BROKERS" --topic "$TOPIC" --from-beginning --json --closed --idle-exit 5s >"$WORK/closed.jsonl" &
tail_closed=$!
"$KLINECAST" tail --brokers "$BROKERS" --topic "$TOPIC" --from-beginning --json --idle-exit 5s >"$WORK/all.jsonl"
wait "$tail_closed"
phase "comparing"
set +e
"$PY" tests/validator/reference.py --windows "$WINDOWS" --status "$WORK/status.json" \
  $(for f in "$WORK"/sent-{a,b,c,d}.jsonl; do echo --sent "$f"; done) \
  --closed "$WORK/closed.jsonl" --all "$WORK/all.jsonl" \
  --metrics "$WORK/metrics-1.txt" --metrics "$WORK/metrics-2.txt" --trades-out "$WORK/trades.jsonl" |
  tee "$WORK/comparison.txt"
rc=${PIPESTATUS[0]}
set -e
if ((rc == 0)); then phase "PASS"; else phase "FAIL (details: $WORK/comparison.txt)"; fi
exit "$rc"
