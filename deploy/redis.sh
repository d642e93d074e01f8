#!/usr/bin/env bash
# Local Redis for Vigil, from Debian's redis-server: two servers, each with its own memory budget.
#   deploy/redis.sh start|stop|status
#
#   state        127.0.0.1:6379  alert state, subscriptions, registry locks. Append-only file;
#                maxmemory $VIGIL_STATE_REDIS_MAXMEMORY (512mb), noeviction: nothing is ever
#                dropped silently; when full, writes fail and the APIs answer 503.
#   idempotency  127.0.0.1:6380  the prediction logger's de-duplication keys (all with a TTL).
#                maxmemory $VIGIL_IDEMPOTENCY_REDIS_MAXMEMORY (256mb), volatile-ttl: when full,
#                the keys nearest expiry go first, so the de-duplication window shrinks while
#                ingest goes on.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
RUN_DIR=${VIGIL_RUN_DIR:-"$here/../.run"}
mkdir -p "$RUN_DIR/redis-data" "$RUN_DIR/redis-idempotency-data"
RUN_DIR=$(cd "$RUN_DIR" && pwd)
STATE_MAXMEMORY=${VIGIL_STATE_REDIS_MAXMEMORY:-512mb}
IDEMPOTENCY_MAXMEMORY=${VIGIL_IDEMPOTENCY_REDIS_MAXMEMORY:-256mb}

# name port pid-file log data-dir maxmemory policy (the state server keeps its original paths)
STATE=(redis 6379 "$RUN_DIR/redis.pid" "$RUN_DIR/redis.log" "$RUN_DIR/redis-data"
       "$STATE_MAXMEMORY" noeviction)
IDEMPOTENCY=(redis-idempotency 6380 "$RUN_DIR/redis-idempotency.pid"
             "$RUN_DIR/redis-idempotency.log" "$RUN_DIR/redis-idempotency-data"
             "$IDEMPOTENCY_MAXMEMORY" volatile-ttl)

# shellcheck source=deploy/pidfile.sh
source "$here/pidfile.sh"
answers() { command -v redis-cli >/dev/null && redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null | grep -q PONG; }
setting() { redis-cli -h 127.0.0.1 -p "$1" config get "$2" 2>/dev/null | sed -n 2p; }

# A redis.conf memory size in bytes, read as redis-server does: 1k = 1000, 1kb = 1024, ...
bytes() {
  local size=${1,,} number unit
  number=${size%%[a-z]*}; unit=${size#"$number"}
  case "$unit" in
    "" | b) echo "$number" ;;
    k) echo $((number * 1000)) ;;   kb) echo $((number * 1024)) ;;
    m) echo $((number * 1000 ** 2)) ;; mb) echo $((number * 1024 ** 2)) ;;
    g) echo $((number * 1000 ** 3)) ;; gb) echo $((number * 1024 ** 3)) ;;
    *) echo "$1" ;;
  esac
}

# Says when a server started earlier runs with another budget than the one asked for now
# (a server that is running is left as it is: restart it to apply).
check_budget() {
  local name=$1 port=$2 maxmemory=$3 policy=$4 have
  have="$(setting "$port" maxmemory) $(setting "$port" maxmemory-policy)"
  if [ "$have" != "$(bytes "$maxmemory") $policy" ]; then
    echo "$name: runs with maxmemory $have, not $maxmemory $policy; restart it to apply" >&2
  fi
}

start_one() {
  local name=$1 port=$2 pid=$3 log=$4 dir=$5 maxmemory=$6 policy=$7
  if pid_alive "$pid"; then
    echo "$name: already running (pid $(cat "$pid"))"
    check_budget "$name" "$port" "$maxmemory" "$policy"
    return
  fi
  if answers "$port"; then
    echo "$name: something already answers on 127.0.0.1:$port, using it (its budget is its own)"
    return
  fi
  if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    echo "redis: installing Debian's redis-server"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  fi
  # Append-only persistence on both: alert state and subscriptions survive a restart, and so
  # does the de-duplication window.
  redis-server --bind 127.0.0.1 --port "$port" --daemonize yes \
      --pidfile "$pid" --logfile "$log" --dir "$dir" \
      --appendonly yes --save "" \
      --maxmemory "$maxmemory" --maxmemory-policy "$policy"
  for _ in $(seq 1 50); do
    if answers "$port"; then
      echo "$name: answering on 127.0.0.1:$port (pid $(cat "$pid"), maxmemory $maxmemory, $policy, log $log)"
      return
    fi
    sleep 0.2
  done
  echo "$name: no PONG within 10 s; see $log" >&2
  exit 1
}

case "${1:-}" in
  start) start_one "${STATE[@]}"; start_one "${IDEMPOTENCY[@]}" ;;
  stop) pid_stop "${IDEMPOTENCY[0]}" "${IDEMPOTENCY[2]}"; pid_stop "${STATE[0]}" "${STATE[2]}" ;;
  status) pid_status "${STATE[0]}" "${STATE[2]}"; pid_status "${IDEMPOTENCY[0]}" "${IDEMPOTENCY[2]}" ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
