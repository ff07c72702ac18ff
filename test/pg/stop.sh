#!/usr/bin/env bash
# Stops the PostgreSQL test/pg/start.sh started and removes its folder. Safe to run when
# nothing is running.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
state="$here/.state"
[ -f "$state/datadir" ] || { rm -rf "$state"; exit 0; }

data="$(cat "$state/datadir")"
bin="$(cat "$state/bin" 2>/dev/null || true)"
if [ -n "$bin" ] && [ -f "$data/postmaster.pid" ]; then
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$bin/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1
	else
		"$bin/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1
	fi
fi
case "$data" in
/tmp/aios-pg.*) rm -rf "$data" ;;
esac
rm -rf "$state"
