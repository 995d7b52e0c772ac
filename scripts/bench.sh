#!/usr/bin/env bash
# Runs the benchmark as a new user would: installs what it needs (scripts/setup.sh), then runs
# scripts/bench.ts with the pinned deno. As root. Arguments go to bench.ts (see its usage), e.g.:
#   sudo bash scripts/bench.sh --runs 5 --rtt-ms 50
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ "$(id -u)" != 0 ]; then
  echo "scripts/bench.sh: run as root (it makes loop mounts and freezes them)" >&2
  exit 2
fi
bash "$root/scripts/setup.sh"
command -v /usr/bin/time >/dev/null 2>&1 || {
  echo "scripts/bench.sh: installing GNU time (peak memory)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends time >/dev/null
}
deno=$("$root/scripts/deno.sh")
cd "$root"
exec "$deno" run --allow-all scripts/bench.ts "$@"
