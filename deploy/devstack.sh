#!/usr/bin/env bash
# The local development stack under var/: a private PostgreSQL cluster and Redis (never the
# system services), kgs and shortener.
#
#   devstack.sh up     start everything in the background; prints the base URL and a dev key
#   devstack.sh run    the same, with kgs and shortener in the foreground; Ctrl-C stops all
#   devstack.sh down   stop everything
#
# PORT picks the HTTP port (default 8080, or the port the running stack has). VAR_DIR moves the state (default ./var).
# SHORTENER_BIN_DIR runs other builds of the programs (default ./bin).
#
# PostgreSQL authenticates by peer (never trust) and listens on its Unix socket only: the user
# running this script may log in as the migrator (shortener, the cluster's superuser here) and
# as the programs' own roles (web, kgs, cleanup; migrations/0009_roles.sql), nobody else. Every
# file and socket under var/ is its owner's alone (umask 077).
set -euo pipefail
umask 077

top=$(cd "$(dirname "$0")/.." && pwd)
var=${VAR_DIR:-$top/var}
mkdir -p "$var"
var=$(cd "$var" && pwd)
bin=${SHORTENER_BIN_DIR:-$top/bin}
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
run=$var/run
log=$var/log

say() { printf 'devstack: %s\n' "$*"; }
die() { printf 'devstack: %s\n' "$*" >&2; exit 1; }

# PostgreSQL refuses to run as root: then it runs as the postgres user.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# The login roles of the programs and the group role each belongs to.
login_roles="web:shortener_server kgs:shortener_kgs cleanup:shortener_cleanup"
dsn_for() { echo "host=$run dbname=shortener user=$1"; }

# Peer authentication, mapped: the invoking user (and postgres, which runs createdb) may be
# the migrator or any program role.
write_auth() {
    local me users u r ident=""
    me=$(id -un)
    users=$me
    [ "$(id -u)" -eq 0 ] && users="$me postgres"
    for u in $users; do
        for r in shortener web kgs cleanup; do ident+="dev $u $r"$'\n'; done
    done
    printf '%s' "$ident" | as_pg sh -c "cat > '$var/pg/pg_ident.conf'"
    printf 'local all all peer map=dev\nhost all all 127.0.0.1/32 scram-sha-256\nhost all all ::1/128 scram-sha-256\n' |
        as_pg sh -c "cat > '$var/pg/pg_hba.conf'"
}

create_login_roles() {
    local pair
    for pair in $login_roles; do
        as_pg "$pgbin/psql" -h "$run" -U shortener -d shortener -qAtX -v ON_ERROR_STOP=1 -c \
            "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${pair%%:*}')
             THEN CREATE ROLE ${pair%%:*} LOGIN IN ROLE ${pair#*:}; END IF; END \$\$" >/dev/null
    done
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# The port of the running shortener, if one runs: without PORT, `make up` keeps it (rather than
# move a stack started with PORT=N back to 8080); with another PORT, it restarts the server.
running_port=
alive "$run/shortener.pid" && [ -f "$run/shortener.port" ] && running_port=$(cat "$run/shortener.port")
port=${PORT:-${running_port:-8080}}

# Something other than our shortener answering on the port would pass wait_ready.
port_free() {
    ! curl -sS -o /dev/null --max-time 2 "http://127.0.0.1:$port/" 2>/dev/null
}

start_shortener() {
    port_free || die "port $port is in use by another program; pick another: PORT=N make ${1:-up}"
    echo "$port" > "$run/shortener.port"
}

start_postgres() {
    [ -n "$pgbin" ] || die "PostgreSQL server binaries not found (run: make deps)"
    mkdir -p "$var/pg" "$run" "$log"
    if [ "$(id -u)" -eq 0 ]; then
        # postgres passes through var/ and log/ (0711: nobody else may list them).
        chmod 0711 "$var" "$log"
        chown postgres:postgres "$var/pg"
        # The sockets' directory: postgres writes its socket there, the programs theirs.
        chown postgres:postgres "$run" && chmod 0711 "$run"
        touch "$log/postgres.log" && chown postgres:postgres "$log/postgres.log"
        as_pg test -w "$var/pg" ||
            die "the postgres user cannot reach $var/pg; put the checkout where it can"
    fi
    if [ ! -f "$var/pg/PG_VERSION" ]; then
        say "creating a PostgreSQL cluster in $var/pg"
        as_pg "$pgbin/initdb" -D "$var/pg" -U shortener --auth-local=peer \
            --auth-host=scram-sha-256 -E UTF8 --no-sync >/dev/null
    fi
    # Every start, so that a cluster made by an older devstack (trust) loses it too.
    write_auth
    if as_pg "$pgbin/pg_ctl" -D "$var/pg" status >/dev/null 2>&1; then
        as_pg "$pgbin/pg_ctl" -D "$var/pg" reload >/dev/null
    else
        as_pg "$pgbin/pg_ctl" -D "$var/pg" -l "$log/postgres.log" -w -t 60 \
            -o "-k $run -c listen_addresses=''" start >/dev/null
    fi
    if ! as_pg "$pgbin/psql" -h "$run" -U shortener -d postgres -AtXc \
        "SELECT 1 FROM pg_database WHERE datname = 'shortener'" | grep -q 1; then
        as_pg "$pgbin/createdb" -h "$run" -U shortener shortener
    fi
}

start_redis() {
    mkdir -p "$run" "$log"
    alive "$run/redis.pid" && return 0
    redis-server --port 0 --unixsocket "$run/redis.sock" --unixsocketperm 700 \
        --maxmemory 128mb --maxmemory-policy allkeys-lru --save '' --appendonly no \
        --daemonize yes --pidfile "$run/redis.pid" --logfile "$log/redis.log" --dir "$var"
    for _ in $(seq 50); do [ -S "$run/redis.sock" ] && return 0; sleep 0.1; done
    die "redis did not start; see $log/redis.log"
}

# var/env is shortenerctl's (it finds it beside its binary, ../var/env): DATABASE_URL is the
# migrator's. kgs and shortener get their own roles' DATABASE_URL when started. Quoted, so
# that a shell can source it too (`set -a; . var/env`): the DSN has spaces.
write_env() {
    cat > "$var/env" <<ENV
DATABASE_URL='$(dsn_for shortener)'
REDIS_URL=unix://$run/redis.sock
KGS_SOCKET=$run/kgs.sock
PORT=$port
BASE_URL=http://localhost:$port
ENV
}

load_env() {
    set -a
    # shellcheck disable=SC1091
    . "$var/env"
    set +a
    export DATABASE_URL="host=$run dbname=shortener user=shortener"
}

wait_ready() {
    for _ in $(seq 100); do
        alive "$run/shortener.pid" || die "shortener exited; see $log/shortener.log"
        if curl -fsS -o /dev/null "http://127.0.0.1:$PORT/readyz" 2>/dev/null; then
            return 0
        fi
        sleep 0.2
    done
    die "shortener did not become ready; see $log/"
}

wait_socket() {
    for _ in $(seq 100); do [ -S "$1" ] && return 0; sleep 0.1; done
    die "$2 did not start; see $log/$2.log"
}

prepare() {
    [ -x "$bin/shortener" ] || die "build first: make"
    start_postgres
    start_redis
    write_env
    load_env
    "$bin/shortenerctl" migrate >/dev/null
    create_login_roles
    if [ ! -s "$var/dev-api-key" ]; then
        "$bin/shortenerctl" apikey create development | tail -n 1 > "$var/dev-api-key"
    fi
}

greet() {
    local key
    key=$(cat "$var/dev-api-key")
    say "shortener is ready at $BASE_URL"
    say "development API key: $key"
    cat <<TXT
Try:
  curl -H "Authorization: Bearer $key" -d url=https://example.com $BASE_URL/api/v1/urls
TXT
}

stop_pidfile() {
    local f=$1
    if alive "$f"; then
        kill "$(cat "$f")" 2>/dev/null || true
        for _ in $(seq 50); do alive "$f" || break; sleep 0.1; done
        alive "$f" && kill -9 "$(cat "$f")" 2>/dev/null || true
    fi
    rm -f "$f"
}

down() {
    stop_pidfile "$run/shortener.pid"
    rm -f "$run/shortener.port"
    stop_pidfile "$run/kgs.pid"
    stop_pidfile "$run/redis.pid"
    if [ -f "$var/pg/PG_VERSION" ] && [ -n "$pgbin" ] &&
        as_pg "$pgbin/pg_ctl" -D "$var/pg" status >/dev/null 2>&1; then
        as_pg "$pgbin/pg_ctl" -D "$var/pg" -m fast -w stop >/dev/null
    fi
    say "stopped"
}

case "${1:-}" in
up)
    prepare
    if ! alive "$run/kgs.pid"; then
        DATABASE_URL=$(dsn_for kgs) nohup "$bin/kgs" >>"$log/kgs.log" 2>&1 &
        echo $! > "$run/kgs.pid"
    fi
    wait_socket "$KGS_SOCKET" kgs
    if [ -n "$running_port" ] && [ "$running_port" != "$port" ]; then
        port_free || die "port $port is in use by another program; the stack stays on $running_port"
        say "moving shortener from port $running_port to $port"
        stop_pidfile "$run/shortener.pid"
    fi
    if ! alive "$run/shortener.pid"; then
        start_shortener up
        DATABASE_URL=$(dsn_for web) nohup "$bin/shortener" >>"$log/shortener.log" 2>&1 &
        echo $! > "$run/shortener.pid"
    fi
    wait_ready
    greet
    ;;
run)
    # Its pid files would replace the background stack's, which make down could then not stop.
    if alive "$run/kgs.pid" || alive "$run/shortener.pid"; then
        die "the stack is already running in the background (make up); stop it first: make down"
    fi
    prepare
    # Ctrl-C reaches kgs and shortener too; stop what is left, then the databases.
    trap 'trap - INT TERM EXIT; set +e; kill $(jobs -p) 2>/dev/null; wait; down' INT TERM EXIT
    DATABASE_URL=$(dsn_for kgs) "$bin/kgs" &
    echo $! > "$run/kgs.pid"
    wait_socket "$KGS_SOCKET" kgs
    start_shortener run
    DATABASE_URL=$(dsn_for web) "$bin/shortener" &
    echo $! > "$run/shortener.pid"
    wait_ready
    greet
    say "Ctrl-C stops everything"
    wait
    ;;
down)
    down
    ;;
*)
    echo "usage: $0 up|run|down" >&2
    exit 2
    ;;
esac
