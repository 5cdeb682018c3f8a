# Sourced by scripts/test.sh and scripts/bench.sh (which define `banner`).
#
# A throw-away PostgreSQL server for the tests that need one (the PostgreSQL store and
# multi-replica tests read KEYLESS_TEST_POSTGRES_URL; under CI they fail without it). It is
# initialised in a temporary directory, listens on 127.0.0.1 only with trust authentication,
# and is stopped and deleted when this script exits, whatever happens. Set
# KEYLESS_TEST_POSTGRES_URL yourself to use an existing server instead (the role needs
# CREATEDB: every test creates and drops its own database).
PG_DIR=""
PG_BIN=""
PG_RUN=()

find_pg_bin() {
  local d
  PG_BIN=""
  # Debian/Ubuntu install the server binaries outside PATH; the newest version wins.
  while read -r d; do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/psql" ]; then PG_BIN="$d"; return 0; fi
  done < <(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V -r)
  if command -v initdb >/dev/null && command -v pg_ctl >/dev/null && command -v psql >/dev/null; then
    PG_BIN="$(dirname "$(command -v initdb)")"; return 0
  fi
  return 1
}

stop_postgres() {
  [ -n "$PG_DIR" ] || return 0
  if [ -f "$PG_DIR/data/postmaster.pid" ]; then
    # Immediate: the cluster is thrown away, so there is nothing to flush.
    (cd / && "${PG_RUN[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1) || true
  fi
  rm -rf "$PG_DIR"
  PG_DIR=""
}

setup_postgres() {
  if [ -n "${KEYLESS_TEST_POSTGRES_URL:-}" ]; then
    echo "PostgreSQL: using KEYLESS_TEST_POSTGRES_URL from the environment"
    return 0
  fi
  if ! find_pg_bin; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      banner "setup: apt-get install postgresql"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
    find_pg_bin || {
      echo "PostgreSQL server binaries (initdb, pg_ctl) not found: install postgresql," >&2
      echo "or set KEYLESS_TEST_POSTGRES_URL to a server where the role may CREATEDB" >&2
      exit 1
    }
  fi
  banner "setup: PostgreSQL test server ($("$PG_BIN/postgres" --version))"
  local started=$SECONDS owner port _
  # PostgreSQL refuses to run as root: as root, run it as the `postgres` user the Debian
  # package creates (or a dedicated system user when there is none).
  if [ "$(id -u)" = 0 ]; then
    owner=postgres
    if ! id -u "$owner" >/dev/null 2>&1; then
      owner=keyless-pg
      id -u "$owner" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$owner"
    fi
    PG_RUN=(runuser -u "$owner" --)
  else
    owner="$(id -un)"
    PG_RUN=()
  fi
  # Clusters left by runs that were killed outright (SIGKILL: no trap ran) are removed.
  local stale
  for stale in "${TMPDIR:-/tmp}"/keyless-pg.*; do
    [ -f "$stale/owner.pid" ] || continue
    if ! kill -0 "$(cat "$stale/owner.pid")" 2>/dev/null; then
      (cd / && "${PG_RUN[@]}" "$PG_BIN/pg_ctl" -D "$stale/data" -m immediate -w stop >/dev/null 2>&1) || true
      rm -rf "$stale"
    fi
  done
  PG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/keyless-pg.XXXXXX")"
  echo $$ > "$PG_DIR/owner.pid"
  trap stop_postgres EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  chown "$owner" "$PG_DIR"
  (cd / && "${PG_RUN[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust \
    --encoding=UTF8 --no-locale --no-sync >"$PG_DIR/initdb.log" 2>&1) || {
    cat "$PG_DIR/initdb.log" >&2; echo "initdb failed" >&2; exit 1; }
  # A free loopback port: ask the kernel, then start there (retrying if it was taken since).
  for _ in 1 2 3 4 5; do
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    # Durability is pointless for a throw-away cluster; the socket directory is private.
    if (cd / && "${PG_RUN[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
          -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$PG_DIR \
              -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
          start >/dev/null); then
      break
    fi
    port=""
  done
  if [ -z "$port" ]; then cat "$PG_DIR/server.log" >&2; echo "PostgreSQL did not start" >&2; exit 1; fi
  "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres \
    -c "CREATE ROLE keyless LOGIN CREATEDB"
  export KEYLESS_TEST_POSTGRES_URL="postgres://keyless@127.0.0.1:$port/postgres"
  echo "PostgreSQL: $KEYLESS_TEST_POSTGRES_URL (data in $PG_DIR, started in $((SECONDS - started)) s)"
}
