#!/usr/bin/env bash
# Memory and scale figures of issue 6 on this machine: resident memory per node with N keys
# (default 1,000,000 of 100 bytes), snapshot size and the time to take one, restart after
# SIGKILL and SIGTERM, a wiped follower brought back by InstallSnapshot, all beside the disk's
# and loopback's raw rates. Builds kvraft and kvraft-bench in release mode and runs
# `kvraft-bench scale`, which starts (and always stops) its own 3-node cluster of the kvraft
# binary beside it on loopback. See bench/README.md.
#
# Usage: bench/scale.sh [--out DIR] [kvraft-bench scale options...]
#   --out DIR   where results go (default bench/results): scale-<date>-<time>.md and .json
#   anything else is passed to `kvraft-bench scale` (--keys N, --value-size B, --clients N,
#   --connections M, --max-raft-state-bytes B, --dir DIR, --keep, --raw-disk-mib M,
#   --raw-net-mib M, --timeout D; `kvraft-bench scale --help` lists them)
# Environment: BENCH_REV: the kvraft revision to name in the results (default: git rev-parse).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT="$ROOT/bench/results"
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT="$2"; shift ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) ARGS+=("$1") ;;
  esac
  shift
done

log() { printf '[scale.sh %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

cd "$ROOT"
log "building kvraft and kvraft-bench (release)"
cargo build --release --quiet -p kvraft -p kvraft-bench
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4)
BENCH="$TARGET_DIR/release/kvraft-bench"

mkdir -p "$OUT"
STAMP=$(date -u +%Y-%m-%d-%H%M)
MD="$OUT/scale-$STAMP.md"
JSON="$OUT/scale-$STAMP.json"
TMP_MD=$(mktemp "${TMPDIR:-/tmp}/kvraft-scale-md.XXXXXX")
trap 'rm -f "$TMP_MD"' EXIT

log "running kvraft-bench scale ${ARGS[*]:-} (progress below; the 1M-key default takes minutes)"
# The command stops every process it started, also on Ctrl-C (which reaches it directly).
"$BENCH" scale --json-out "$JSON" ${ARGS[@]+"${ARGS[@]}"} >"$TMP_MD"

if [ -n "${BENCH_REV:-}" ]; then
  REV=$BENCH_REV
else
  REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
  if ! git -C "$ROOT" diff --quiet HEAD 2>/dev/null; then REV="$REV (with local changes)"; fi
fi
CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
DATA_DIR=$(grep -o '"dir": *"[^"]*"' "$JSON" | head -n 1 | cut -d'"' -f4)
DEVICE=$(df -P "$(dirname "${DATA_DIR:-/tmp}")" 2>/dev/null | awk 'NR==2 {print $1}')
{
  cat "$TMP_MD"
  echo
  echo "Run $(date -u '+%Y-%m-%d %H:%M UTC'): kvraft $REV, release build; CPU $CPU; data on ${DEVICE:-?};"
  echo "\`kvraft-bench scale${ARGS[*]:+ ${ARGS[*]}}\`. Raw figures: $(basename "$JSON")."
} >"$MD"
echo
cat "$MD"
log "wrote $MD and $JSON"
