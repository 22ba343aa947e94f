#!/usr/bin/env bash
# The local stack's one entry point, used by the demo, the tests and CI alike.
#   install  Debian packages, builds (TimescaleDB, the Kafka mock broker) and npm dependencies; idempotent
#   up       install, then start PostgreSQL+TimescaleDB, Redis, Mosquitto, Kafka (mock), Schema Registry, migrate
#   down     stop what `up` and `demo` started (by pid file), newest first; data stays in .data/
#   status   one line per service
#   demo     up, then start the platform (ingest, processors, api + console) with demo data; prints the URLs
#   test     up, then typecheck, lint, format check, unit and integration tests, a demo smoke test
#            (CI=true: down at the end)
# A second `up` is a no-op. Logs: .data/log/<service>.log.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$PARKING_ROOT"

SERVICES=(postgres redis mosquitto kafka schema-registry)
APPS=(ingest processors api)

# Development passwords of the local login roles (lib/config.ts reads the same defaults).
export PG_API_PASSWORD="${PG_API_PASSWORD:-parking-api-dev}"
export PG_PIPELINE_PASSWORD="${PG_PIPELINE_PASSWORD:-parking-pipeline-dev}"

npm_ensure() {
  # npm ci when node_modules is missing or older than the lockfile.
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    log "installing npm dependencies (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error >"$LOG_DIR/npm-ci.log" 2>&1 || { tail -30 "$LOG_DIR/npm-ci.log"; die "npm ci failed"; }
  fi
}

cmd_install() {
  local started=$SECONDS s
  command -v node >/dev/null || die "Node.js 20 is required (node not found)"
  npm_ensure
  for s in "${SERVICES[@]}"; do bash "infra/services/$s.sh" install; done
  # Debian's Chromium for the console's browser tests (playwright-core drives it; no browser download).
  apt_ensure chromium
  log "install complete ($((SECONDS - started)) s)"
}

cmd_up() {
  local s
  cmd_install
  for s in "${SERVICES[@]}"; do bash "infra/services/$s.sh" up; done
  log "applying migrations"
  node --import tsx schemas/migrate.ts up
}

app_up() {
  local name=$1 port=$2
  if pid_alive "$name"; then return 0; fi
  log "starting $name"
  start_bg "$name" env MQTT_EVENT_TOPIC="application/$DEMO_APPLICATION_ID/device/+/event/+" MQTT_CLIENT_ID=parking-demo-ingest \
    node --import tsx "$name/main.ts"
  wait_port "$port" "$name" 60 "$name"
}

cmd_down() {
  local i
  for ((i = ${#APPS[@]} - 1; i >= 0; i--)); do stop_pid "${APPS[i]}" 15; done
  for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do bash "infra/services/${SERVICES[i]}.sh" down; done
  log "stack down"
}

cmd_status() {
  local s rc=0
  for s in "${SERVICES[@]}"; do bash "infra/services/$s.sh" status || rc=3; done
  for s in "${APPS[@]}"; do
    if pid_alive "$s"; then printf '%-16s running  pid %s\n' "$s" "$(cat "$RUN_DIR/$s.pid")"; else printf '%-16s stopped\n' "$s"; fi
  done
  return $rc
}

cmd_demo() {
  cmd_up
  # The demo's bridge listens to the demo application only (infra/demo/demo-data.ts): tests publishing on the
  # same Mosquitto under their own application ids never reach it.
  DEMO_APPLICATION_ID=$(node --import tsx -e \
    "import('./infra/demo/demo-data.ts').then((m) => console.log(m.demoApplicationId))")
  log "building the operator console"
  npx vite build --config dashboards/console/vite.config.ts --logLevel warn >"$LOG_DIR/console-build.log" 2>&1 ||
    { tail -30 "$LOG_DIR/console-build.log"; die "console build failed"; }
  app_up ingest "$INGEST_HTTP_PORT"
  app_up processors "$PROCESSORS_HTTP_PORT"
  app_up api "$API_PORT"
  node --import tsx infra/demo/seed.ts
}

# The quick start's first command, as a test: the demo must come up and serve its data through the API
# (infra/demo/seed.ts waits for that). Apps that were not running before are stopped again afterwards.
demo_smoke() {
  local before=() a
  for a in "${APPS[@]}"; do if pid_alive "$a"; then before+=("$a"); fi; done
  log "demo smoke test"
  # A subshell, so that a `die` inside the demo ends only it and its log is shown here.
  (cmd_demo) >"$LOG_DIR/demo-smoke.log" 2>&1 || { tail -40 "$LOG_DIR/demo-smoke.log"; die "the demo did not come up"; }
  grep -q 'Parking platform is up with demo data' "$LOG_DIR/demo-smoke.log" || die "the demo printed no URLs"
  for a in "${APPS[@]}"; do
    if [[ " ${before[*]} " != *" $a "* ]]; then stop_pid "$a" 15; fi
  done
}

cmd_test() {
  local started=$SECONDS
  if [ "${CI:-}" = "true" ]; then trap cmd_down EXIT; fi
  cmd_up
  log "typecheck"; npm run --silent typecheck
  log "lint"; npm run --silent lint
  log "format check"; npx prettier --check . --log-level warn
  local results="$PARKING_DATA_DIR/test-results"
  mkdir -p "$results"
  log "unit tests"
  npx vitest run --project unit --reporter=default --reporter=json --outputFile.json="$results/unit.json"
  log "integration tests (real services)"
  npx vitest run --project integration --reporter=default --reporter=json --outputFile.json="$results/integration.json"
  demo_smoke
  log "all checks passed in $((SECONDS - started)) s"
  # One plain closing line over both projects, for humans and CI alike.
  node -e '
    let passed = 0, failed = 0, skipped = 0;
    for (const file of process.argv.slice(1)) {
      const r = JSON.parse(require("fs").readFileSync(file, "utf8"));
      passed += r.numPassedTests; failed += r.numFailedTests; skipped += r.numPendingTests + r.numTodoTests;
    }
    console.log(`tests: ${passed} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : ""));
  ' "$results/unit.json" "$results/integration.json"
}

case "${1:-}" in
  install) cmd_install ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  demo) cmd_demo ;;
  test) cmd_test ;;
  *) echo "usage: $0 install|up|down|status|demo|test" >&2; exit 2 ;;
esac
