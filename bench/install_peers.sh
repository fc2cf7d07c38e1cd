#!/usr/bin/env bash
# Installs the benchmark peers (restic, borg, and pgBackRest for
# bench/pg_measure.ts, with GNU time for its peak-memory column) from Debian's
# packages if they are missing, then prints their versions. Idempotent: runs `apt-get update`
# and `apt-get install` only when a peer is not installed yet.
#
# Usage: bash bench/install_peers.sh
set -euo pipefail

need=()
command -v restic >/dev/null 2>&1 || need+=(restic)
command -v borg >/dev/null 2>&1 || need+=(borgbackup)
command -v pgbackrest >/dev/null 2>&1 || need+=(pgbackrest)
[ -x /usr/bin/time ] || need+=(time)

if ((${#need[@]} > 0)); then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
  fi
  echo "installing: ${need[*]}"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "${need[@]}"
else
  echo "restic, borg, pgbackrest and time are already installed"
fi

echo "restic: $(restic version 2>&1 | head -n 1)"
echo "borg:   $(borg --version 2>&1 | head -n 1)"
echo "pgbackrest: $(pgbackrest version 2>&1 | head -n 1)"
