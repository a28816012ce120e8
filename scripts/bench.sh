#!/usr/bin/env bash
# Runs the benchmarks in bench/ (SPEC §7) against the local Kafka broker and
# writes bench/results/REPORT.md: the machine, the exact commands, each
# benchmark's tables, and every SPEC §7 row marked met / not met.
#
#   scripts/bench.sh              # every [[bench]] target in Cargo.toml
#   scripts/bench.sh ingest       # only the named ones; REPORT.md keeps the
#                                 # latest results of the others
#   scripts/bench.sh --report-only  # rewrite REPORT.md from the results there are
#
# Each benchmark writes bench/results/<name>.json (numbers), <name>.md (its
# section of the report) and <name>.rows.md (its rows of the SPEC summary).
# A new benchmark only needs a [[bench]] entry and those three files.
set -euo pipefail
# shellcheck source=scripts/lib/setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/setup.sh"
cd "$REPO_ROOT"

RESULTS=bench/results
REPORT="$RESULTS/REPORT.md"

# SPEC §7, in order: "<row name>|<bar>". A benchmark covers a row by writing a
# line starting with "| <row name> |" into its <name>.rows.md.
SPEC_ROWS=(
  "decode + aggregate, one core|≥ 20 M events/s, and ≥ 10× a JSON + HashMap baseline in the same run"
  "Kafka produce of bars|≥ 90 % of Kafka's own producer-performance tool, same broker, size, acks, same run"
  "event → WebSocket client latency|p99 within 1 ms (shared) / 2 ms (per-client) of Kafka's own end-to-end latency tool"
  "per-client mode|≥ 2,000 concurrent clients, each its own consumer, no message lost"
  "shared mode|≥ 50,000 concurrent clients at 1 push/s, ≤ 4 KiB user-space memory per connection, ≥ 1 M frames per server CPU-second"
  "bad input|fuzzed decoders and parsers, abusive clients: no crash, memory bounded"
  "broker outage of 30 s|no closing update lost or duplicated; clients stay connected"
)

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
  benches=("$@")
  for name in "${benches[@]}"; do
    [[ " ${known[*]} " == *" $name "* ]] || fail "unknown bench '$name' (known: ${known[*]})"
  done
fi

mkdir -p "$RESULTS"
if ! $report_only; then
  setup_check_tools
  setup_kafka
fi

kafka_version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' kafka/pom.xml | head -n 1)"
started="$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
loads=("start: $(uptime)")
for name in "${benches[@]+"${benches[@]}"}"; do
  say "cargo bench --bench $name"
  cargo bench --locked --bench "$name"
  loads+=("after $name: $(uptime)")
done

# --- REPORT.md -------------------------------------------------------------
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
  echo "Each section below comes from its own command (the Kafka tool's command lines are in its section):"
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
    echo "_Measured $(date -u -r "$section" '+%Y-%m-%d %H:%M:%S UTC'); numbers in \`$RESULTS/$name.json\`._"
    sed -n '2,$p' "$section"
  done
  if [[ -f "$RESULTS/NOTES.md" ]]; then
    echo
    cat "$RESULTS/NOTES.md"
  fi
} >"$REPORT"
say "wrote $REPORT"
