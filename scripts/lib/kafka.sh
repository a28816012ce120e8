# shellcheck shell=bash
# Shared helpers for scripts/kafka-{up,down,tool}.sh. Source it; don't run it.
#
# Environment (all optional):
#   KAFKA_PORT             client port on 127.0.0.1            (default 9092)
#   KAFKA_CONTROLLER_PORT  KRaft controller port on 127.0.0.1  (default KAFKA_PORT+10000,
#                          so 9092 -> 19092 and 29092 -> 39092 never collide)
#   KAFKA_DIR              state dir: config, data, logs, pid  (default <repo>/.kafka/<port>)
#   KAFKA_HEAP_OPTS        broker heap                         (default -Xmx512m -Xms256m)
#   KAFKA_TOOL_HEAP        heap of CLI tools (kafka-tool.sh)   (default -Xmx512m)
#   KAFKA_START_TIMEOUT    seconds kafka-up.sh waits for the broker to answer (default 90)
#   KAFKA_MVN_OPTS         extra mvn args for the jar fetch, e.g. -Dmaven.repo.local=...
#   KAFKA_EXTRA_CONFIG     a file of broker properties appended to the generated
#                          server.properties (later lines win: e.g. more `listeners`, TLS, SASL)
#   KAFKA_FORMAT_ARGS      extra arguments of the one-time storage format, split on blanks,
#                          e.g. --add-scram SCRAM-SHA-512=[name=alice,password=secret]
#   JAVA                   java binary (default: java on PATH; Kafka 4 needs Java 17+)

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
KAFKA_HOME="$REPO_ROOT/kafka"      # pom.xml, templates, and lib/ once fetched
KAFKA_LIB="$KAFKA_HOME/lib"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 10000))}"
KAFKA_DIR="${KAFKA_DIR:-$REPO_ROOT/.kafka/$KAFKA_PORT}"
KAFKA_PID_FILE="$KAFKA_DIR/kafka.pid"
JAVA="${JAVA:-java}"

log() { echo "kafka[$KAFKA_PORT]: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# kafka/lib is "complete" when it holds the marker written after a successful copy for
# the current pom.xml; a changed pom (e.g. a version bump) therefore triggers a re-fetch.
kafka_lib_stamp() { echo ".complete-$(sha256sum "$KAFKA_HOME/pom.xml" | cut -c1-16)"; }

# Copy the broker, the tools and all runtime deps from Maven Central into kafka/lib.
# Copies into a temp dir and renames it, under a lock, so that an interrupted or
# concurrent fetch never leaves (or sees) a half-filled lib/.
kafka_ensure_lib() {
  local stamp tmp mvnlog
  stamp="$(kafka_lib_stamp)"
  [[ -f "$KAFKA_LIB/$stamp" ]] && return 0
  command -v mvn >/dev/null || die "mvn not found; it is needed once to fetch Kafka into $KAFKA_LIB"
  exec 8>"$KAFKA_HOME/.fetch.lock"
  flock 8
  if [[ ! -f "$KAFKA_LIB/$stamp" ]]; then
    log "fetching Kafka jars from Maven Central into $KAFKA_LIB (first run only)..."
    tmp="$KAFKA_HOME/lib.tmp.$$"
    rm -rf "$tmp"
    # Output kept aside and shown only on failure (-q still prints stray ANSI codes).
    mvnlog="$(mktemp)"
    # shellcheck disable=SC2086  # KAFKA_MVN_OPTS is a list of words on purpose
    mvn -B -q -f "$KAFKA_HOME/pom.xml" ${KAFKA_MVN_OPTS:-} \
      dependency:copy-dependencies -Dkafka.lib.dir="$tmp" >"$mvnlog" 2>&1 \
      || { cat "$mvnlog" >&2; rm -rf "$tmp" "$mvnlog"; die "mvn could not fetch the Kafka jars"; }
    rm -f "$mvnlog"
    touch "$tmp/$stamp"
    rm -rf "$KAFKA_LIB"
    mv "$tmp" "$KAFKA_LIB"
    log "fetched $(find "$KAFKA_LIB" -name '*.jar' | wc -l) jars ($(du -sh "$KAFKA_LIB" | cut -f1))"
  fi
  exec 8>&-
}

# Fail early with a clear message instead of an UnsupportedClassVersionError.
kafka_check_java() {
  local v
  v="$("$JAVA" -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2}')"
  [[ -n "$v" ]] || die "'$JAVA' not found; Kafka 4 needs Java 17+"
  (( ${v%%.*} >= 17 )) || die "Java $v found, Kafka 4 needs Java 17+"
}

# Run a Kafka class with the fetched classpath. Tools log WARN+ to stderr (see
# kafka/log4j2.yaml) so that their stdout carries only their real output.
kafka_run_class() {
  local main="$1"; shift
  # shellcheck disable=SC2086  # heap opts are a list of words on purpose
  "$JAVA" ${KAFKA_TOOL_HEAP:--Xmx512m} \
    -Dlog4j2.configurationFile="$KAFKA_HOME/log4j2.yaml" \
    -Dkafka.log.appender=Stderr -Dkafka.log.level=WARN \
    -cp "$KAFKA_LIB/*" "$main" "$@"
}

# Cheap check, no JVM: does anything accept TCP connections on host:port?
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Real check: a metadata request (list topics) succeeds against 127.0.0.1:$1.
# Short client timeouts so that a non-Kafka server on that port fails fast.
kafka_answers() {
  local cfg rc=0
  cfg="$(mktemp)"
  printf 'request.timeout.ms=5000\ndefault.api.timeout.ms=10000\n' >"$cfg"
  kafka_run_class org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$1" \
    --command-config "$cfg" --list >/dev/null 2>&1 || rc=$?
  rm -f "$cfg"
  return $rc
}

# Pid of the broker this KAFKA_DIR started, if it is still alive; else nothing.
# Checks the command line too, so a recycled pid of some other process is never used.
kafka_running_pid() {
  local pid
  [[ -f "$KAFKA_PID_FILE" ]] || return 1
  pid="$(cat "$KAFKA_PID_FILE")"
  [[ -n "$pid" ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null \
    | grep -qF "kafka.Kafka $KAFKA_DIR/server.properties" || return 1
  echo "$pid"
}
