#!/usr/bin/env bash
# Local Redis for the parking platform: 127.0.0.1:$REDIS_PORT, no persistence (cache/ephemeral state only).
#   install | up | down | status   (status exit 0 running, 3 stopped)
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

NAME=redis
PID_FILE="$RUN_DIR/$NAME.pid"
REDIS_DIR="$PARKING_DATA_DIR/redis"
REDIS_LOG="$LOG_DIR/$NAME.log"

cmd_install() {
  log "checking Debian package redis-server (redis-tools comes with it)"
  apt_ensure redis-server redis-tools
  command -v redis-server >/dev/null || die "redis-server missing after install"
  log "redis: $(redis-server --version | sed 's/ sha=.*//')"
}

ping_ok() { [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; }

cmd_up() {
  if pid_alive "$NAME"; then
    log "redis already running (pid $(cat "$PID_FILE"), 127.0.0.1:$REDIS_PORT)"
    return 0
  fi
  command -v redis-server >/dev/null || die "redis-server not installed: run $0 install"
  if port_open "$REDIS_PORT"; then die "port $REDIS_PORT is already in use by another process (not started by this script)"; fi
  rm -f "$PID_FILE"
  mkdir -p "$REDIS_DIR"
  log "starting redis-server on 127.0.0.1:$REDIS_PORT (no persistence, log $REDIS_LOG)"
  (cd "$REDIS_DIR" && redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --protected-mode yes --save '' \
    --appendonly no --daemonize yes --pidfile "$PID_FILE" --logfile "$REDIS_LOG" --dir "$REDIS_DIR") ||
    { tail -20 "$REDIS_LOG" >&2; die "redis-server failed to start (log: $REDIS_LOG)"; }
  local i
  for ((i = 0; i < 100; i++)); do ping_ok && break; sleep 0.1; done
  ping_ok || { tail -20 "$REDIS_LOG" >&2; die "redis not answering PING on port $REDIS_PORT after 10 s (log: $REDIS_LOG)"; }
  # --daemonize writes the pid file asynchronously; wait for it so `down` can find the process.
  for ((i = 0; i < 50; i++)); do pid_alive "$NAME" && break; sleep 0.1; done
  pid_alive "$NAME" || die "redis answers but wrote no pid file $PID_FILE"
  log "redis ready: pid $(cat "$PID_FILE"), 127.0.0.1:$REDIS_PORT"
}

cmd_down() { stop_started "$NAME" 10; }
cmd_status() { status_line "$NAME" "127.0.0.1:$REDIS_PORT"; }

service_main "$@"
