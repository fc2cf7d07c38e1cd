#!/usr/bin/env bash
# Installs PostgreSQL 15 from Debian's packages when it is missing, for the
# PostgreSQL tests (testing/pg_cluster.ts): the server, initdb, psql and
# pgbench under /usr/lib/postgresql/15/bin. Idempotent and quiet; when the
# server is there it does nothing. Needs root (CI and the developers' machines
# run as root); without root it says what to run and fails.
set -euo pipefail
bin=/usr/lib/postgresql/15/bin
if [ -x "$bin/postgres" ] && [ -x "$bin/initdb" ] && [ -x "$bin/pgbench" ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install_postgres: PostgreSQL 15 is missing; run as root: apt-get update && apt-get install -y postgresql-15" >&2
  exit 1
fi
echo "install_postgres: installing postgresql-15 from Debian..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null
# The Debian package starts a "main" cluster on port 5432: the tests start
# clusters of their own, so stop it (and keep it stopped) when it was made here.
if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql/15/main ]; then
  pg_ctlcluster 15 main stop >/dev/null 2>&1 || true
fi
test -x "$bin/postgres"
