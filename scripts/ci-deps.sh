#!/usr/bin/env bash
# System packages the test suite needs beyond Node, installed when missing (CI runs as root on
# Debian/Ubuntu), with one apt-get update for all of them. Nothing runs as a service.
# - postgresql: test/integration/fleet.test.ts starts a throwaway cluster with initdb and
#   pg_ctl (test/pg.ts).
# - gcc, libc6-dev: npm ci compiles the detached supervisor (native/supervise.c,
#   scripts/build-native.mjs); test/integration/supervisors.test.ts checks that it was built.
# - zsh, fish, bash-completion: test/integration/completion.test.ts drives each shell's own
#   completion (test/shells.ts would install them itself; here it happens once, up front).
set -euo pipefail

missing=()
command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
command -v zsh >/dev/null 2>&1 || missing+=(zsh)
command -v fish >/dev/null 2>&1 || missing+=(fish)
[ -f /usr/share/bash-completion/bash_completion ] || missing+=(bash-completion)

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "ci-deps: warning: missing ${missing[*]} and not root with apt-get to install them; install these Debian packages, or the tests that need them fail or are skipped" >&2
    exit 0
  fi
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
fi
