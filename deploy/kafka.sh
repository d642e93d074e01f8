#!/usr/bin/env bash
# Local Kafka for Vigil, from Maven Central jars (no Docker, no tarball).
#   deploy/kafka.sh start|stop|status|users
# Jars are resolved once into $RUN_DIR/kafka-lib, storage is formatted once, the broker
# logs to $RUN_DIR/kafka.log and its pid is in $RUN_DIR/kafka.pid.
# Clients connect to PLAINTEXT 127.0.0.1:9092, or to SASL_PLAINTEXT 127.0.0.1:9094 with
# SCRAM-SHA-512 as one of two users: "vigil" (the services; password VIGIL_KAFKA_SCRAM_PASSWORD,
# default vigil-dev-password) and "vigil-app" (SDK producers; VIGIL_KAFKA_APP_SCRAM_PASSWORD,
# default vigil-app-dev-password). New storage is formatted with both users; storage formatted
# without them gets them once the broker is up. `users` sets both passwords again from the
# environment (after changing them) on the running broker.
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
# SCRAM users: name=password pairs. The defaults are for development on loopback only.
USERS=("vigil=${VIGIL_KAFKA_SCRAM_PASSWORD:-vigil-dev-password}"
       "vigil-app=${VIGIL_KAFKA_APP_SCRAM_PASSWORD:-vigil-app-dev-password}")
USERS_DONE="$DATA/vigil-scram-users"  # the storage has the users (format or `users` made them)

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

check_passwords() {
  # Kafka's tools read "[name=...,password=...]": these characters would break the list.
  local user
  for user in "${USERS[@]}"; do
    if [ -z "${user#*=}" ] || [[ ${user#*=} =~ [][,=\"\'[:space:]] ]]; then
      echo "kafka: the password of SCRAM user ${user%%=*} is empty or has one of , = [ ] quotes or spaces" >&2
      exit 1
    fi
  done
}

configure() {
  sed "s#@LOG_DIRS@#$DATA#" "$here/server.properties" > "$PROPS"
  if [ ! -f "$DATA/meta.properties" ]; then
    local cluster user scram=()
    cluster=$("$JAVA" -cp "$LIB/*" kafka.tools.StorageTool random-uuid)
    for user in "${USERS[@]}"; do
      scram+=(--add-scram "SCRAM-SHA-512=[name=${user%%=*},password=${user#*=}]")
    done
    "$JAVA" -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -cp "$LIB/*" kafka.tools.StorageTool \
        format --standalone -t "$cluster" -c "$PROPS" "${scram[@]}" >/dev/null
    touch "$USERS_DONE"
    echo "kafka: formatted KRaft storage in $DATA (cluster $cluster, SCRAM users vigil, vigil-app)"
  fi
}

users() {
  # Creates or updates each SCRAM user through the PLAINTEXT listener (the same password again
  # changes nothing a client sees). Retried: a broker that just opened its port may not answer yet.
  local user out attempt
  for user in "${USERS[@]}"; do
    for attempt in $(seq 1 30); do
      if out=$("$JAVA" -Xmx256m -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -cp "$LIB/*" \
          kafka.admin.ConfigCommand --bootstrap-server 127.0.0.1:9092 --alter \
          --entity-type users --entity-name "${user%%=*}" \
          --add-config "SCRAM-SHA-512=[password=${user#*=}]" 2>&1); then
        break
      fi
      if [ "$attempt" = 30 ]; then echo "kafka: could not set SCRAM user ${user%%=*}: $out" >&2; exit 1; fi
      sleep 1
    done
  done
  touch "$USERS_DONE"
  echo "kafka: SCRAM-SHA-512 users vigil and vigil-app set on 127.0.0.1:9094"
}

start() {
  if alive; then echo "kafka: already running (pid $(cat "$PID"))"; return; fi
  if port_open; then echo "kafka: something already listens on 127.0.0.1:9092, using it"; return; fi
  check_passwords
  fetch
  configure
  # A fixed heap keeps the JVM small and predictable on a 2-core machine.
  KAFKA_HEAP=${KAFKA_HEAP:-"-Xms1g -Xmx1g"}
  # shellcheck disable=SC2086
  nohup "$JAVA" $KAFKA_HEAP -Dorg.slf4j.simpleLogger.defaultLogLevel=info \
      -cp "$LIB/*" kafka.Kafka "$PROPS" >"$LOG" 2>&1 &
  echo $! > "$PID"
  for _ in $(seq 1 120); do
    if port_open; then
      echo "kafka: listening on 127.0.0.1:9092 (pid $(cat "$PID"), log $LOG)"
      # Storage formatted by a Vigil without SCRAM users: add them, once.
      [ -f "$USERS_DONE" ] || users
      return
    fi
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
  users) check_passwords; fetch; users ;;
  *) echo "usage: $0 start|stop|status|fetch|users" >&2; exit 2 ;;
esac
