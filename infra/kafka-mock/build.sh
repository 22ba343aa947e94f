#!/usr/bin/env bash
# Builds the kafka-mock launcher (launcher.c statically linked against librdkafka) and prints the binary's path on
# stdout; progress goes to stderr.
#
# Two cache levels under $PARKING_CACHE_DIR/kafka-mock/ (outside the repo, so fresh clones on the same machine share
# them):
#   librdkafka-<key>/       librdkafka.a + headers; <key> covers the source package and build flags. Cold: ~40 s.
#   <key>/kafka-mock        the linked launcher; <key> covers launcher.c, the librdkafka key and the link line, so
#                           editing launcher.c only relinks (< 1 s).
# Delete $PARKING_CACHE_DIR/kafka-mock to force a full rebuild.
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

HERE=$(cd "$(dirname "$0")" && pwd)
LAUNCHER_SRC="$HERE/launcher.c"

# librdkafka's source is not on Debian in a recent enough version (bookworm's 2.0.2 mock reports controller id 0 and
# has no API to change it), and npm is the one registry CI can reach: the Confluent JS client ships the full C source
# in its tarball. Pinned, so the cache key is stable.
LIBRDKAFKA_NPM_PKG="@confluentinc/kafka-javascript@1.10.1"
LIBRDKAFKA_EXPECTED_VERSION_PREFIX="2.15."
# Only the static C library is needed: no TLS, SASL or external compression libs to link, and no C++ bindings.
CONFIGURE_FLAGS=(--disable-ssl --disable-gssapi --disable-zstd --disable-curl --disable-lz4-ext --disable-sasl
  --disable-regex-ext)
MAKE_TARGET="librdkafka.a"
CFLAGS_LAUNCHER=(-std=c11 -O2 -Wall -Wextra)
LINK_LIBS=(-lz -lpthread -lm -ldl -lrt)

CACHE_ROOT="$PARKING_CACHE_DIR/kafka-mock"
mkdir -p "$CACHE_ROOT"

short_hash() { sha256sum | cut -c1-16; }

LIB_KEY=$(printf '%s\n' "$LIBRDKAFKA_NPM_PKG" "${CONFIGURE_FLAGS[*]}" "$MAKE_TARGET" | short_hash)
LIB_DIR="$CACHE_ROOT/librdkafka-$LIB_KEY"
BIN_KEY=$( { cat "$LAUNCHER_SRC"; printf '%s\n' "$LIB_KEY" "${CFLAGS_LAUNCHER[*]}" "${LINK_LIBS[*]}"; } | short_hash)
BIN_DIR="$CACHE_ROOT/$BIN_KEY"
BIN="$BIN_DIR/kafka-mock"

if [ -x "$BIN" ]; then
  log "kafka-mock: cached build $BIN"
  echo "$BIN"
  exit 0
fi

# Parallel callers (two `up`s, CI steps) wait for one build instead of racing on the same directories.
exec 9>"$CACHE_ROOT/.lock"
if ! flock -n 9; then
  log "kafka-mock: another build is running, waiting for it"
  flock -w 900 9 || die "kafka-mock: timed out waiting for the build lock $CACHE_ROOT/.lock"
fi
if [ -x "$BIN" ]; then
  echo "$BIN"
  exit 0
fi

command -v npm >/dev/null || die "npm not found (Node 20 is required to fetch the librdkafka source)"
# g++: librdkafka's configure insists on a C++ compiler even though only the C library is built.
apt_ensure gcc g++ make libc6-dev zlib1g-dev

TMP=$(mktemp -d "${TMPDIR:-/tmp}/kafka-mock-build.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

build_librdkafka() {
  local started=$SECONDS src version
  log "kafka-mock: building librdkafka (first run only, ~40 s on 2 cores)"
  log "kafka-mock: fetching source: npm pack $LIBRDKAFKA_NPM_PKG"
  (cd "$TMP" && npm pack --silent "$LIBRDKAFKA_NPM_PKG" >"$TMP/npm-pack.log" 2>&1) ||
    { tail -20 "$TMP/npm-pack.log" >&2; die "npm pack $LIBRDKAFKA_NPM_PKG failed"; }
  tar -xzf "$TMP"/*.tgz -C "$TMP" package/deps/librdkafka
  src="$TMP/package/deps/librdkafka"
  version=$(sed -n 's/^#define RD_KAFKA_VERSION[[:space:]]*0x\([0-9a-f]\{2\}\)\([0-9a-f]\{2\}\)\([0-9a-f]\{2\}\).*/\1 \2 \3/p' \
    "$src/src/rdkafka.h" | { read -r a b c; printf '%d.%d.%d' "0x$a" "0x$b" "0x$c"; }) || version=unknown
  case "$version" in
    "$LIBRDKAFKA_EXPECTED_VERSION_PREFIX"*) ;;
    *) die "librdkafka in $LIBRDKAFKA_NPM_PKG is '$version', expected ${LIBRDKAFKA_EXPECTED_VERSION_PREFIX}x" ;;
  esac
  log "kafka-mock: librdkafka $version: configure"
  (cd "$src" && ./configure "${CONFIGURE_FLAGS[@]}") >"$TMP/configure.log" 2>&1 ||
    { tail -30 "$TMP/configure.log" >&2; die "librdkafka configure failed (log above)"; }
  log "kafka-mock: librdkafka $version: compiling (make -j$(nproc) $MAKE_TARGET)"
  make -C "$src/src" -j"$(nproc)" "$MAKE_TARGET" >"$TMP/make.log" 2>&1 &
  local make_pid=$! total done_cnt
  total=$(find "$src/src" -maxdepth 1 -name '*.c' | wc -l)
  # A heartbeat, so a ~40 s compile never looks hung in CI output.
  while kill -0 "$make_pid" 2>/dev/null; do
    sleep 2
    if (((SECONDS - started) % 10 < 2)); then
      done_cnt=$(find "$src/src" -maxdepth 1 -name '*.o' | wc -l)
      log "kafka-mock: compiling librdkafka: $done_cnt/$total objects"
    fi
  done
  wait "$make_pid" || { tail -30 "$TMP/make.log" >&2; die "librdkafka build failed (log above)"; }
  # Built in a temp dir and renamed into place, so an interrupted build never leaves a half-filled cache entry.
  local stage="$TMP/lib-stage"
  mkdir -p "$stage/include"
  cp "$src/src/librdkafka.a" "$stage/"
  cp "$src/src/rdkafka.h" "$src/src/rdkafka_mock.h" "$stage/include/"
  echo "$version" >"$stage/VERSION"
  rm -rf "$LIB_DIR"
  mv "$stage" "$LIB_DIR"
  log "kafka-mock: librdkafka $version built in $((SECONDS - started)) s"
}

[ -f "$LIB_DIR/librdkafka.a" ] || build_librdkafka

log "kafka-mock: linking launcher (librdkafka $(cat "$LIB_DIR/VERSION"))"
mkdir -p "$TMP/bin"
# -isystem: the librdkafka headers are not ours; their warnings are noise.
gcc "${CFLAGS_LAUNCHER[@]}" -isystem "$LIB_DIR/include" -o "$TMP/bin/kafka-mock" "$LAUNCHER_SRC" \
  "$LIB_DIR/librdkafka.a" "${LINK_LIBS[@]}" || die "linking kafka-mock failed"
rm -rf "$BIN_DIR"
mv "$TMP/bin" "$BIN_DIR"
log "kafka-mock: built $BIN"
echo "$BIN"
