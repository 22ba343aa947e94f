#!/usr/bin/env bash
# Local Confluent-compatible Schema Registry (infra/schema-registry/main.ts), served on 127.0.0.1:$SCHEMA_REGISTRY_PORT.
# Usage: schema-registry.sh install|up|down|status
# Data: $SCHEMA_REGISTRY_DATA (default $PARKING_DATA_DIR/schema-registry/schemas.jsonl), kept across down/up.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

NAME=schema-registry
URL="http://127.0.0.1:$SCHEMA_REGISTRY_PORT"

# Nothing to build: the service runs from source with tsx, so only the npm dependencies must be there.
sr_install() {
  [ -d "$PARKING_ROOT/node_modules/avsc" ] && [ -d "$PARKING_ROOT/node_modules/tsx" ] && [ -d "$PARKING_ROOT/node_modules/express" ] ||
    die "$NAME: node_modules is missing or incomplete in $PARKING_ROOT; run 'npm ci' there first"
  command -v node >/dev/null || die "$NAME: node is not on PATH"
}

sr_up() {
  if pid_alive "$NAME"; then
    log "$NAME already running ($URL)"
    return 0
  fi
  port_open "$SCHEMA_REGISTRY_PORT" && die "$NAME: port $SCHEMA_REGISTRY_PORT is taken by another process"
  sr_install
  log "starting $NAME on $URL"
  (cd "$PARKING_ROOT" && start_bg "$NAME" node --import tsx infra/schema-registry/main.ts)
  # wait_port exits on failure; run it in a subshell so a registry that hangs during start-up is stopped, not leaked.
  if ! (wait_port "$SCHEMA_REGISTRY_PORT" "$NAME" 30 "$NAME"); then
    stop_pid "$NAME" 5
    die "$NAME did not start (log: $LOG_DIR/$NAME.log)"
  fi
  log "$NAME ready ($URL, log: $LOG_DIR/$NAME.log)"
}

sr_down() { stop_started "$NAME" 10; }

sr_status() { status_line "$NAME" "$URL"; }

case "${1:-}" in
  install) sr_install ;;
  up) sr_up ;;
  down) sr_down ;;
  status) sr_status ;;
  *) die "usage: $0 install|up|down|status" ;;
esac
