#!/usr/bin/env bash
# Local Redis for Vigil, from Debian's redis-server.
#   deploy/redis.sh start|stop|status
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
RUN_DIR=${VIGIL_RUN_DIR:-"$here/../.run"}
mkdir -p "$RUN_DIR/redis-data"
RUN_DIR=$(cd "$RUN_DIR" && pwd)
PID="$RUN_DIR/redis.pid"
LOG="$RUN_DIR/redis.log"

# shellcheck source=deploy/pidfile.sh
source "$here/pidfile.sh"
alive() { pid_alive "$PID"; }
answers() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

start() {
  if alive; then echo "redis: already running (pid $(cat "$PID"))"; return; fi
  if command -v redis-cli >/dev/null && answers; then
    echo "redis: something already answers on 127.0.0.1:6379, using it"; return
  fi
  if ! command -v redis-server >/dev/null; then
    echo "redis: installing Debian's redis-server"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  fi
  # Append-only persistence so alert state and subscriptions survive a restart.
  redis-server --bind 127.0.0.1 --port 6379 --daemonize yes \
      --pidfile "$PID" --logfile "$LOG" --dir "$RUN_DIR/redis-data" \
      --appendonly yes --save ""
  for _ in $(seq 1 50); do
    if answers; then echo "redis: answering on 127.0.0.1:6379 (pid $(cat "$PID"), log $LOG)"; return; fi
    sleep 0.2
  done
  echo "redis: no PONG within 10 s; see $LOG" >&2
  exit 1
}

case "${1:-}" in
  start) start ;;
  stop) pid_stop redis "$PID" ;;
  status) pid_status redis "$PID" ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
