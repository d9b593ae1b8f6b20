#!/usr/bin/env bash
# Checks the systemd units in deploy/: `systemd-analyze verify` (syntax, and that each
# ExecStart names a program: copies of the units run the programs of BIN_DIR, default ./bin)
# and `systemd-analyze security --offline=true`, failing above an exposure of
# UNIT_EXPOSURE_MAX (tenths: 20 = 2.0; ours are 1.1). Works without a running systemd.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin=$(cd "${BIN_DIR:-$top/bin}" && pwd)
max=${UNIT_EXPOSURE_MAX:-20}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
units="shortener.service kgs.service shortener-migrate.service shortener-cleanup.service"
for u in $units shortener-cleanup.timer; do
    sed "s|/usr/local/bin/|$bin/|g" "$top/deploy/$u" > "$tmp/$u"
done
# verify only warns about what it ignores: any output at all is a defect.
out=$(cd "$tmp" && systemd-analyze verify --man=no $units shortener-cleanup.timer 2>&1) || true
if [ -n "$out" ]; then
    echo "$out" >&2
    exit 1
fi
for u in $units; do
    line=$(cd "$tmp" && systemd-analyze security --offline=true --threshold="$max" "$u" | tail -n 1) ||
        { echo "$u: $line (more than $max/10)" >&2; exit 1; }
    echo "$u: ${line#*: }"
done
