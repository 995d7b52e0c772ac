#!/usr/bin/env bash
# Installs what the tests and the demo need, each only when missing: Deno (pinned, through
# scripts/deno.sh), moto and cfn-lint from PyPI in .tools/venv, and, as root, Debian's mariadb-server,
# postgresql (15), xfsprogs, util-linux, groff and systemd (for systemd-analyze). Safe to run again.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
say() { echo "setup: $*" >&2; }

"$root/scripts/deno.sh" >/dev/null

if [ ! -x "$root/.tools/venv/bin/moto_server" ]; then
  say "installing moto (EC2 emulator) into .tools/venv"
  python3 -m venv "$root/.tools/venv"
  "$root/.tools/venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]>=5,<6'
fi
if [ ! -x "$root/.tools/venv/bin/cfn-lint" ]; then
  say "installing cfn-lint (CloudFormation linter, for packaging/dlm-stack.json) into .tools/venv"
  [ -x "$root/.tools/venv/bin/pip" ] || python3 -m venv "$root/.tools/venv"
  "$root/.tools/venv/bin/pip" install --quiet --disable-pip-version-check 'cfn-lint>=1,<2'
fi

missing=()
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server mariadb-client)
[ -x /usr/lib/postgresql/15/bin/postgres ] || missing+=(postgresql postgresql-client)
command -v mkfs.xfs >/dev/null 2>&1 || [ -x /usr/sbin/mkfs.xfs ] || missing+=(xfsprogs)
command -v fsfreeze >/dev/null 2>&1 || [ -x /usr/sbin/fsfreeze ] || missing+=(util-linux)
command -v losetup >/dev/null 2>&1 || [ -x /usr/sbin/losetup ] || missing+=(mount)
command -v groff >/dev/null 2>&1 || missing+=(groff-base)                # the man page test
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)          # the unit file test
ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1 || missing+=(libfaketime) # a wrong clock
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    say "installing ${missing[*]} from Debian"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    say "not root: cannot install ${missing[*]}; the real-service tests that need them will fail in CI"
  fi
fi
