#!/usr/bin/env bash
# A real Solana node on loopback: Agave's solana-test-validator, built once
# from crates.io and cached outside the clone (a fresh clone on the same
# machine reuses it), with a tiny sBPF program loaded at pump.fun's and
# PumpSwap's program ids that logs its instruction data (`sol_log_data`), so
# a transaction carrying a recorded event's bytes produces a genuine
# `Program data:` line.
#
#   scripts/solana-validator.sh build            build (about 40 min on 2 cores) and assemble the program
#   scripts/solana-validator.sh start [--reset]  start on 127.0.0.1:8899 (ws 8900), wait until healthy
#   scripts/solana-validator.sh stop             stop it (SIGTERM; `kill` for SIGKILL)
#   scripts/solana-validator.sh kill             SIGKILL it (the ledger stays)
#   scripts/solana-validator.sh path             print the binary's path (exit 1 if it or the program is not built)
#   scripts/solana-validator.sh assemble         (re)assemble only the program
#
# Environment: KLINECAST_VALIDATOR_CACHE (default ~/.cache/klinecast/agave-3.1.12),
# KLINECAST_VALIDATOR_LEDGER (default $cache/ledger), KLINECAST_VALIDATOR_RPC_PORT (8899).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/setup.sh"

AGAVE_VERSION=3.1.12
SBPF_VERSION=0.3.3
CACHE="${KLINECAST_VALIDATOR_CACHE:-$HOME/.cache/klinecast/agave-$AGAVE_VERSION}"
LEDGER="${KLINECAST_VALIDATOR_LEDGER:-$CACHE/ledger}"
RPC_PORT="${KLINECAST_VALIDATOR_RPC_PORT:-8899}"
BIN="$CACHE/bin/solana-test-validator"
PROGRAM="$CACHE/log_data.so"
PIDFILE="$CACHE/validator.pid"
PUMP_FUN=6EF8rrecthR5Dkzon8Nwu78hRvfCKubJ14M5uBEwF6P
PUMP_SWAP=pAMMBay6oceH9fJKBRHGP5D4bD4sWpmSwMn52FMfXEA

build() {
  mkdir -p "$CACHE"
  if [[ ! -x "$BIN" ]]; then
    setup_apt libudev-dev clang libclang-dev protobuf-compiler pkg-config libssl-dev
    say "building solana-test-validator $AGAVE_VERSION into $CACHE (about 40 minutes on 2 cores, once)"
    CARGO_TARGET_DIR="$CACHE/target" cargo install agave-validator --version "$AGAVE_VERSION" \
      --locked --bin solana-test-validator --root "$CACHE" >&2
  fi
  [[ -f "$PROGRAM" ]] || assemble
}

# The program: when called with no accounts, the loader's input buffer holds
# the number of accounts (u64, 0) at 0, the instruction data's length at 8 and
# the data at 16. It logs that data as one `Program data:` line
# (sol_log_data takes a slice of byte slices) and returns 0. With any account
# passed it returns an error (custom error 1): a failed transaction on demand.
# Assembled by the `sbpf` crate's CLI for SBPF v0 (`sbpf build --arch v0
# --input FILE.s --deploy-dir DIR` writes DIR/FILE.so; the syscall becomes a
# dynamic relocation that the loader resolves).
assemble() {
  local work="$CACHE/sbpf-work"
  if ! command -v sbpf >/dev/null && [[ ! -x "$CACHE/bin/sbpf" ]]; then
    say "installing the sbpf assembler $SBPF_VERSION"
    CARGO_TARGET_DIR="$CACHE/sbpf-target" cargo install sbpf --version "$SBPF_VERSION" --locked --root "$CACHE" >&2
  fi
  local sbpf="$CACHE/bin/sbpf"
  [[ -x "$sbpf" ]] || sbpf="$(command -v sbpf)"
  rm -rf "$work"; mkdir -p "$work"
  cat >"$work/log_data.s" <<'ASM'
.globl entrypoint
entrypoint:
  ldxdw r2, [r1+0]        # number of accounts
  jne r2, 0, fail         # any account: fail on purpose
  ldxdw r3, [r1+8]        # data length
  mov64 r4, r1
  add64 r4, 16            # data pointer
  stxdw [r10-16], r4      # one slice {ptr, len} on the stack
  stxdw [r10-8], r3
  mov64 r1, r10
  sub64 r1, 16            # r1 = the slice array, r2 = its length
  mov64 r2, 1
  call sol_log_data
  mov64 r0, 0
  exit
fail:
  mov64 r0, 1
  exit
ASM
  "$sbpf" build --arch v0 --input "$work/log_data.s" --deploy-dir "$work/deploy" >&2
  cp "$work/deploy/log_data.so" "$PROGRAM.tmp"
  mv "$PROGRAM.tmp" "$PROGRAM"
  say "program assembled: $PROGRAM"
}

start() {
  [[ -x "$BIN" && -f "$PROGRAM" ]] || fail "not built: run scripts/solana-validator.sh build"
  local reset=()
  [[ "${1:-}" == "--reset" ]] && reset=(--reset)
  stop_quietly
  mkdir -p "$LEDGER"
  local args=(--ledger "$LEDGER" --bind-address 127.0.0.1 --rpc-port "$RPC_PORT" --quiet
    --bpf-program "$PUMP_FUN" "$PROGRAM" --bpf-program "$PUMP_SWAP" "$PROGRAM")
  local acct
  for acct in "$CACHE"/accounts/*.json; do
    [[ -f "$acct" ]] || continue
    args+=(--account "$(basename "$acct" .json)" "$acct")
  done
  "$BIN" "${args[@]}" "${reset[@]}" >"$CACHE/validator.log" 2>&1 &
  echo $! >"$PIDFILE"
  local i
  for i in $(seq 1 120); do
    if curl -s -m 1 -H 'content-type: application/json' \
      -d '{"jsonrpc":"2.0","id":1,"method":"getHealth"}' "http://127.0.0.1:$RPC_PORT" | grep -q '"ok"'; then
      say "validator up on 127.0.0.1:$RPC_PORT (pid $(cat "$PIDFILE"), ledger $LEDGER)"
      return 0
    fi
    kill -0 "$(cat "$PIDFILE")" 2>/dev/null || { tail -20 "$CACHE/validator.log" >&2; fail "validator exited"; }
    sleep 0.5
  done
  fail "validator did not answer getHealth in 60 s (log: $CACHE/validator.log)"
}

stop_quietly() {
  [[ -f "$PIDFILE" ]] || return 0
  local pid; pid="$(cat "$PIDFILE")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "-${1:-TERM}" "$pid" 2>/dev/null || true
    local i
    for i in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PIDFILE"
}

case "${1:-}" in
  build) build ;;
  start) shift; start "$@" ;;
  stop) stop_quietly TERM ;;
  kill) stop_quietly KILL ;;
  assemble) mkdir -p "$CACHE"; assemble ;;
  path) [[ -x "$BIN" && -f "$PROGRAM" ]] && echo "$BIN" ;;
  *) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
