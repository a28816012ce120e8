#!/usr/bin/env bash
# Start a local single-node Kafka 4.x broker (KRaft, broker+controller in one JVM) on
# 127.0.0.1:$KAFKA_PORT, fetching it from Maven Central on first use. Idempotent: if a
# broker already answers on that port it is reused. Prints the bootstrap address
# (127.0.0.1:PORT) on stdout, everything else on stderr, so `bs=$(scripts/kafka-up.sh)`
# works. Env vars: see scripts/lib/kafka.sh. Stop it with scripts/kafka-down.sh.
set -euo pipefail
# shellcheck source=scripts/lib/kafka.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/kafka.sh"

START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"   # seconds until the broker must answer
mkdir -p "$KAFKA_DIR/logs"
# Serialise concurrent kafka-up runs for the same KAFKA_DIR (e.g. parallel test jobs).
exec 9>"$KAFKA_DIR/up.lock"
flock 9

kafka_check_java
kafka_ensure_lib   # the real "is it Kafka?" check below needs the jars too

# (1) A broker already answering on that port (ours or anyone's)? Reuse it.
pid="$(kafka_running_pid || true)"
if port_open "$KAFKA_PORT"; then
  if kafka_answers "$KAFKA_PORT"; then
    log "a Kafka broker already answers on 127.0.0.1:$KAFKA_PORT${pid:+ (pid $pid)}; reusing it"
    echo "127.0.0.1:$KAFKA_PORT"
    exit 0
  fi
  # Port taken but no answer: fine only if it is our own broker, still starting.
  [[ -n "$pid" ]] \
    || die "127.0.0.1:$KAFKA_PORT is in use by something that does not answer as a Kafka broker"
fi

if [[ -z "$pid" ]]; then
  rm -f "$KAFKA_PID_FILE"   # stale: its process is gone
  port_open "$KAFKA_CONTROLLER_PORT" \
    && die "controller port 127.0.0.1:$KAFKA_CONTROLLER_PORT is in use; set KAFKA_CONTROLLER_PORT"

  # (2) Config from the template: this broker's ports and state dir.
  sed -e "s|@PORT@|$KAFKA_PORT|g" -e "s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
      -e "s|@DATA_DIR@|$KAFKA_DIR|g" "$KAFKA_HOME/server.properties" >"$KAFKA_DIR/server.properties"
  # Settings of the caller (a test's TLS or SASL listeners): appended, so they override.
  if [[ -n "${KAFKA_EXTRA_CONFIG:-}" ]]; then
    [[ -r "$KAFKA_EXTRA_CONFIG" ]] || die "KAFKA_EXTRA_CONFIG=$KAFKA_EXTRA_CONFIG is not a readable file"
    { echo; echo "# --- from KAFKA_EXTRA_CONFIG ($KAFKA_EXTRA_CONFIG)"; cat "$KAFKA_EXTRA_CONFIG"; } \
      >>"$KAFKA_DIR/server.properties"
  fi

  # (3) KRaft needs its log dir formatted with a cluster id once; never reformat
  # (that would refuse anyway, and the data must survive restarts).
  if [[ ! -f "$KAFKA_DIR/data/meta.properties" ]]; then
    [[ -s "$KAFKA_DIR/cluster.id" ]] \
      || kafka_run_class kafka.tools.StorageTool random-uuid >"$KAFKA_DIR/cluster.id"
    log "formatting $KAFKA_DIR/data (cluster id $(cat "$KAFKA_DIR/cluster.id"))"
    # Split on blanks only: no globbing of values like SCRAM-SHA-512=[name=...].
    read -r -a format_args <<<"${KAFKA_FORMAT_ARGS:-}"
    kafka_run_class kafka.tools.StorageTool format -t "$(cat "$KAFKA_DIR/cluster.id")" \
      -c "$KAFKA_DIR/server.properties" "${format_args[@]}" >>"$KAFKA_DIR/kafka.out" 2>&1 \
      || { tail -n 20 "$KAFKA_DIR/kafka.out" >&2; die "formatting storage failed"; }
  fi

  # (4) Start detached: own session (setsid) so the caller's Ctrl-C/hangup doesn't kill
  # it; stdin/stdout/stderr redirected and every other inherited fd (our lock, a CI
  # runner's pipes) closed, so the broker never keeps a caller's pipe open and
  # `$(kafka-up.sh)` or `kafka-up.sh | tee` return.
  log "starting broker (state in $KAFKA_DIR)"
  echo "=== $(date -Is) kafka-up.sh starting the broker" >>"$KAFKA_DIR/kafka.out"
  (
    for fd in "/proc/$BASHPID/fd/"*; do
      fd="${fd##*/}"
      if (( fd > 2 )); then eval "exec $fd>&-"; fi
    done
    # shellcheck disable=SC2086  # heap opts are a list of words on purpose
    exec setsid "$JAVA" ${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m} -XX:+UseG1GC \
      -Djava.awt.headless=true -Dlog4j2.configurationFile="$KAFKA_HOME/log4j2.yaml" \
      -Dkafka.logs.dir="$KAFKA_DIR/logs" -cp "$KAFKA_LIB/*" \
      kafka.Kafka "$KAFKA_DIR/server.properties"
  ) </dev/null >>"$KAFKA_DIR/kafka.out" 2>&1 &
  pid=$!
  echo "$pid" >"$KAFKA_PID_FILE"
else
  log "broker pid $pid from $KAFKA_DIR is still starting; waiting for it"
fi

show_logs() {
  log "last lines of $KAFKA_DIR/logs/server.log and kafka.out:"
  tail -n 30 "$KAFKA_DIR/logs/server.log" >&2 2>/dev/null || true
  tail -n 10 "$KAFKA_DIR/kafka.out" >&2 2>/dev/null || true
}

# (5) Wait until a real metadata request succeeds (cheap TCP probe first, no JVM).
deadline=$((SECONDS + START_TIMEOUT))
until port_open "$KAFKA_PORT" && kafka_answers "$KAFKA_PORT"; do
  if ! kill -0 "$pid" 2>/dev/null; then
    rm -f "$KAFKA_PID_FILE"
    show_logs
    die "broker exited during startup"
  fi
  if (( SECONDS >= deadline )); then
    show_logs
    kill -TERM "$pid" 2>/dev/null || true   # don't leave a half-started broker behind
    rm -f "$KAFKA_PID_FILE"
    die "broker did not answer within ${START_TIMEOUT}s; stopped it"
  fi
  sleep 1
done
log "up: pid $pid, bootstrap 127.0.0.1:$KAFKA_PORT, log $KAFKA_DIR/logs/server.log"
echo "127.0.0.1:$KAFKA_PORT"
