# shellcheck shell=bash
# Sourced by .ci/run and scripts/postgres: start a throwaway Postgres server for the tests.
#
#   pg_start   finds initdb and pg_ctl, creates a cluster in a temporary folder, starts it on
#              127.0.0.1 on a free port with fsync=off, and sets STOCKBUS_POSTGRES_URL.
#   pg_stop    stops the server and removes the folder; safe to call twice or before pg_start.
#
# As root, the server runs as the postgres user (initdb refuses root), through runuser.

pg_bindir() {
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v initdb)")"
    return
  fi
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
    echo "$dir"
  fi
}

pg_start() {
  PG_BIN=$(pg_bindir)
  if [ -z "$PG_BIN" ]; then
    if [ "$(id -u)" = 0 ]; then
      echo "pg: initdb not found; installing the postgresql package" >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2
      PG_BIN=$(pg_bindir)
    fi
    if [ -z "$PG_BIN" ]; then
      echo "pg: initdb and pg_ctl not found on PATH or in /usr/lib/postgresql/*/bin; install the postgresql package (Debian: apt-get install postgresql)" >&2
      return 1
    fi
  fi
  PG_AS=()
  if [ "$(id -u)" = 0 ]; then
    PG_AS=(runuser -u postgres --)
  fi
  PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/stockbus-pg.XXXXXX")
  mkdir -p "$PG_DIR/sock"
  if [ "$(id -u)" = 0 ]; then
    chown -R postgres "$PG_DIR"
  fi
  "${PG_AS[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust -E UTF8 --no-sync >"$PG_DIR/initdb.log" 2>&1 || {
    echo "pg: initdb failed:" >&2; cat "$PG_DIR/initdb.log" >&2; return 1
  }
  local try port
  for try in 1 2 3 4 5; do
    port=$(pg_free_port)
    if "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 30 \
      -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$PG_DIR/sock -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
      start >/dev/null; then
      PG_PORT=$port
      export STOCKBUS_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
      return 0
    fi
    echo "pg: start on port $port failed (try $try)" >&2
  done
  cat "$PG_DIR/server.log" >&2
  return 1
}

# pg_free_port prints a port on 127.0.0.1 that nothing listens on.
pg_free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
}

pg_stop() {
  if [ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR" ]; then
    if [ -f "$PG_DIR/data/postmaster.pid" ]; then
      "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$PG_DIR"
  fi
  PG_DIR=
}
