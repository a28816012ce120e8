#!/usr/bin/env bash
# Run a Kafka CLI tool with the classpath fetched into kafka/lib (fetched if missing).
#   scripts/kafka-tool.sh <short-name | fully.qualified.MainClass> [args...]
# e.g. scripts/kafka-tool.sh topics --bootstrap-server 127.0.0.1:9092 --list
# Tools log warnings to stderr; stdout is only the tool's output.
set -euo pipefail
# shellcheck source=scripts/lib/kafka.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/kafka.sh"

if [[ $# -lt 1 ]]; then
  cat >&2 <<'USAGE'
usage: scripts/kafka-tool.sh <tool> [args...]   (run a tool without args for its help)
  topics            org.apache.kafka.tools.TopicCommand
  producer-perf     org.apache.kafka.tools.ProducerPerformance
  consumer-perf     org.apache.kafka.tools.ConsumerPerformance
  e2e-latency       org.apache.kafka.tools.EndToEndLatency
  console-consumer  org.apache.kafka.tools.consumer.ConsoleConsumer
  console-producer  org.apache.kafka.tools.ConsoleProducer
  consumer-groups   org.apache.kafka.tools.consumer.group.ConsumerGroupCommand
  api-versions      org.apache.kafka.tools.BrokerApiVersionsCommand
  storage           kafka.tools.StorageTool
  <other>           any fully qualified main class on the classpath
USAGE
  exit 2
fi

tool="$1"; shift
case "$tool" in
  topics)           main=org.apache.kafka.tools.TopicCommand ;;
  producer-perf)    main=org.apache.kafka.tools.ProducerPerformance ;;
  consumer-perf)    main=org.apache.kafka.tools.ConsumerPerformance ;;
  e2e-latency)      main=org.apache.kafka.tools.EndToEndLatency ;;
  console-consumer) main=org.apache.kafka.tools.consumer.ConsoleConsumer ;;
  console-producer) main=org.apache.kafka.tools.ConsoleProducer ;;
  consumer-groups)  main=org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
  api-versions)     main=org.apache.kafka.tools.BrokerApiVersionsCommand ;;
  storage)          main=kafka.tools.StorageTool ;;
  *)                main="$tool" ;;
esac

kafka_check_java
kafka_ensure_lib
kafka_run_class "$main" "$@"
