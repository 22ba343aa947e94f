#!/usr/bin/env bash
# The local Kafka-protocol broker: librdkafka's mock cluster behind infra/kafka-mock/launcher.c.
#
#   kafka.sh install          build (or find cached) the launcher binary
#   kafka.sh up               start it unless running; every topic of schemas/topics.json exists afterwards
#   kafka.sh down             stop the process named by the pid file
#   kafka.sh status           "kafka  running  127.0.0.1:<port>  pid N" (exit 0) or "kafka  stopped" (exit 3)
#   kafka.sh control CMD...   one fault-control command, e.g. `control down 1`, `control up 1`, `control rtt 1 200`
#
# Ports: broker i (1..KAFKA_BROKERS, default 1) listens on 127.0.0.1:KAFKA_PORT+i-1; fault control on
# 127.0.0.1:KAFKA_CONTROL_PORT. With KAFKA_BROKERS > 1, move KAFKA_CONTROL_PORT out of that range (the launcher
# refuses to start otherwise). The broker keeps everything in memory: `down` loses all topics and offsets.
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

NAME=kafka
BUILD_SH="$PARKING_ROOT/infra/kafka-mock/build.sh"
TOPIC_CATALOG="$PARKING_ROOT/schemas/topics.json"
KAFKA_BROKERS="${KAFKA_BROKERS:-1}"

# control CMD — sends one line to the control port and prints the reply line; fails when the reply is not "ok...".
control() {
  local fd reply
  # The braces keep the 2>/dev/null from becoming permanent, as a bare `exec ... 2>` would.
  { exec {fd}<>"/dev/tcp/127.0.0.1/$KAFKA_CONTROL_PORT"; } 2>/dev/null || { echo "error control port closed"; return 1; }
  printf '%s\n' "$*" >&"$fd"
  IFS= read -r -t 15 reply <&"$fd" || reply="error no reply within 15 s"
  exec {fd}>&-
  printf '%s\n' "$reply"
  [[ $reply == ok* ]]
}

# Prints "name:partitions" per catalog topic; fails on a malformed catalog rather than starting without topics.
catalog_topics() {
  # shellcheck disable=SC2016 # ${...} is a JavaScript template literal, not shell.
  node -e '
    const { topics } = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    if (!Array.isArray(topics)) throw new Error("topics is not an array");
    for (const t of topics) {
      if (typeof t.name !== "string" || !/^[A-Za-z0-9._-]+$/.test(t.name) || !Number.isInteger(t.partitions) || t.partitions < 1)
        throw new Error("bad topic entry: " + JSON.stringify(t));
      console.log(`${t.name}:${t.partitions}`);
    }' "$TOPIC_CATALOG"
}

# Creating an existing topic is fine: `up` on a running broker only adds catalog topics that appeared since.
ensure_catalog_topics() {
  local entry reply
  while IFS= read -r entry; do
    reply=$(control create-topic "${entry%:*}" "${entry##*:}") ||
      [[ $reply == "error TOPIC_ALREADY_EXISTS"* ]] || die "creating topic $entry: $reply"
  done < <(catalog_topics)
}

cmd_install() {
  bash "$BUILD_SH" >/dev/null
}

cmd_up() {
  local bin topic_args=() entry topics
  if pid_alive "$NAME"; then
    # The control port, not the broker port: a test may have set the broker down on purpose.
    wait_port "$KAFKA_CONTROL_PORT" "$NAME" 30 "$NAME"
    ensure_catalog_topics
    log "kafka already running on 127.0.0.1:$KAFKA_PORT (pid $(cat "$RUN_DIR/$NAME.pid"))"
    return 0
  fi
  rm -f "$RUN_DIR/$NAME.pid"
  # Someone else's process on our port would make clients talk to the wrong broker; say so instead.
  port_open "$KAFKA_PORT" && die "127.0.0.1:$KAFKA_PORT is in use by a process this script did not start"
  port_open "$KAFKA_CONTROL_PORT" && die "127.0.0.1:$KAFKA_CONTROL_PORT is in use by a process this script did not start"

  bin=$(bash "$BUILD_SH")
  topics=$(catalog_topics) || die "cannot read the topic catalog $TOPIC_CATALOG"
  while IFS= read -r entry; do
    if [ -n "$entry" ]; then topic_args+=(--topic "$entry"); fi
  done <<<"$topics"

  log "starting kafka (mock, $KAFKA_BROKERS broker(s)) on 127.0.0.1:$KAFKA_PORT, control 127.0.0.1:$KAFKA_CONTROL_PORT"
  start_bg "$NAME" "$bin" --brokers "$KAFKA_BROKERS" --port-base "$KAFKA_PORT" --control-port "$KAFKA_CONTROL_PORT" \
    "${topic_args[@]}"
  wait_port "$KAFKA_PORT" "$NAME" 30 "$NAME"
  # The control loop starts only after READY (catalog topics created), so an answered ping means usable.
  control ping >/dev/null || die "kafka did not answer on its control port (log: $LOG_DIR/$NAME.log)"
  log "kafka ready: 127.0.0.1:$KAFKA_PORT, topics: ${topics//$'\n'/ }"
}

cmd_down() { stop_started "$NAME" 10; }

cmd_status() {
  local note=""
  if pid_alive "$NAME" && port_open "$KAFKA_CONTROL_PORT"; then
    port_open "$KAFKA_PORT" || note="  (broker port closed: set down through the control port?)"
    printf 'kafka  running  127.0.0.1:%s  pid %s%s\n' "$KAFKA_PORT" "$(tr -dc '0-9' <"$RUN_DIR/$NAME.pid")" "$note"
    return 0
  fi
  echo "kafka  stopped"
  return 3
}

case "${1:-}" in
  install) cmd_install ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  control)
    shift
    [ $# -gt 0 ] || die "usage: $0 control <ping|bootstrap|down ID|up ID|rtt ID MS|create-topic NAME PARTITIONS>"
    control "$@"
    ;;
  *) die "usage: $0 install|up|down|status|control CMD..." ;;
esac
