#!/usr/bin/env bash
# Installs the Debian packages that building, running and testing shortener need, when any is
# missing. Uses apt-get directly as root, through sudo otherwise. Prints what it does.
set -euo pipefail

packages=(
    build-essential pkg-config clang libclang-rt-14-dev clang-format cppcheck
    libmicrohttpd-dev libhiredis-dev libpq-dev libsodium-dev libjansson-dev
    libcurl4-openssl-dev libcmocka-dev
    postgresql redis-server
    python3 python3-pytest python3-pytest-xdist python3-requests
    nodejs npm
    curl procps util-linux
    # the cluster (make cluster-up, tests/cluster): engines operators trust, never our own
    haproxy patroni python3-psycopg2 etcd-server etcd-client redis-sentinel openssl
    # analytics, QR codes, the web page and its browser tests
    libmaxminddb-dev libqrencode-dev libpng-dev zbar-tools chromium librsvg2-bin
    # operations: sd_notify, metrics checks, backups
    libsystemd-dev prometheus pgbackrest
)
if [ "${1:-}" = "--bench" ]; then
    packages+=(wrk nginx-light postgresql-contrib)
fi

missing=()
for p in "${packages[@]}"; do
    # Node.js may come from elsewhere (NodeSource's nodejs bundles npm and conflicts with
    # Debian's npm package): a node or npm command on PATH is enough.
    case $p in
    nodejs) command -v node >/dev/null 2>&1 && continue ;;
    npm) command -v npm >/dev/null 2>&1 && continue ;;
    esac
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing missing Debian packages: ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
else
    echo "install-deps: need root or sudo to install: ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
# Debian starts the system PostgreSQL and Redis on install; the project never uses them, so
# policy-rc.d keeps them from starting where that is possible.
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
