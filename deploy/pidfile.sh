# Process helpers shared by Vigil's deploy scripts (sourced, not run).
#   pid_alive PIDFILE          true while the process in PIDFILE runs
#   pid_stop NAME PIDFILE      SIGTERM, wait up to 30 s, then SIGKILL; removes PIDFILE
#   pid_status NAME PIDFILE    prints "NAME: running (pid N)" or "NAME: stopped"

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

pid_stop() {
  local name=$1 file=$2 pid
  if ! pid_alive "$file"; then rm -f "$file"; echo "$name: not running"; return; fi
  pid=$(cat "$file")
  kill "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$file"
  echo "$name: stopped"
}

pid_status() {
  if pid_alive "$2"; then echo "$1: running (pid $(cat "$2"))"; else echo "$1: stopped"; fi
}
