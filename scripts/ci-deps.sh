#!/usr/bin/env bash
# System packages the test suite needs beyond Node, installed when missing (CI runs as root on
# Debian/Ubuntu). PostgreSQL: test/integration/fleet.test.ts starts a throwaway cluster with
# initdb and pg_ctl from Debian's postgresql package (test/pg.ts). Nothing runs as a service.
set -euo pipefail

have_postgres() {
  command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}

if ! have_postgres; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "ci-deps: PostgreSQL (initdb, pg_ctl) is missing; install Debian's postgresql package" >&2
    exit 1
  fi
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql
fi
