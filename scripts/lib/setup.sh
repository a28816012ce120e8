# shellcheck shell=bash
# Set-up shared by scripts/run.sh and scripts/test.sh: checks the toolchains
# and installs what the project needs that a fresh machine lacks. Idempotent.
# Source it; don't run it.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

say() { echo "==> $*" >&2; }
fail() { echo "error: $*" >&2; exit 1; }

# Tools the build needs. Rust, Java 17, Maven, Node and a C toolchain come
# with the machine; the script says which is missing instead of guessing.
setup_check_tools() {
  local missing=()
  for tool in cargo java mvn node npm make gcc; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  ((${#missing[@]} == 0)) || fail "missing tools: ${missing[*]} (Rust via rustup, OpenJDK 17, Maven, Node.js 20, make and gcc)"
}

# Debian packages, installed only when absent (needs root and apt).
setup_apt() {
  local wanted=() pkg
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || wanted+=("$pkg")
  done
  ((${#wanted[@]} == 0)) && return 0
  command -v apt-get >/dev/null || fail "please install: ${wanted[*]}"
  say "installing ${wanted[*]} (apt)"
  local sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${wanted[@]}" >/dev/null
}

# Python packages of the tests, pinned, for the python3 on PATH (the one the
# tests run): installed when missing or of another version.
setup_pip() {
  local wanted=() spec
  for spec in "$@"; do
    python3 -c "import importlib.metadata as m, sys; sys.exit(m.version('${spec%%==*}') != '${spec#*==}')" \
      2>/dev/null || wanted+=("$spec")
  done
  ((${#wanted[@]} == 0)) && return 0
  say "installing ${wanted[*]} (pip)"
  python3 -m pip install -q --disable-pip-version-check "${wanted[@]}" >&2 \
    || python3 -m pip install -q --disable-pip-version-check --break-system-packages "${wanted[@]}" >&2
}

# The web client's npm packages (lockfile-exact).
setup_web() {
  [[ -f "$REPO_ROOT/static/package-lock.json" ]] || return 0
  if [[ ! -d "$REPO_ROOT/static/node_modules" || "$REPO_ROOT/static/package-lock.json" -nt "$REPO_ROOT/static/node_modules" ]]; then
    say "installing web assets (npm ci in static/)"
    (cd "$REPO_ROOT/static" && npm ci --no-audit --no-fund --loglevel=error >&2) && touch "$REPO_ROOT/static/node_modules"
  fi
}

# The local broker (fetched from Maven Central on first use).
setup_kafka() {
  say "starting Kafka (scripts/kafka-up.sh)"
  "$REPO_ROOT/scripts/kafka-up.sh" >/dev/null
}

# Deletes topics an earlier test or benchmark run left on the local broker:
# names starting with one of the given prefixes whose embedded time (the
# first number of 10 or more digits: unix seconds, or nanoseconds) is over
# an hour old. Each run creates fresh topics; without this the broker's
# start-up slows down as thousands of partitions pile up. Never fatal.
prune_old_topics() {
  local brokers="127.0.0.1:${KAFKA_PORT:-9092}" cutoff old prefixes
  prefixes="$(IFS='|'; echo "$*")"
  cutoff=$(($(date +%s) - 3600))
  old="$("$REPO_ROOT/scripts/kafka-tool.sh" topics --bootstrap-server "$brokers" --list 2>/dev/null |
    awk -v cutoff="$cutoff" -v prefixes="^($prefixes)" '
      $0 ~ prefixes {
        n = split($0, parts, "-")
        for (i = 1; i <= n; i++) if (parts[i] ~ /^[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]+$/) { if (substr(parts[i], 1, 10) + 0 < cutoff) print $0; break }
      }' | paste -sd '|')" || return 0
  [[ -n "$old" ]] || return 0
  say "deleting $(tr '|' '\n' <<<"$old" | wc -l) topics of earlier runs (older than an hour)"
  "$REPO_ROOT/scripts/kafka-tool.sh" topics --bootstrap-server "$brokers" --delete --topic "^($old)\$" >/dev/null 2>&1 ||
    say "could not delete them (continuing)"
}
