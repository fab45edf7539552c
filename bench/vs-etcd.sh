#!/usr/bin/env bash
# kvraft against etcd on this machine: the same load generator (`kvraft-bench`), the same
# workloads, 3-member clusters of each on loopback with their data on the same disk, alternating
# between the systems, several rounds; then one Markdown table of the medians with the ratio
# kvraft/etcd, and a latency-throughput chart. See bench/README.md.
#
# Usage: bench/vs-etcd.sh [--quick] [--rounds R] [--duration D] [--warmup D] [--out DIR] [--keep]
#   --quick       1 round of 3 s per run (1 s warmup): proves the pipeline, rough numbers
#   --rounds R    rounds per workload and system (default 3; the table shows medians)
#   --duration D  measured time per run (default 10s), --warmup D before it (default 2s)
#   --out DIR     where results go (default bench/results)
#   --keep        keep the clusters' data directories and logs (printed at the end)
# Environment: BASE_PORT (default 32300): etcd uses BASE_PORT+1..+6, kvraft BASE_PORT+11..+13;
#   BENCH_REV: the kvraft revision to name in the results (default: git rev-parse HEAD).
#
# Installs etcd-server from Debian (apt-get) if `etcd` is missing. Builds kvraft and kvraft-bench
# in release mode, the bench with etcd support (feature etcd-client, whose build needs protoc:
# the vendored one from protoc-bin-vendored is used unless PROTOC is set or protoc is on PATH).
# Every process it starts is stopped on exit, whatever the exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=3
DURATION=10s
WARMUP=2s
OUT="$ROOT/bench/results"
KEEP=0
QUICK=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1; ROUNDS=1; DURATION=3s; WARMUP=1s ;;
    --rounds) ROUNDS="$2"; shift ;;
    --duration) DURATION="$2"; shift ;;
    --warmup) WARMUP="$2"; shift ;;
    --out) OUT="$2"; shift ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "vs-etcd.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
case "$ROUNDS" in ''|*[!0-9]*|0) echo "vs-etcd.sh: --rounds must be a positive number" >&2; exit 2 ;; esac

BASE_PORT=${BASE_PORT:-32300}
VALUE_SIZE=256
KEYS=1000

log() { printf '[vs-etcd %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# --- processes we start, and how they all stop -----------------------------------------------
PIDS=()
WORK=""
cleanup() {
  local status=$?
  if [ ${#PIDS[@]} -gt 0 ]; then
    log "stopping ${#PIDS[@]} processes"
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    # etcd members may linger while their peers go away; give them 10 s, then kill.
    for _ in $(seq 1 100); do
      local alive=0
      for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
      [ $alive = 0 ] && break
      sleep 0.1
    done
    for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  fi
  if [ -n "$WORK" ] && [ -d "$WORK" ]; then
    if [ $KEEP = 1 ]; then log "kept data and logs in $WORK"; else rm -rf "$WORK"; fi
  fi
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- etcd ------------------------------------------------------------------------------------
if ! command -v etcd >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO=sudo
  log "installing etcd-server from Debian"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq etcd-server etcd-client >/dev/null
fi
ETCD_VERSION=$(etcd --version 2>/dev/null | sed -n 's/^etcd Version: //p')
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet etcd 2>/dev/null; then
  log "warning: the system's etcd service is running; it competes for CPU and disk"
fi

# --- kvraft and kvraft-bench, release build with etcd support ------------------------------------
cd "$ROOT"
if [ -z "${PROTOC:-}" ] && ! command -v protoc >/dev/null 2>&1; then
  case "$(uname -m)" in
    x86_64) ARCH=linux-x86_64 ;;
    aarch64|arm64) ARCH=linux-aarch_64 ;;
    *) ARCH=unknown ;;
  esac
  MANIFEST=$(cargo metadata --format-version 1 2>/dev/null \
    | grep -o "\"manifest_path\":\"[^\"]*protoc-bin-vendored-$ARCH-[^\"]*/Cargo.toml\"" \
    | head -n 1 | cut -d'"' -f4 || true)
  if [ -n "$MANIFEST" ] && [ -x "$(dirname "$MANIFEST")/bin/protoc" ]; then
    export PROTOC="$(dirname "$MANIFEST")/bin/protoc"
  else
    echo "vs-etcd.sh: no protoc found; set PROTOC or install protobuf-compiler" >&2
    exit 1
  fi
fi
log "building kvraft and kvraft-bench (release, --features kvraft-bench/etcd-client)"
cargo build --release --quiet -p kvraft -p kvraft-bench --features kvraft-bench/etcd-client
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4)
BIN="$TARGET_DIR/release/kvraft"
BENCH="$TARGET_DIR/release/kvraft-bench"

# --- the clusters, data in one temporary directory (one disk) ---------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kvraft-vs-etcd.XXXXXX")
log "data and logs in $WORK ($(df -P "$WORK" | awk 'NR==2 {print $1}'))"

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for offset in 1 2 3 4 5 6 11 12 13; do
  if ! port_free $((BASE_PORT + offset)); then
    echo "vs-etcd.sh: port $((BASE_PORT + offset)) is in use; set BASE_PORT" >&2
    exit 1
  fi
done

ETCD_ENDPOINTS=""
INITIAL=""
for i in 1 2 3; do
  INITIAL="${INITIAL:+$INITIAL,}e$i=http://127.0.0.1:$((BASE_PORT + 2 * i))"
  ETCD_ENDPOINTS="${ETCD_ENDPOINTS:+$ETCD_ENDPOINTS,}127.0.0.1:$((BASE_PORT + 2 * i - 1))"
done
for i in 1 2 3; do
  client=$((BASE_PORT + 2 * i - 1))
  peer=$((BASE_PORT + 2 * i))
  etcd --name "e$i" --data-dir "$WORK/etcd$i" \
    --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "$INITIAL" --initial-cluster-state new \
    --initial-cluster-token "kvraft-vs-etcd-$$" --logger zap --log-level warn \
    >"$WORK/etcd$i.log" 2>&1 &
  PIDS+=($!)
done

KV_ENDPOINTS=""
CLUSTER=""
for i in 1 2 3; do
  CLUSTER="${CLUSTER:+$CLUSTER,}$i=127.0.0.1:$((BASE_PORT + 10 + i))"
  KV_ENDPOINTS="${KV_ENDPOINTS:+$KV_ENDPOINTS,}127.0.0.1:$((BASE_PORT + 10 + i))"
done
for i in 1 2 3; do
  "$BIN" server --id "$i" --cluster "$CLUSTER" --data-dir "$WORK/kvraft$i" \
    >"$WORK/kvraft$i.log" 2>&1 &
  PIDS+=($!)
done

# Ready when one operation succeeds.
wait_ready() {
  local target=$1 endpoints=$2
  for _ in $(seq 1 60); do
    if "$BENCH" --target "$target" --endpoints "$endpoints" --clients 1 --ops 1 --warmup 0 \
      --no-prefill --op-timeout 2s --call-timeout 1s --json >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.5
  done
  echo "vs-etcd.sh: $target did not become ready; see $WORK/${target}*.log" >&2
  KEEP=1
  exit 1
}
wait_ready etcd "$ETCD_ENDPOINTS"
wait_ready kvraft "$KV_ENDPOINTS"
log "etcd $ETCD_VERSION at $ETCD_ENDPOINTS; kvraft at $KV_ENDPOINTS"

# --- the workloads of issue 6 -----------------------------------------------------------------
# workload clients connections
WORKLOADS=(
  "put 1 1"
  "put 64 64"
  "put 1000 100"
  "get 1 1"
  "get 64 64"
  "get 1000 100"
)
mkdir -p "$OUT"
STAMP=$(date -u +%Y-%m-%d-%H%M)
RAW="$OUT/$STAMP.jsonl"
TABLE="$OUT/$STAMP.md"
SVG="$OUT/$STAMP.svg"
: >"$RAW"

run_one() {
  local target=$1 workload=$2 clients=$3 connections=$4 endpoints line
  if [ "$target" = etcd ]; then endpoints=$ETCD_ENDPOINTS; else endpoints=$KV_ENDPOINTS; fi
  if line=$("$BENCH" --target "$target" --endpoints "$endpoints" --workload "$workload" \
      --clients "$clients" --connections "$connections" --duration "$DURATION" \
      --warmup "$WARMUP" --value-size "$VALUE_SIZE" --keys "$KEYS" --json 2>>"$WORK/bench.log"); then
    :
  else
    log "  $target: the run failed (see $WORK/bench.log)"
    KEEP=1
  fi
  if [ -n "$line" ]; then
    printf '%s\n' "$line" >>"$RAW"
    log "  $target: $(printf '%s' "$line" | grep -o '"throughput":[0-9.]*' | cut -d: -f2 | cut -d. -f1) ops/s, $(printf '%s' "$line" | grep -o '"errors":[0-9]*' | cut -d: -f2) errors"
  fi
}

for round in $(seq 1 "$ROUNDS"); do
  for index in "${!WORKLOADS[@]}"; do
    read -r workload clients connections <<<"${WORKLOADS[$index]}"
    log "round $round/$ROUNDS: $workload, $clients client(s) over $connections connection(s)"
    # Alternate which system goes first, workload by workload and round by round.
    if [ $(( (round + index) % 2 )) = 1 ]; then order="etcd kvraft"; else order="kvraft etcd"; fi
    for target in $order; do
      run_one "$target" "$workload" "$clients" "$connections"
    done
  done
done

# --- the table and the chart -------------------------------------------------------------------
CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
MEM=$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo 2>/dev/null)
if [ -n "${BENCH_REV:-}" ]; then
  REV=$BENCH_REV
else
  REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
  if ! git -C "$ROOT" diff --quiet HEAD 2>/dev/null; then REV="$REV (with local changes)"; fi
fi
{
  echo "# kvraft vs etcd, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "- machine: $(nproc) cores ($CPU), $MEM, $(uname -sr); data on $(df -P "$WORK" | awk 'NR==2 {print $1}')"
  echo "- etcd $ETCD_VERSION (Debian etcd-server), 3 members on loopback; kvraft $REV, 3 nodes on loopback, release build"
  echo "- load: \`kvraft-bench\`, closed loop, $VALUE_SIZE-byte values, $KEYS keys uniform, $DURATION per run after $WARMUP warmup, $ROUNDS round(s), systems alternating$([ $QUICK = 1 ] && echo '; --quick')"
  echo
  "$BENCH" compare "$RAW" --svg "$SVG"
  echo
  echo "Chart: $(basename "$SVG"); raw reports: $(basename "$RAW")."
} >"$TABLE"
echo
cat "$TABLE"
log "wrote $TABLE, $SVG and $RAW"
