# Ports and locations of the local stack. Sourced by infra/*.sh; the TypeScript services read the same variables
# (lib/config.ts) with the same defaults, so a value exported here before `up` reaches every component.
# All ports are non-default so the stack never collides with a system-wide service.
: "${PARKING_ROOT:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
: "${PARKING_DATA_DIR:=$PARKING_ROOT/.data}"
: "${PARKING_CACHE_DIR:=${XDG_CACHE_HOME:-$HOME/.cache}/parking-platform}"
: "${PG_HOST:=127.0.0.1}"
: "${PG_PORT:=55432}"
: "${PG_SUPERUSER_PASSWORD:=postgres-dev}"
: "${REDIS_PORT:=56379}"
: "${MQTT_PORT:=51883}"
: "${KAFKA_PORT:=59092}"
: "${KAFKA_CONTROL_PORT:=59093}"
: "${SCHEMA_REGISTRY_PORT:=58081}"
: "${API_PORT:=58080}"
: "${INGEST_HTTP_PORT:=58090}"
: "${PROCESSORS_HTTP_PORT:=58091}"
export PARKING_ROOT PARKING_DATA_DIR PARKING_CACHE_DIR PG_HOST PG_PORT PG_SUPERUSER_PASSWORD REDIS_PORT MQTT_PORT \
  KAFKA_PORT KAFKA_CONTROL_PORT SCHEMA_REGISTRY_PORT API_PORT INGEST_HTTP_PORT PROCESSORS_HTTP_PORT
