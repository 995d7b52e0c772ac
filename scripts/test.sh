#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what it needs (scripts/setup.sh), checks
# formatting, lint, types, the docs of every export (deno doc --lint) and that every @example
# compiles (deno test --doc), bundles the program as
# it ships (tests/support/bundle.ts: scripts/bundle.ts, esbuild from npm), then runs every test.
# Real-service tests may not be ignored here: a missing service fails them.
# Extra arguments go to `deno test` (e.g. a file name).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/setup.sh
DENO=$(scripts/deno.sh)
export ECS_REQUIRE_REAL=1
"$DENO" fmt --check
"$DENO" lint
"$DENO" check src/ tests/ scripts/
"$DENO" doc --lint src/
# Every @example compiles (type-checked, not run: examples freeze, lock and write).
"$DENO" test --doc --no-run src/
"$DENO" run --allow-all tests/support/bundle.ts >/dev/null
"$DENO" test --allow-all "$@"
