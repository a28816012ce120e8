#!/usr/bin/env bash
# Stop the broker that scripts/kafka-up.sh started for this KAFKA_PORT/KAFKA_DIR (found
# via $KAFKA_DIR/kafka.pid; a broker started some other way is never touched).
# SIGTERM lets it shut down cleanly (flush, close logs); SIGKILL after 30 s.
set -euo pipefail
# shellcheck source=scripts/lib/kafka.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/kafka.sh"

if ! pid="$(kafka_running_pid)"; then
  log "no broker started from $KAFKA_DIR is running"
  rm -f "$KAFKA_PID_FILE"
  exit 0
fi
log "stopping broker pid $pid"
kill -TERM "$pid" 2>/dev/null || true
for _ in $(seq 30); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 1
done
if kill -0 "$pid" 2>/dev/null; then
  log "still running after 30 s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
fi
rm -f "$KAFKA_PID_FILE"
log "stopped"
