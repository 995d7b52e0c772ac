#!/usr/bin/env bash
# Builds the release into dist/: one self-contained binary per Linux target (deno compile of the
# bundle that scripts/bundle.ts makes of src/main.ts, with exactly the flags of scripts/run-flags,
# the version embedded), the man page, and SHA256SUMS over all of them.
#
# Usage: scripts/build.sh [--out DIR] [TARGET ...]
#   TARGET: x86_64-unknown-linux-gnu and/or aarch64-unknown-linux-gnu (default: both; with
#   DENORT_BIN, the target that denort is for).
# Environment:
#   ECS_VERSION  the version to embed (default: `git describe --tags`, without the leading v;
#                with no tag, src/cli/version.ts's version and the commit)
#   DENORT_BIN   path to a denort (the Deno runtime of compiled programs) of exactly the Deno
#                version of scripts/deno.sh, for builds without internet access; one target per run
# Exit status: 0 built; 1 failed; 2 bad usage; 3 the Deno runtime for compiling is missing (the
#   man page and its SHA256SUMS are written all the same).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
all_targets=(x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu)
name=ec2-consistent-snapshot
out="$root/dist"
targets=()

say() { echo "build.sh: $*" >&2; }
usage_error() { say "$*"; say "usage: scripts/build.sh [--out DIR] [TARGET ...]"; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --out) [ $# -ge 2 ] || usage_error "--out needs a directory"; out=$2; shift 2 ;;
    --out=*) out=${1#--out=}; shift ;;
    -h|--help) sed -n '2,15s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
    -*) usage_error "unknown option $1" ;;
    *)
      case " ${all_targets[*]} " in
        *" $1 "*) targets+=("$1") ;;
        *) usage_error "unknown target '$1' (known: ${all_targets[*]})" ;;
      esac
      shift ;;
  esac
done
mkdir -p "$out"
out=$(cd "$out" && pwd)

DENO=$("$root/scripts/deno.sh")
deno_version=$("$DENO" --version | head -n1 | cut -d' ' -f2)
read -r -a run_flags <"$root/scripts/run-flags"

# The version to embed: a release tag (v1.2.3, or 1.2.3-4-gabc1234 past it); else
# src/cli/version.ts's and the commit.
if [ -z "${ECS_VERSION:-}" ]; then
  source_version=$(sed -n 's/^export const VERSION = "\(.*\)";$/\1/p' "$root/src/cli/version.ts" 2>/dev/null)
  ECS_VERSION=$(git -C "$root" describe --tags --match 'v[0-9]*' --dirty 2>/dev/null ||
    echo "${source_version:-0.0.0}-g$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)")
  ECS_VERSION=${ECS_VERSION#v}
fi
export ECS_VERSION
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH=$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)
fi
export SOURCE_DATE_EPOCH

# Sums over every artifact in the output directory (runs per target accumulate).
write_sums() {
  local files=("$name".1)
  for f in "$out/$name"-*-linux-gnu; do [ ! -f "$f" ] || files+=("${f##*/}"); done
  (cd "$out" && sha256sum -- "${files[@]}" >SHA256SUMS)
}

# The man page needs no compile runtime: it is written (with its sum) even when the binaries
# cannot be built, so that it can be read offline (man ./dist/ec2-consistent-snapshot.1).
manpage_written=
write_manpage() {
  [ -z "$manpage_written" ] || return 0
  mkdir -p "$out"
  "$DENO" run --allow-write --allow-env --allow-read "$root/scripts/manpage.ts" "$out/$name.1"
  write_sums
  manpage_written=1
  say "wrote $out/$name.1 and $out/SHA256SUMS"
}

# The target a denort binary runs on, from its ELF header (e_machine).
elf_target() {
  local magic machine
  magic=$(od -An -tx1 -N4 "$1" | tr -d ' \n')
  [ "$magic" = 7f454c46 ] || return 1
  machine=$(od -An -tx1 -j18 -N2 "$1" | tr -d ' \n')
  case "$machine" in
    3e00) echo x86_64-unknown-linux-gnu ;;
    b700) echo aarch64-unknown-linux-gnu ;;
    *) return 1 ;;
  esac
}

runtime_missing() { # target, what happened
  local url="https://dl.deno.land/release/v$deno_version/denort-$1.zip"
  write_manpage
  say "cannot build $1: $2"
  say "deno compile needs 'denort', the Deno runtime that compiled programs run on, of exactly"
  say "Deno $deno_version for $1. Either:"
  say "  - build on a machine with internet access (deno compile downloads $url), or"
  say "  - download that zip elsewhere, unzip it, and build offline with"
  say "      DENORT_BIN=/path/to/denort scripts/build.sh $1"
  say "    (the deno CLI binary itself does not work as DENORT_BIN)."
  exit 3
}

case "$(uname -m)" in
  x86_64|amd64) host_target=x86_64-unknown-linux-gnu ;;
  aarch64|arm64) host_target=aarch64-unknown-linux-gnu ;;
  *) host_target=none ;;
esac

if [ -n "${DENORT_BIN:-}" ]; then
  [ -f "$DENORT_BIN" ] && [ -x "$DENORT_BIN" ] ||
    runtime_missing "${targets[0]:-$host_target}" "DENORT_BIN=$DENORT_BIN is not an executable file"
  denort_target=$(elf_target "$DENORT_BIN") ||
    runtime_missing "${targets[0]:-$host_target}" \
      "DENORT_BIN=$DENORT_BIN is not a Linux x86_64 or aarch64 executable"
  [ ${#targets[@]} -gt 0 ] || targets=("$denort_target")
  for target in "${targets[@]}"; do
    [ "$target" = "$denort_target" ] || usage_error "DENORT_BIN is a denort for $denort_target," \
      "so it cannot build $target: run once per target, each with its own denort"
  done
fi
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
say "version $ECS_VERSION, deno $deno_version, targets: ${targets[*]}"

work=$(mktemp -d "${TMPDIR:-/tmp}/ecs-build.XXXXXX")
trap 'rm -rf "$work"' EXIT

# 1. The runtime, checked on a one-line program before anything is written: deno compile fetches
#    (or takes from DENORT_BIN) the denort of each target; where the host runs the target, the
#    probe must run as the probe and not, say, as the deno CLI.
echo 'console.log("ecs-build-probe-ok");' >"$work/probe.ts"
for target in "${targets[@]}"; do
  if ! "$DENO" compile --no-config --no-lock --quiet --target "$target" \
    --output "$work/probe-$target" "$work/probe.ts" >"$work/probe.log" 2>&1; then
    if grep -qiE 'denort|base binary|dl\.deno\.land' "$work/probe.log"; then
      reason=$(grep -m1 'error sending request' "$work/probe.log" ||
        grep -m1 -iE 'denort|base binary' "$work/probe.log")
      runtime_missing "$target" \
        "the runtime could not be fetched: $(echo "$reason" | sed 's/\x1b\[[0-9;]*m//g; s/^ *[0-9]*: *//')"
    fi
    cat "$work/probe.log" >&2
    say "deno compile failed for a one-line program (target $target)"
    exit 1
  fi
  if [ "$target" = "$host_target" ]; then
    probe_out=$("$work/probe-$target" 2>&1 </dev/null || true)
    [ "$probe_out" = ecs-build-probe-ok ] || runtime_missing "$target" \
      "the runtime used (${DENORT_BIN:-downloaded}) is not a working denort of Deno $deno_version"
  fi
done

[ -f "$root/src/main.ts" ] || { say "src/main.ts is missing: nothing to compile"; exit 1; }

stage="$work/stage"
mkdir -p "$stage"
cp -R "$root/src" "$stage/src"
cp "$root/deno.json" "$stage/"
[ ! -f "$root/deno.lock" ] || cp "$root/deno.lock" "$stage/"
printf '/** The version, written by scripts/build.sh. */\nexport const VERSION = "%s";\n' \
  "$ECS_VERSION" >"$stage/src/cli/version.ts"

# 3. The man page, then one binary per target. Nothing besides the entry point needs --include:
#    the watchdog re-runs this same binary.
write_manpage

# 2. The version is embedded by bundling a staged copy of the sources whose src/cli/version.ts
#    says it; the working tree is left untouched. The bundle (plain JavaScript: main.js and the
#    chunks it imports) is what the tests run (tests/support/program.ts), so it is what ships.
"$DENO" run --allow-all "$root/scripts/bundle.ts" --root "$stage" --out "$work/bundle"
for target in "${targets[@]}"; do
  binary="$out/$name-$target"
  rm -f "$binary"
  (cd "$work/bundle" && "$DENO" compile "${run_flags[@]}" --no-config --include "$work/bundle" \
    --target "$target" --output "$binary" "$work/bundle/main.js")
  if [ "$target" = "$host_target" ]; then
    shown=$("$binary" --version 2>&1 </dev/null || true)
    case "$shown" in
      *"$ECS_VERSION"*) ;;
      *) say "$binary --version printed '$shown', not the version $ECS_VERSION"; exit 1 ;;
    esac
  fi
  say "wrote $binary"
done

# 4. Sums over every artifact in the output directory.
write_sums
say "wrote $out/SHA256SUMS"
