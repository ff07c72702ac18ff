#!/usr/bin/env bash
# Starts a throwaway PostgreSQL for the storage tests: Debian's postgresql (installed if
# missing), a fresh cluster in a temporary folder, listening only on 127.0.0.1 at a free
# port, with a database aios_test. Prints the DSN and writes it to test/pg/.state/dsn;
# test/pg/stop.sh stops the server and removes everything.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
state="$here/.state"

find_bin() {
	local d
	for d in /usr/lib/postgresql/*/bin; do
		if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; fi
	done | sort -V | tail -n 1
}

bin="$(find_bin)"
if [ -z "$bin" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "start.sh: PostgreSQL is not installed; run as root to install it, or: apt-get install -y postgresql" >&2
		exit 1
	fi
	echo "start.sh: installing Debian's postgresql" >&2
	DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
	bin="$(find_bin)"
	[ -n "$bin" ] || { echo "start.sh: postgresql installed but initdb not found under /usr/lib/postgresql" >&2; exit 1; }
fi

# A server left over from an interrupted run would hold its port and folder.
if [ -f "$state/datadir" ]; then "$here/stop.sh" >/dev/null 2>&1 || true; fi

# PostgreSQL refuses to run as root: as root, run it as the postgres user.
as_pg() { "$@"; }
if [ "$(id -u)" -eq 0 ]; then
	id postgres >/dev/null 2>&1 || useradd --system --home /nonexistent --shell /usr/sbin/nologin postgres
	as_pg() { runuser -u postgres -- "$@"; }
fi

free_port() {
	local p
	for _ in $(seq 1 50); do
		p=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
	done
	echo "start.sh: no free port found" >&2
	return 1
}

data="$(mktemp -d /tmp/aios-pg.XXXXXX)"
[ "$(id -u)" -eq 0 ] && chown postgres: "$data"
mkdir -p "$state"
echo "$data" >"$state/datadir"
echo "$bin" >"$state/bin"

as_pg "$bin/initdb" -D "$data" -U postgres -A trust -E UTF8 --no-sync >"$data.initdb.log" 2>&1 ||
	{ cat "$data.initdb.log" >&2; exit 1; }
rm -f "$data.initdb.log"

port="$(free_port)"
# fsync off: this cluster holds test data only and is deleted afterwards. The tests run
# in parallel, each with a connection pool, hence the connection limit.
as_pg "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
	-o "-c listen_addresses=127.0.0.1 -p $port -k $data -c fsync=off -c max_connections=300" start >/dev/null ||
	{ cat "$data/server.log" >&2; exit 1; }

as_pg "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -qAt -c "CREATE DATABASE aios_test" >/dev/null

dsn="postgres://postgres@127.0.0.1:$port/aios_test?sslmode=disable"
echo "$dsn" >"$state/dsn"
echo "$dsn"
