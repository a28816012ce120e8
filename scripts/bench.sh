#!/usr/bin/env bash
# Runs the benchmarks in bench/ (SPEC §7) against the local Kafka broker and
# writes bench/results/REPORT.md: the machine, the exact commands, each
# benchmark's tables, and every SPEC §7 row marked met / not met.
#
#   scripts/bench.sh              # every [[bench]] target in Cargo.toml
#   scripts/bench.sh ingest       # only the named ones; REPORT.md keeps the
#                                 # latest results of the others
#   scripts/bench.sh --report-only  # rewrite REPORT.md from the results there are
#   scripts/bench.sh peer         # klinecast next to Centrifugo (built here first)
#
# Each benchmark writes bench/results/<name>.json (numbers), <name>.md (its
# section of the report) and <name>.rows.md (its rows of the SPEC summary).
# A new benchmark only needs a [[bench]] entry and those three files.
# bench/plot.py then draws PNGs from the JSON (matplotlib, installed from
# PyPI into the venv target/bench-venv on first use).
#
# Measurements are sensitive to other work on the machine: before each
# benchmark this waits until the 1-minute load average is below
# KLINECAST_BENCH_MAX_LOAD (default 1.5), for at most
# KLINECAST_BENCH_LOAD_WAIT seconds over the whole run (default 1500; 0 = do
# not wait), then runs anyway. The load is recorded either way.
set -euo pipefail
# shellcheck source=scripts/lib/setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/setup.sh"
cd "$REPO_ROOT"

RESULTS=bench/results
REPORT="$RESULTS/REPORT.md"

# SPEC §7, in order: "<row name>|<bar>". A benchmark covers a row by writing a
# line starting with "| <row name> |" into its <name>.rows.md; rows shown by
# tests rather than benchmarks are in the hand-written tests.rows.md.
SPEC_ROWS=(
  "decode + aggregate, one core|≥ 20 M events/s, and ≥ 10× a JSON + HashMap baseline in the same run"
  "Kafka produce of bars|≥ 90 % of Kafka's own producer-performance tool, same broker, size, acks, same run"
  "event → WebSocket client latency|from each update's intended time (open loop, no correction): p99 within 1 ms (shared) / 2 ms (per-client) of Kafka's own end-to-end latency tool at 10 clients, within 5 ms for 100 per-client clients"
  "per-client mode|≥ 2,000 concurrent clients, each its own consumer, no message lost"
  "shared mode|≥ 50,000 concurrent clients at 1 push/s, ≤ 4 KiB user-space memory per connection, ≥ 1 M frames per server CPU-second"
  "bad input|fuzzed decoders and parsers, abusive clients: no crash, memory bounded"
  "broker outage of 30 s|no closing update lost or duplicated; clients stay connected"
  "against Centrifugo|≤ 1/3 of its server CPU per delivered frame (binary), ≤ 1/2 (JSON), ≤ 1/10 of its memory per connection, 100 % delivery at 10,000 clients × 10 updates/s with p99 ≤ 100 ms"
  "fan-out vs the floor|CPU per delivered frame ≤ 1.15× the raw-send floor (binary), ≤ 1.3× (JSON); one update to 10,000 clients on one shard: p99 ≤ 1.2× the floor's"
  "fan-out|one update to 10,000 clients on one shard: p99 ≤ 50 ms; gateway + WebSocket hop ≤ 0.5 ms p99"
)

# Centrifugo, the peer the `peer` benchmark compares with, built from the Go
# module proxy into target/peer/ (its GOPATH, module and build caches stay
# there; -modcacherw so `cargo clean` can delete them). The benchmark finds it
# through KLINECAST_BENCH_CENTRIFUGO.
CENTRIFUGO_VERSION=v6.9.1
setup_centrifugo() {
  local dir="$REPO_ROOT/target/peer"
  local bin="$dir/bin/centrifugo"
  # The module version is in the binary's build info (`centrifugo version`
  # prints v0.0.0 for a `go install` build).
  if [[ ! -x "$bin" ]] || ! go version -m "$bin" 2>/dev/null | grep -qE "^\s+mod\s+github.com/centrifugal/centrifugo/v6\s+$CENTRIFUGO_VERSION\s"; then
    command -v go >/dev/null || fail "the peer benchmark builds Centrifugo with Go: install Go (1.24 or later)"
    say "building Centrifugo $CENTRIFUGO_VERSION (go install, into target/peer; a few minutes the first time)"
    mkdir -p "$dir"
    GOPATH="$dir/gopath" GOBIN="$dir/bin" GOCACHE="$dir/gocache" GOFLAGS=-modcacherw GOTOOLCHAIN=local \
      go install "github.com/centrifugal/centrifugo/v6@$CENTRIFUGO_VERSION" >&2
  fi
  export KLINECAST_BENCH_CENTRIFUGO="$bin"
}

# The [[bench]] targets declared in Cargo.toml, in order.
all_benches() {
  awk '/^\[\[bench\]\]/ { inbench = 1; next } /^\[/ { inbench = 0 }
       inbench && /^name *=/ { gsub(/.*= *"|".*/, ""); print }' Cargo.toml
}

mapfile -t known < <(all_benches)
report_only=false
if [[ "${1:-}" == "--report-only" ]]; then
  report_only=true
  benches=()
elif (($# == 0)); then
  benches=("${known[@]}")
else
  for name in "$@"; do
    [[ " ${known[*]} " == *" $name "* ]] || fail "unknown bench '$name' (known: ${known[*]})"
  done
  # In Cargo.toml's order, whatever the order asked: `peer` reads the latest
  # `latency` result for its fan-out row, so `latency` goes first.
  benches=()
  for name in "${known[@]}"; do
    [[ " $* " == *" $name "* ]] && benches+=("$name")
  done
fi

mkdir -p "$RESULTS"
if ! $report_only; then
  setup_check_tools
  setup_kafka
  prune_old_topics klinecast-bench-
  if [[ " ${benches[*]} " == *" peer "* ]]; then setup_centrifugo; fi
fi

max_load="${KLINECAST_BENCH_MAX_LOAD:-1.5}"
wait_budget_s="${KLINECAST_BENCH_LOAD_WAIT:-1500}"
# Waits (within what is left of the budget) for the 1-minute load average to
# drop below $max_load; says how long it waited and what the load was.
wait_for_quiet() {
  local started=$SECONDS load
  while :; do
    load="$(cut -d ' ' -f 1 /proc/loadavg)"
    if awk -v l="$load" -v m="$max_load" 'BEGIN { exit !(l < m) }'; then break; fi
    if ((wait_budget_s <= 0)); then
      say "load $load ≥ $max_load and the wait budget is used up: measuring anyway"
      break
    fi
    ((started == SECONDS)) && say "load $load ≥ $max_load: waiting (up to ${wait_budget_s}s more) for other work to finish"
    sleep 10
    wait_budget_s=$((wait_budget_s - 10))
  done
  if ((SECONDS > started)); then
    loads+=("waited $((SECONDS - started)) s for load < $max_load before $1: $(uptime)")
  fi
}

# Draws the PNGs from whatever results there are (matplotlib in a venv).
plot() {
  local venv="$REPO_ROOT/target/bench-venv"
  if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import matplotlib' 2>/dev/null; then
    say "installing matplotlib into target/bench-venv (pip)"
    if ! { python3 -m venv "$venv" && "$venv/bin/pip" install -q matplotlib >&2; }; then
      say "could not install matplotlib: no plots this time"
      return 0
    fi
  fi
  "$venv/bin/python" bench/plot.py "$RESULTS" || say "bench/plot.py failed: plots not updated"
}

kafka_version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' kafka/pom.xml | head -n 1)"
started="$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
loads=("start: $(uptime)")
if ((${#benches[@]} > 0)); then
  # Build first, so compiling is not part of any measurement's load.
  say "building the benchmarks (release)"
  build_args=()
  for name in "${benches[@]}"; do build_args+=(--bench "$name"); done
  cargo bench --locked --no-run "${build_args[@]}"
fi
for name in "${benches[@]+"${benches[@]}"}"; do
  wait_for_quiet "$name"
  loads+=("before $name: $(uptime)")
  say "cargo bench --bench $name"
  cargo bench --locked --bench "$name"
  loads+=("after $name: $(uptime)")
done
plot

# --- REPORT.md -------------------------------------------------------------
# When a benchmark ran (unix seconds): the time its JSON records, else the
# commit that last changed its section, else the file's own time. A checkout
# rewrites file times, so those are the last resort.
measured_at() {
  local name="$1" at=""
  at="$(python3 -c 'import json, sys; print(int(json.load(open(sys.argv[1])).get("measured_at_unix_s", 0)))' "$RESULTS/$name.json" 2>/dev/null || true)"
  if [[ -z "$at" || "$at" == 0 ]] && git -C "$REPO_ROOT" diff --quiet -- "$RESULTS/$name.md" 2>/dev/null; then
    at="$(git -C "$REPO_ROOT" log -1 --format=%ct -- "$RESULTS/$name.md" 2>/dev/null || true)"
  fi
  [[ -n "$at" && "$at" != 0 ]] || at="$(date -r "$RESULTS/$name.md" +%s)"
  echo "$at"
}

row_for() {
  local name="$1" bar="$2" line=""
  line="$(cat "$RESULTS"/*.rows.md 2>/dev/null | grep -F -m 1 "| $name |" || true)"
  if [[ -n "$line" ]]; then
    echo "$line"
  else
    echo "| $name | $bar | not measured yet | | |"
  fi
}

{
  echo "# klinecast benchmarks (SPEC §7)"
  echo
  echo "Written by \`scripts/bench.sh $*\` on $started. Each section below says when it was measured;"
  echo "sections of benchmarks not run this time are kept from their latest run."
  echo
  echo "## Machine"
  echo
  echo "- CPU: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1), $(nproc) cores online"
  echo "- memory: $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
  echo "- kernel: $(uname -sr)"
  echo "- $(rustc --version), $(cargo --version)"
  echo "- Kafka $kafka_version (KRaft, single broker on 127.0.0.1, \`scripts/kafka-up.sh\`), $(java -version 2>&1 | head -n 1)"
  echo "- load (\`uptime\`) — other work may share this machine; the benches also record"
  echo "  \`/proc/loadavg\` at their start and end:"
  for load in "${loads[@]}"; do
    echo "  - $load"
  done
  echo
  echo "## Commands"
  echo
  echo "One command reproduces everything: \`scripts/bench.sh\` (or \`scripts/bench.sh <name>...\` for some"
  echo "benchmarks; the others' latest results stay in this report). It waits for the 1-minute load average to drop"
  echo "below ${max_load} (at most ${KLINECAST_BENCH_LOAD_WAIT:-1500} s in all) before each benchmark. Each section below"
  echo "comes from its own command (the Kafka tool's and the servers' command lines are in its section):"
  echo
  echo '```sh'
  echo "scripts/kafka-up.sh"
  for name in "${known[@]}"; do
    if [[ -f "$RESULTS/$name.md" ]]; then echo "cargo bench --locked --bench $name"; fi
  done
  echo '```'
  echo
  echo "## SPEC §7 summary"
  echo
  echo "| SPEC §7 row | bar | measured | baseline (same run) | verdict |"
  echo "| --- | --- | --- | --- | --- |"
  for row in "${SPEC_ROWS[@]}"; do
    row_for "${row%%|*}" "${row#*|}"
  done
  for name in "${known[@]}"; do
    section="$RESULTS/$name.md"
    [[ -f "$section" ]] || continue
    echo
    sed -n '1p' "$section"
    echo
    echo "_Measured $(date -u -d "@$(measured_at "$name")" '+%Y-%m-%d %H:%M:%S UTC'); numbers in \`$RESULTS/$name.json\`._"
    sed -n '2,$p' "$section"
  done
  pngs=()
  for png in latency.png fanout-memory.png fanout-cpu.png; do
    [[ -f "$RESULTS/$png" ]] && pngs+=("$png")
  done
  if ((${#pngs[@]} > 0)); then
    echo
    echo "## Plots"
    echo
    echo "Drawn by \`bench/plot.py\` from the JSON results:"
    echo
    for png in "${pngs[@]}"; do
      echo "![$png]($png)"
    done
  fi
  if [[ -f "$RESULTS/NOTES.md" ]]; then
    echo
    cat "$RESULTS/NOTES.md"
  fi
} >"$REPORT"
say "wrote $REPORT"
