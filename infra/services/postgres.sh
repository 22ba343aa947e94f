#!/usr/bin/env bash
# Local PostgreSQL 15 + TimescaleDB (Apache-2 build) for the parking platform.
#   install  Debian PostgreSQL 15; TimescaleDB built from Debian trixie's source package (not packaged for bookworm)
#   up       own cluster in $PARKING_DATA_DIR/postgres on 127.0.0.1:$PG_PORT, database `parking`
#   down     pg_ctl stop -m fast (data stays)
#   status   one line; exit 0 running, 3 stopped
# Connect: PGPASSWORD=$PG_SUPERUSER_PASSWORD psql -h 127.0.0.1 -p $PG_PORT -U postgres parking
#      or: runuser -u postgres -- psql -h <socket dir, printed by `up`> -p $PG_PORT parking   (peer auth)
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

NAME=postgres
PG_MAJOR=15
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
PG_CONFIG_BIN=$PG_BIN/pg_config
PG_SHAREDIR=/usr/share/postgresql/$PG_MAJOR
PGDATA="$PARKING_DATA_DIR/postgres"
PID_FILE="$RUN_DIR/$NAME.pid"
PG_LOG="$LOG_DIR/$NAME.log"
TS_CACHE="$PARKING_CACHE_DIR/timescaledb"
TS_VERSION_FILE="$PARKING_CACHE_DIR/timescaledb.version"
# Where trixie's timescaledb source package comes from (override for a local Debian mirror).
: "${DEBIAN_SOURCE_MIRROR:=http://deb.debian.org/debian}"

# Unix socket directory: private and short (a socket path is limited to 107 bytes).
SOCK_DIR="$RUN_DIR/pg"
if [ $((${#SOCK_DIR} + ${#PG_PORT} + 10)) -gt 100 ]; then SOCK_DIR="/tmp/parking-pg-$PG_PORT"; fi

pg() { run_as postgres "$@"; }
psql_local() { pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCK_DIR" -p "$PG_PORT" -U postgres "$@"; }

ts_control() { echo "$PG_SHAREDIR/extension/timescaledb.control"; }
ts_installed_version() { sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$(ts_control)" 2>/dev/null; }

# ---------------------------------------------------------------------------------------------------------- install
build_timescaledb() {
  log "TimescaleDB is not packaged for bookworm: building it from Debian trixie's source package (first run only)"
  log "installing build dependencies (postgresql-server-dev-$PG_MAJOR pulls clang/llvm: this can take a minute or two)"
  apt_ensure "postgresql-server-dev-$PG_MAJOR" cmake gcc make libssl-dev libkrb5-dev dpkg-dev
  mkdir -p "$TS_CACHE"

  local dsc
  dsc=$(ls "$TS_CACHE"/timescaledb_*.dsc 2>/dev/null | sort -V | tail -1 || true)
  if [ -z "$dsc" ]; then
    # Private apt configuration: trixie's deb-src is never added to the system's sources.
    local apt_dir="$TS_CACHE/apt"
    mkdir -p "$apt_dir/lists/partial"
    echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $DEBIAN_SOURCE_MIRROR trixie main" \
      >"$apt_dir/sources.list"
    local apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
      -o "Dir::State::Lists=$apt_dir/lists" -o "APT::Sandbox::User=root")
    log "fetching the trixie source index (private apt config in $apt_dir)"
    apt-get "${apt_opts[@]}" -q --error-on=any update >"$LOG_DIR/timescaledb-fetch.log" 2>&1 || {
      tail -20 "$LOG_DIR/timescaledb-fetch.log" >&2
      die "could not fetch Debian trixie's source index from $DEBIAN_SOURCE_MIRROR (log: $LOG_DIR/timescaledb-fetch.log); TimescaleDB cannot be built"
    }
    log "downloading the timescaledb source package"
    (cd "$TS_CACHE" && apt-get "${apt_opts[@]}" -q source --download-only timescaledb) \
      >>"$LOG_DIR/timescaledb-fetch.log" 2>&1 || {
      tail -20 "$LOG_DIR/timescaledb-fetch.log" >&2
      die "apt-get source timescaledb (trixie) failed (log: $LOG_DIR/timescaledb-fetch.log); TimescaleDB cannot be built"
    }
    dsc=$(ls "$TS_CACHE"/timescaledb_*.dsc 2>/dev/null | sort -V | tail -1 || true)
    [ -n "$dsc" ] || die "no timescaledb .dsc after apt-get source (log: $LOG_DIR/timescaledb-fetch.log)"
    rm -rf "$apt_dir" # the trixie index (~35 MB) is only needed for this download
  else
    log "using cached source package $dsc"
  fi

  local version src build
  version=$(sed -n 's/^Version: *//p' "$dsc" | head -1)
  src="$TS_CACHE/src-$version"
  build="$TS_CACHE/build-$version"
  if [ ! -f "$src/CMakeLists.txt" ]; then
    log "unpacking $(basename "$dsc")"
    rm -rf "$src"
    dpkg-source -x "$dsc" "$src" >"$LOG_DIR/timescaledb-build.log" 2>&1 || {
      tail -20 "$LOG_DIR/timescaledb-build.log" >&2; die "dpkg-source -x failed"; }
  fi
  log "configuring TimescaleDB $version (Apache-only, no telemetry)"
  rm -rf "$build"
  mkdir -p "$build"
  (cd "$build" && cmake "$src" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPG_CONFIG="$PG_CONFIG_BIN" -DAPACHE_ONLY=1 \
    -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF -DUSE_TELEMETRY=OFF -DWARNINGS_AS_ERRORS=OFF) \
    >>"$LOG_DIR/timescaledb-build.log" 2>&1 || {
    tail -30 "$LOG_DIR/timescaledb-build.log" >&2; die "cmake failed (log: $LOG_DIR/timescaledb-build.log)"; }
  log "compiling TimescaleDB (make -j$(nproc) install; ~20-60 s; log: $LOG_DIR/timescaledb-build.log)"
  (cd "$build" && make -j"$(nproc)" install) >>"$LOG_DIR/timescaledb-build.log" 2>&1 || {
    tail -30 "$LOG_DIR/timescaledb-build.log" >&2; die "TimescaleDB build failed (log: $LOG_DIR/timescaledb-build.log)"; }
  [ -f "$(ts_control)" ] || die "TimescaleDB installed but $(ts_control) is missing"
  rm -rf "$build" "$src" # the source package itself stays cached in $TS_CACHE
  echo "$version" >"$TS_VERSION_FILE"
  log "TimescaleDB $(ts_installed_version) installed (Debian source version $version)"
}

cmd_install() {
  log "checking Debian packages postgresql-$PG_MAJOR postgresql-client-$PG_MAJOR"
  # bookworm has no postgresql-contrib-15: the contrib modules (btree_gist, pg_stat_statements, ...) are in postgresql-15.
  apt_ensure "postgresql-$PG_MAJOR" "postgresql-client-$PG_MAJOR"
  [ -x "$PG_BIN/initdb" ] || die "$PG_BIN/initdb missing after installing postgresql-$PG_MAJOR"
  if [ -f "$(ts_control)" ] && [ -f "/usr/lib/postgresql/$PG_MAJOR/lib/timescaledb.so" ]; then
    log "TimescaleDB $(ts_installed_version) already installed ($(ts_control)): nothing to build"
  else
    build_timescaledb
  fi
}

# --------------------------------------------------------------------------------------------------------------- up
running_pid() {
  # Echoes the postmaster pid when our cluster runs (pid file of up, or postmaster.pid of our data dir).
  local pid
  if pid_alive "$NAME"; then tr -dc '0-9' <"$PID_FILE"; return 0; fi
  if [ -f "$PGDATA/postmaster.pid" ]; then
    pid=$(head -1 "$PGDATA/postmaster.pid" | tr -dc '0-9')
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo "$pid"; return 0; fi
  fi
  return 1
}

write_config() {
  cat >"$PGDATA/parking.conf" <<EOF
# Generated by infra/services/postgres.sh on every \`up\` — edit the script, not this file.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$SOCK_DIR'
shared_preload_libraries = 'timescaledb'
timescaledb.license = 'apache'
timescaledb.telemetry_level = off
password_encryption = 'scram-sha-256'
max_connections = 200
shared_buffers = 256MB
# Local development speed: a crash may lose the last few hundred ms of commits, never corrupts (fsync stays on).
synchronous_commit = off
log_line_prefix = '%m [%p] %q%u@%d '
log_min_duration_statement = -1
EOF
  chown postgres:postgres "$PGDATA/parking.conf"
  grep -q "^include_if_exists = 'parking.conf'" "$PGDATA/postgresql.conf" ||
    echo "include_if_exists = 'parking.conf'" >>"$PGDATA/postgresql.conf"
}

cmd_up() {
  local pid
  if pid=$(running_pid); then
    echo "$pid" >"$PID_FILE"
    log "postgres already running (pid $pid, 127.0.0.1:$PG_PORT)"
    return 0
  fi
  [ -x "$PG_BIN/initdb" ] || die "PostgreSQL $PG_MAJOR not installed: run $0 install"
  [ -f "$(ts_control)" ] || die "TimescaleDB not installed: run $0 install"
  if port_open "$PG_PORT"; then die "port $PG_PORT is already in use by another process (not started by this script)"; fi

  # The checkout may sit under a 0700 directory (CI clones into mktemp -d): postgres must be able to reach its dirs.
  [ ! -L "$SOCK_DIR" ] || die "$SOCK_DIR is a symlink: refusing to use it as the socket directory"
  mkdir -p "$PGDATA" "$SOCK_DIR"
  grant_traverse postgres "$PGDATA" "$SOCK_DIR" "$LOG_DIR"
  chown postgres:postgres "$PGDATA" "$SOCK_DIR"
  chmod 0700 "$PGDATA"
  chmod 0755 "$SOCK_DIR"
  touch "$PG_LOG"
  chown postgres:postgres "$PG_LOG"

  if [ ! -f "$PGDATA/PG_VERSION" ]; then
    log "initdb: new cluster in $PGDATA (superuser postgres, scram-sha-256 over TCP, peer on the socket)"
    local pwfile
    pwfile=$(mktemp /tmp/parking-pgpw.XXXXXX)
    printf '%s\n' "$PG_SUPERUSER_PASSWORD" >"$pwfile"
    chown postgres "$pwfile"
    if ! pg "$PG_BIN/initdb" -D "$PGDATA" -U postgres --pwfile="$pwfile" --auth-local=peer \
      --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >>"$PG_LOG" 2>&1; then
      rm -f "$pwfile"; tail -20 "$PG_LOG" >&2; die "initdb failed (log: $PG_LOG)"
    fi
    rm -f "$pwfile"
  elif [ "$(cat "$PGDATA/PG_VERSION")" != "$PG_MAJOR" ]; then
    die "$PGDATA holds a PostgreSQL $(cat "$PGDATA/PG_VERSION") cluster, expected $PG_MAJOR"
  fi
  write_config

  log "starting postgres on 127.0.0.1:$PG_PORT (socket dir $SOCK_DIR, log $PG_LOG)"
  pg "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$PG_LOG" -w -t 60 -s start >/dev/null ||
    { tail -30 "$PG_LOG" >&2; die "postgres failed to start (log: $PG_LOG)"; }
  local i
  for ((i = 0; i < 300; i++)); do
    "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && break
    sleep 0.1
  done
  "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" || { tail -30 "$PG_LOG" >&2; die "postgres not ready after 30 s"; }
  head -1 "$PGDATA/postmaster.pid" >"$PID_FILE"

  # Keep the superuser password in step with $PG_SUPERUSER_PASSWORD (the cluster may predate a change).
  if ! PGPASSWORD="$PG_SUPERUSER_PASSWORD" "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
    -tAc 'select 1' >/dev/null 2>&1; then
    log "setting the postgres superuser password from PG_SUPERUSER_PASSWORD"
    psql_local -d postgres -v pw="$PG_SUPERUSER_PASSWORD" <<<"ALTER ROLE postgres PASSWORD :'pw';" >/dev/null
  fi
  if [ "$(psql_local -d postgres -tAc "select 1 from pg_database where datname = 'parking'")" != 1 ]; then
    log "creating database parking"
    psql_local -d postgres -c 'CREATE DATABASE parking' >/dev/null
  fi
  log "postgres ready: pid $(cat "$PID_FILE"), host 127.0.0.1 port $PG_PORT user postgres db parking, socket dir $SOCK_DIR"
}

# ------------------------------------------------------------------------------------------------------ down/status
cmd_down() {
  if [ ! -f "$PID_FILE" ]; then
    log "postgres not started by this script (no $PID_FILE): nothing to stop"
    return 0
  fi
  if pid_alive "$NAME"; then
    log "stopping postgres (pid $(cat "$PID_FILE"), pg_ctl stop -m fast)"
    if [ -f "$PGDATA/postmaster.pid" ]; then
      pg "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w -t 60 -s stop || { log "pg_ctl stop failed, signalling"; stop_pid "$NAME" 30; }
    else
      stop_pid "$NAME" 30
    fi
  else
    log "postgres not running (stale pid file)"
  fi
  rm -f "$PID_FILE"
  log "postgres stopped"
}

cmd_status() { status_line "$NAME" "127.0.0.1:$PG_PORT"; }

service_main "$@"
