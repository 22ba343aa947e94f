# Shared shell helpers for infra/*.sh. Every daemon the stack starts writes a pid file under
# $PARKING_DATA_DIR/run/<name>.pid; `down` stops only processes named by those files.
# shellcheck shell=bash
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

RUN_DIR="$PARKING_DATA_DIR/run"
LOG_DIR="$PARKING_DATA_DIR/log"
mkdir -p "$RUN_DIR" "$LOG_DIR" "$PARKING_CACHE_DIR"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# apt_ensure PKG... — installs the Debian packages that are missing; quiet and fast when all are present.
APT_UPDATED_MARK="$PARKING_CACHE_DIR/apt-updated"
apt_ensure() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]} (first run only)"
  if [ ! -f "$APT_UPDATED_MARK" ] || [ -n "$(find "$APT_UPDATED_MARK" -mmin +720 2>/dev/null)" ]; then
    log "apt-get update"
    apt-get update -q >"$LOG_DIR/apt-update.log" 2>&1 || { tail -20 "$LOG_DIR/apt-update.log"; die "apt-get update failed"; }
    touch "$APT_UPDATED_MARK"
  fi
  # policy-rc.d 101: packages must not start their own system-wide daemons; the stack starts its own.
  local had_policy=0
  [ -e /usr/sbin/policy-rc.d ] && had_policy=1
  if [ $had_policy -eq 0 ]; then printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" \
    >"$LOG_DIR/apt-install.log" 2>&1 || { tail -30 "$LOG_DIR/apt-install.log"; die "apt-get install ${missing[*]} failed"; }
  [ $had_policy -eq 1 ] || rm -f /usr/sbin/policy-rc.d
  log "installed: ${missing[*]}"
}

# proc_alive PID — true while PID runs. An exited process that init has not reaped yet (state Z; init here
# reaps about once a second) counts as gone, so stops do not wait on corpses.
proc_alive() {
  kill -0 "$1" 2>/dev/null || return 1
  [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != "Z" ]
}

# pid_alive NAME — true when $RUN_DIR/NAME.pid names a live process.
pid_alive() {
  local f="$RUN_DIR/$1.pid" pid
  [ -f "$f" ] || return 1
  pid=$(tr -dc '0-9' <"$f")
  [ -n "$pid" ] && proc_alive "$pid"
}

# stop_pid NAME [GRACE_SECONDS] — SIGTERM the process in NAME.pid, SIGKILL after the grace time, remove the file.
stop_pid() {
  local name=$1 grace=${2:-10} f="$RUN_DIR/$1.pid" pid i
  [ -f "$f" ] || return 0
  pid=$(tr -dc '0-9' <"$f")
  if [ -n "$pid" ] && proc_alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do proc_alive "$pid" || break; sleep 0.1; done
    if proc_alive "$pid"; then log "$name did not stop in ${grace}s, killing"; kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$f"
}

# start_bg NAME CMD... — starts CMD detached (own session), output to $LOG_DIR/NAME.log, pid to NAME.pid.
start_bg() {
  local name=$1; shift
  setsid "$@" >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN_DIR/$name.pid"
}

# wait_port PORT NAME [TIMEOUT_SECONDS] — waits until 127.0.0.1:PORT accepts TCP connections.
wait_port() {
  local port=$1 name=$2 timeout=${3:-30} i
  for ((i = 0; i < timeout * 10; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    if [ -n "${4:-}" ] && ! pid_alive "$4"; then tail -30 "$LOG_DIR/$4.log" >&2 || true; die "$name exited during start-up (log: $LOG_DIR/$4.log)"; fi
    sleep 0.1
  done
  tail -30 "$LOG_DIR/$name.log" >&2 2>/dev/null || true
  die "$name not ready on port $port after ${timeout}s"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# run_as USER CMD... — runs CMD as USER from / (so a cwd USER cannot read, e.g. /root, causes no warnings).
run_as() {
  local user=$1; shift
  (cd / && runuser -u "$user" -- "$@")
}

# grant_traverse USER PATH... — makes sure USER can reach each PATH: every ancestor directory USER cannot traverse
# (e.g. a checkout under a 0700 `mktemp -d`) gets o+x (search only, no listing), and each change is logged.
grant_traverse() {
  local user=$1 target dir parts p
  shift
  for target in "$@"; do
    dir=""
    IFS=/ read -r -a parts <<<"${target#/}"
    for p in "${parts[@]}"; do
      [ -n "$p" ] || continue
      dir="$dir/$p"
      [ -d "$dir" ] || break
      if ! run_as "$user" test -x "$dir"; then
        log "granting o+x on $dir so that user $user can reach $target"
        chmod o+x "$dir"
      fi
    done
  done
}

# status_line NAME ADDRESS — the service scripts' status contract: one line; exit 0 running, 3 stopped.
status_line() {
  if pid_alive "$1"; then
    echo "$1  running  $2  pid $(tr -dc '0-9' <"$RUN_DIR/$1.pid")"
    return 0
  fi
  echo "$1  stopped"
  return 3
}

# stop_started NAME GRACE — `down` for a plain daemon: stops only a process this stack's `up` recorded.
stop_started() {
  if [ ! -f "$RUN_DIR/$1.pid" ]; then
    log "$1 not started by this stack (no pid file): nothing to stop"
    return 0
  fi
  log "stopping $1 (pid $(tr -dc '0-9' <"$RUN_DIR/$1.pid"))"
  stop_pid "$1" "$2"
  log "$1 stopped"
}

# service_main "$@" — the service scripts' command line: install|up|down|status, run as cmd_<command>.
service_main() {
  case "${1:-}" in
    install | up | down | status) "cmd_$1" ;;
    *) echo "usage: $0 install|up|down|status" >&2; exit 2 ;;
  esac
}
