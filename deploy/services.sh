#!/usr/bin/env bash
# Starts and stops Vigil's own processes, one per service, in the background.
#   deploy/services.sh start|stop|status
# Each writes $RUN_DIR/<service>.log and $RUN_DIR/<service>.pid; start waits for /healthz.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
RUN_DIR=${VIGIL_RUN_DIR:-"$root/.run"}
mkdir -p "$RUN_DIR"
cd "$root"
PY=${VIGIL_PYTHON:-"$root/.venv/bin/python"}
# The prediction logger's de-duplication keys go to their own Redis (deploy/redis.sh, 6380).
export VIGIL_IDEMPOTENCY_REDIS_URL=${VIGIL_IDEMPOTENCY_REDIS_URL:-redis://127.0.0.1:6380/0}
# Where the registry writes the first admin key when none exists (mode 0600).
export VIGIL_ADMIN_KEY_FILE=${VIGIL_ADMIN_KEY_FILE:-$RUN_DIR/admin.key}
# Alert notifications may go to receivers on this machine (the demo's); other private ranges stay closed.
export VIGIL_ALERTING_ALLOWED_NETWORKS=${VIGIL_ALERTING_ALLOWED_NETWORKS:-127.0.0.0/8}
# The joiner of a new local stack starts at the end of the topics: a developer machine's topics
# hold the tests' traffic, which no label will ever join (a deployment joins from the start).
export VIGIL_JOINER_AUTO_OFFSET_RESET=${VIGIL_JOINER_AUTO_OFFSET_RESET:-latest}
# Likewise the review queue's candidates: a local stack offers what is sent once it runs.
export VIGIL_FEEDBACK_REVIEW_AUTO_OFFSET_RESET=${VIGIL_FEEDBACK_REVIEW_AUTO_OFFSET_RESET:-latest}

# module:health port ("-": a worker without HTTP, checked for being alive)
SERVICES="registry:8000 prediction_logger:8001 feedback:8002 alerting:8003 drift_detector:8004 console:8005 archive:- feedback_joiner:-"
# The workers without HTTP serve Prometheus /metrics on these ports (VIGIL_METRICS_PORT); the
# APIs serve theirs on their own port (deploy/prometheus/prometheus.yml scrapes them all).
METRICS_PORTS="archive:8006 feedback_joiner:8007"
metrics_port() {
  local entry
  for entry in $METRICS_PORTS; do [ "${entry%%:*}" = "$1" ] && echo "${entry##*:}"; done
  return 0
}

# shellcheck source=deploy/pidfile.sh
source "$here/pidfile.sh"
alive() { pid_alive "$RUN_DIR/$1.pid"; }
healthy() { [ "$1" != "-" ] && curl -fsS "http://127.0.0.1:$1/healthz" >/dev/null 2>&1; }

# A stack started here is this machine's own, and its admin key is the one in the run
# directory: with none there yet, one is made now and handed to the registry to register, even
# when admin keys exist on vigil.keys.v1 already (`make test` leaves its own there). A registry
# started otherwise makes the first admin key only when there is none (see the README).
# (A key file already there is the registry's to check: one that no longer works is replaced.)
own_admin_key() {
  if [ -n "${VIGIL_BOOTSTRAP_ADMIN_KEY:-}" ] || [ -s "$VIGIL_ADMIN_KEY_FILE" ]; then return; fi
  (umask 077; "$PY" -c 'from vigil.wire.access import new_key; print(new_key()[1])' >"$VIGIL_ADMIN_KEY_FILE")
  VIGIL_BOOTSTRAP_ADMIN_KEY=$(cat "$VIGIL_ADMIN_KEY_FILE")
  export VIGIL_BOOTSTRAP_ADMIN_KEY
}

start() {
  own_admin_key
  for entry in $SERVICES; do
    name=${entry%%:*}; port=${entry##*:}
    if alive "$name"; then echo "$name: already running (pid $(cat "$RUN_DIR/$name.pid"))"; continue; fi
    if healthy "$port"; then echo "$name: something already answers on port $port" >&2; exit 1; fi
    # Detached from this shell and its output, so callers piping `make up` are not held open.
    metrics=$(metrics_port "$name")
    setsid nohup env ${metrics:+VIGIL_METRICS_PORT=$metrics} "$PY" -m "$name" \
        </dev/null >"$RUN_DIR/$name.log" 2>&1 &
    echo $! >"$RUN_DIR/$name.pid"
  done
  for entry in $SERVICES; do
    name=${entry%%:*}; port=${entry##*:}
    if [ "$port" = "-" ]; then
      sleep 1
      alive "$name" || { echo "$name: exited during start-up; see $RUN_DIR/$name.log" >&2; exit 1; }
      echo "$name: running (pid $(cat "$RUN_DIR/$name.pid"), log $RUN_DIR/$name.log)"
      continue
    fi
    for _ in $(seq 1 120); do
      healthy "$port" && break
      alive "$name" || { echo "$name: exited during start-up; last lines of $RUN_DIR/$name.log:" >&2; tail -n 30 "$RUN_DIR/$name.log" >&2; exit 1; }
      sleep 0.5
    done
    healthy "$port" || { echo "$name: no /healthz answer on port $port within 60 s; see $RUN_DIR/$name.log" >&2; exit 1; }
    echo "$name: healthy on http://127.0.0.1:$port (pid $(cat "$RUN_DIR/$name.pid"), log $RUN_DIR/$name.log)"
  done
  if [ -f "$VIGIL_ADMIN_KEY_FILE" ]; then
    echo "admin API key: $VIGIL_ADMIN_KEY_FILE (use it to make keys: .venv/bin/vigil keys create --help)"
  elif [ -n "${VIGIL_BOOTSTRAP_ADMIN_KEY:-}" ]; then
    echo "admin API key: the one in VIGIL_BOOTSTRAP_ADMIN_KEY"
  else
    echo "admin API key: an admin key existed already (made by an earlier start); $VIGIL_ADMIN_KEY_FILE is not there" >&2
  fi
}

stop() {
  for entry in $SERVICES; do
    name=${entry%%:*}
    pid_alive "$RUN_DIR/$name.pid" && pid_stop "$name" "$RUN_DIR/$name.pid"
  done
  return 0
}

status() {
  for entry in $SERVICES; do
    name=${entry%%:*}; port=${entry##*:}
    if alive "$name"; then
      state="running (pid $(cat "$RUN_DIR/$name.pid"))"
      if [ "$port" != "-" ]; then
        healthy "$port" && state="$state, healthy on :$port" || state="$state, not answering on :$port"
      fi
    else
      state="stopped"
    fi
    echo "$name: $state"
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
