#!/usr/bin/env bash
# Starts Kafka and a fresh `klinecast serve` on a free topic and port, drives
# it with klinecast-loadgen, samples the server's memory and threads, and
# prints the loadgen summary plus those samples as one JSON line.
#
#   scripts/loadgen.sh [--server "serve flags"] [loadgen flags...]
#   scripts/loadgen.sh --server "--mock-mints 2 --mock-rate 100" --clients 500 --duration 60s
#
# Loopback only; the run is bounded by loadgen's --ramp + --duration.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/setup.sh"
cd "$REPO_ROOT"

server_flags="--mock-mints 2 --mock-rate 100"
if [[ "${1:-}" == "--server" ]]; then
  server_flags="$2"
  shift 2
fi
setup_check_tools
setup_kafka
say "building (release)"
cargo build --release --locked --bins >&2

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
topic="loadgen-$$-$(date +%s)"
log="target/loadgen-$topic.log"
# shellcheck disable=SC2086  # server flags are a list of words on purpose
target/release/klinecast serve --topic "$topic" --listen "127.0.0.1:$port" $server_flags 2>"$log" &
server=$!
trap 'kill -TERM $server 2>/dev/null || true; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
kill -0 "$server" || fail "server did not start; see $log"

sample() { # rss_kib threads
  awk '/^VmRSS/ {r=$2} /^Threads/ {t=$2} END {print r, t}' "/proc/$server/status"
}
read -r rss0 threads0 < <(sample)
summary="target/loadgen-$topic.json"
target/release/klinecast-loadgen --target "127.0.0.1:$port" --summary "$summary" "$@" >/dev/null &
loadgen=$!
peak_rss=$rss0; peak_threads=$threads0
while kill -0 "$loadgen" 2>/dev/null; do
  read -r rss threads < <(sample)
  (( rss > peak_rss )) && peak_rss=$rss
  (( threads > peak_threads )) && peak_threads=$threads
  sleep 1
done
wait "$loadgen"
metrics=$(curl -fs "http://127.0.0.1:$port/metrics" | grep -E '^klinecast_(bars_sent|ws_frames_sent|kafka_consumers|websockets|connections) ' | tr '\n' ' ')
python3 - "$summary" "$rss0" "$peak_rss" "$threads0" "$peak_threads" "$metrics" "$server_flags" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
rss0, peak, t0, tpeak = map(int, sys.argv[2:6])
clients = max(s["connected"], 1)
s["server"] = {
    "flags": sys.argv[7],
    "rss_kib_idle": rss0, "rss_kib_peak": peak,
    "rss_kib_per_client": round((peak - rss0) / clients, 1),
    "threads_idle": t0, "threads_peak": tpeak,
    "metrics": sys.argv[6].strip(),
}
print(json.dumps(s))
PY
