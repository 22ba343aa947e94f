# Ports and locations of the local stack. Sourced by infra/*.sh; the TypeScript services read the same variables
# (lib/config.ts) with the same defaults, so a value exported here before `up` reaches every component.
# All ports are non-default so the stack never collides with a system-wide service, and below Linux's ephemeral
# range (32768-60999): a fixed port inside it can be taken by some client connection's local port at the moment
# a service starts (seen in CI as EADDRINUSE).
: "${PARKING_ROOT:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
: "${PARKING_DATA_DIR:=$PARKING_ROOT/.data}"
: "${PARKING_CACHE_DIR:=${XDG_CACHE_HOME:-$HOME/.cache}/parking-platform}"
: "${PG_HOST:=127.0.0.1}"
: "${PG_PORT:=25432}"
: "${PG_SUPERUSER_PASSWORD:=postgres-dev}"
: "${REDIS_PORT:=26379}"
: "${MQTT_PORT:=21883}"
: "${KAFKA_PORT:=29092}"
: "${KAFKA_CONTROL_PORT:=29093}"
: "${SCHEMA_REGISTRY_PORT:=28081}"
: "${API_PORT:=28080}"
: "${INGEST_HTTP_PORT:=28090}"
: "${PROCESSORS_HTTP_PORT:=28091}"
export PARKING_ROOT PARKING_DATA_DIR PARKING_CACHE_DIR PG_HOST PG_PORT PG_SUPERUSER_PASSWORD REDIS_PORT MQTT_PORT \
  KAFKA_PORT KAFKA_CONTROL_PORT SCHEMA_REGISTRY_PORT API_PORT INGEST_HTTP_PORT PROCESSORS_HTTP_PORT
