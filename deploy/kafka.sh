#!/usr/bin/env bash
# Local Kafka for Vigil, from Maven Central jars (no Docker, no tarball).
#   deploy/kafka.sh start|stop|status
# Jars are resolved once into $RUN_DIR/kafka-lib, storage is formatted once, the broker
# logs to $RUN_DIR/kafka.log and its pid is in $RUN_DIR/kafka.pid.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
RUN_DIR=${VIGIL_RUN_DIR:-"$here/../.run"}
mkdir -p "$RUN_DIR"
RUN_DIR=$(cd "$RUN_DIR" && pwd)
LIB="$RUN_DIR/kafka-lib"
DATA="$RUN_DIR/kafka-data"
PID="$RUN_DIR/kafka.pid"
LOG="$RUN_DIR/kafka.log"
PROPS="$RUN_DIR/server.properties"
JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java

# shellcheck source=deploy/pidfile.sh
source "$here/pidfile.sh"
alive() { pid_alive "$PID"; }
port_open() { (exec 3<>/dev/tcp/127.0.0.1/9092) 2>/dev/null; }

fetch() {
  # The pom's checksum marks which jar set is in $LIB, so editing the pom refetches.
  local stamp; stamp=$(sha256sum "$here/pom.xml" | cut -c1-16)
  if [ -f "$LIB/.stamp" ] && [ "$(cat "$LIB/.stamp")" = "$stamp" ]; then return; fi
  command -v mvn >/dev/null || { echo "kafka: Maven (mvn) is needed to fetch the broker jars" >&2; exit 1; }
  echo "kafka: resolving broker jars from Maven Central into $LIB"
  rm -rf "$LIB"
  mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies \
      -DoutputDirectory="$LIB" -DincludeScope=runtime
  echo "$stamp" > "$LIB/.stamp"
}

configure() {
  sed "s#@LOG_DIRS@#$DATA#" "$here/server.properties" > "$PROPS"
  if [ ! -f "$DATA/meta.properties" ]; then
    local cluster; cluster=$("$JAVA" -cp "$LIB/*" kafka.tools.StorageTool random-uuid)
    "$JAVA" -cp "$LIB/*" kafka.tools.StorageTool format --standalone -t "$cluster" -c "$PROPS" >/dev/null
    echo "kafka: formatted KRaft storage in $DATA (cluster $cluster)"
  fi
}

start() {
  if alive; then echo "kafka: already running (pid $(cat "$PID"))"; return; fi
  if port_open; then echo "kafka: something already listens on 127.0.0.1:9092, using it"; return; fi
  fetch
  configure
  # A fixed heap keeps the JVM small and predictable on a 2-core machine.
  KAFKA_HEAP=${KAFKA_HEAP:-"-Xms1g -Xmx1g"}
  # shellcheck disable=SC2086
  nohup "$JAVA" $KAFKA_HEAP -Dorg.slf4j.simpleLogger.defaultLogLevel=info \
      -cp "$LIB/*" kafka.Kafka "$PROPS" >"$LOG" 2>&1 &
  echo $! > "$PID"
  for _ in $(seq 1 120); do
    if port_open; then echo "kafka: listening on 127.0.0.1:9092 (pid $(cat "$PID"), log $LOG)"; return; fi
    alive || { echo "kafka: exited during start-up; last lines of $LOG:" >&2; tail -n 30 "$LOG" >&2; exit 1; }
    sleep 0.5
  done
  echo "kafka: did not open 127.0.0.1:9092 within 60 s; see $LOG" >&2
  exit 1
}

case "${1:-}" in
  start) start ;;
  stop) pid_stop kafka "$PID" ;;
  status) pid_status kafka "$PID" ;;
  fetch) fetch ;;
  *) echo "usage: $0 start|stop|status|fetch" >&2; exit 2 ;;
esac
