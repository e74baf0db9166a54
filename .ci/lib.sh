# Shell helpers the CI service scripts share (sourced, not run): wait for a port, tell a live process from a zombie, stop by pid file.
wait_port() { for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 not open" >&2; return 1; }
# This sandbox's PID 1 reaps orphans slowly, so a zombie counts as gone.
alive() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1; [[ $st != Z* ]]; }
stop_pidfile() {
  local f=$1 pid; [ -s "$f" ] || return 0; pid=$(cat "$f")
  if kill -TERM "$pid" 2>/dev/null; then
    for _ in $(seq 1 100); do alive "$pid" || break; sleep 0.05; done
    alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}
