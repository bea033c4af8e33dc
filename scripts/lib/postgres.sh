# A throwaway PostgreSQL server for the tests: its own data directory, loopback only, no fsync.
# Source this file, then `start_postgres ADDR PORT`; it exports TALOS_DR_TEST_DATABASE_URL (the
# server's admin database; each test creates a database of its own) and `stop_postgres` removes
# it again. PostgreSQL refuses to run as root, so as root it runs as the `postgres` user the
# Debian package creates.

PG_DIR=
PG_RUN=()

postgres_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$dir" ] || [ ! -x "$dir/postgres" ]; then
    echo "PostgreSQL is not installed (run scripts/setup.sh)" >&2
    return 1
  fi
  echo "$dir"
}

start_postgres() {
  local addr=$1 port=$2 bin
  bin=$(postgres_bin)
  PG_DIR=$(mktemp -d /tmp/talos-dr-postgres.XXXXXX)
  chmod 755 "$PG_DIR"
  if [ "$(id -u)" = 0 ]; then
    chown postgres:postgres "$PG_DIR"
    PG_RUN=(runuser -u postgres --)
  fi
  "${PG_RUN[@]}" "$bin/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 --no-locale \
    >"$PG_DIR/initdb.log" 2>&1 || { cat "$PG_DIR/initdb.log" >&2; return 1; }
  "${PG_RUN[@]}" "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
    -o "-h $addr -p $port -k $PG_DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
    start >/dev/null || { cat "$PG_DIR/server.log" >&2; return 1; }
  export TALOS_DR_TEST_DATABASE_URL="postgres://postgres@$addr:$port/postgres"
}

stop_postgres() {
  [ -n "$PG_DIR" ] || return 0
  local bin
  bin=$(postgres_bin) || return 0
  "${PG_RUN[@]}" "$bin/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
  PG_DIR=
}
