#!/usr/bin/env bash
# Two kvraft builds side by side: the kvraft half of bench/vs-etcd.sh (same workloads, same
# load generator, 3 nodes on loopback with their data on one disk) run against a "before" and
# an "after" server binary, alternating between them round by round, then one Markdown table of
# the medians with the ratio after/before. For a change to a hot path: build the old revision's
# binary, then compare in one sitting (the machine's speed drifts between sittings).
#
# Usage: bench/kvraft-ab.sh --before BIN --after BIN [--load CMD] [--rounds R] [--duration D]
#                           [--warmup D] [--quick] [--out DIR]
#   --before, --after  `kvraft` binaries to compare (e.g. a copy of target/release/kvraft built at
#                      the old revision, and the current one)
#   --load CMD         the load generator, run as `CMD --target kvraft ...` (default: the
#                      kvraft-bench beside --after, else `--after bench`); the same for both sides
#   --rounds R         rounds per workload and side (default 3; the table shows medians)
#   --duration D       measured time per run (default 10s), --warmup D before it (default 2s)
#   --quick            1 round of 3 s per run (1 s warmup)
#   --out DIR          where the raw reports and the table go (default bench/results)
# Environment: BASE_PORT (default 32400): the nodes use BASE_PORT+1..+3.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BEFORE=""
AFTER=""
LOAD=""
ROUNDS=3
DURATION=10s
WARMUP=2s
OUT="$ROOT/bench/results"
while [ $# -gt 0 ]; do
  case "$1" in
    --before) BEFORE="$2"; shift ;;
    --after) AFTER="$2"; shift ;;
    --load) LOAD="$2"; shift ;;
    --rounds) ROUNDS="$2"; shift ;;
    --duration) DURATION="$2"; shift ;;
    --warmup) WARMUP="$2"; shift ;;
    --quick) ROUNDS=1; DURATION=3s; WARMUP=1s ;;
    --out) OUT="$2"; shift ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "kvraft-ab.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
for side in BEFORE AFTER; do
  bin=${!side}
  if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    echo "kvraft-ab.sh: --$(echo "$side" | tr 'A-Z' 'a-z') must name an executable kvraft binary (got '${bin}')" >&2
    exit 2
  fi
done
case "$ROUNDS" in ''|*[!0-9]*|0) echo "kvraft-ab.sh: --rounds must be a positive number" >&2; exit 2 ;; esac
if [ -z "$LOAD" ]; then
  if [ -x "$(dirname "$AFTER")/kvraft-bench" ]; then LOAD="$(dirname "$AFTER")/kvraft-bench"; else LOAD="$AFTER bench"; fi
fi

BASE_PORT=${BASE_PORT:-32400}
VALUE_SIZE=256
KEYS=1000
log() { printf '[kvraft-ab %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

PIDS=()
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kvraft-ab.XXXXXX")
stop_cluster() {
  if [ ${#PIDS[@]} -gt 0 ]; then
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  fi
  PIDS=()
}
cleanup() {
  local status=$?
  stop_cluster
  rm -rf "$WORK"
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ENDPOINTS=""
CLUSTER=""
for i in 1 2 3; do
  CLUSTER="${CLUSTER:+$CLUSTER,}$i=127.0.0.1:$((BASE_PORT + i))"
  ENDPOINTS="${ENDPOINTS:+$ENDPOINTS,}127.0.0.1:$((BASE_PORT + i))"
done

# Starts a fresh cluster of `bin` (empty data directories) and waits until it serves.
start_cluster() {
  local bin=$1 name=$2
  rm -rf "$WORK/data"
  for i in 1 2 3; do
    "$bin" server --id "$i" --cluster "$CLUSTER" --data-dir "$WORK/data/node$i" \
      >>"$WORK/$name-node$i.log" 2>&1 &
    PIDS+=($!)
  done
  for _ in $(seq 1 60); do
    if $LOAD --target kvraft --endpoints "$ENDPOINTS" --clients 1 --ops 1 --warmup 0 \
      --no-prefill --op-timeout 2s --call-timeout 1s --json >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.5
  done
  echo "kvraft-ab.sh: the $name cluster did not become ready; logs: $WORK/$name-node*.log" >&2
  tail -n 20 "$WORK/$name"-node*.log >&2 || true
  exit 1
}

# workload clients connections (the kvraft half of bench/vs-etcd.sh)
WORKLOADS=("put 1 1" "put 64 64" "put 1000 100" "get 1 1" "get 64 64" "get 1000 100")
mkdir -p "$OUT"
STAMP=$(date -u +%Y-%m-%d-%H%M)
RAW="$OUT/ab-$STAMP.jsonl"
TABLE="$OUT/ab-$STAMP.md"
: >"$RAW"

for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then order="before after"; else order="after before"; fi
  for side in $order; do
    if [ "$side" = before ]; then bin=$BEFORE; else bin=$AFTER; fi
    log "round $round/$ROUNDS: $side ($bin)"
    start_cluster "$bin" "$side"
    for spec in "${WORKLOADS[@]}"; do
      read -r workload clients connections <<<"$spec"
      if line=$($LOAD --target kvraft --endpoints "$ENDPOINTS" --workload "$workload" \
          --clients "$clients" --connections "$connections" --duration "$DURATION" \
          --warmup "$WARMUP" --value-size "$VALUE_SIZE" --keys "$KEYS" --json 2>>"$WORK/load.log"); then
        printf '{"side":"%s","round":%s,"report":%s}\n' "$side" "$round" "$line" >>"$RAW"
        log "  $workload x$clients: $(printf '%s' "$line" | grep -o '"throughput":[0-9.]*' | cut -d: -f2 | cut -d. -f1) ops/s"
      else
        log "  $workload x$clients: the run failed"; tail -n 5 "$WORK/load.log" >&2
      fi
    done
    stop_cluster
  done
done

python3 - "$RAW" "$BEFORE" "$AFTER" "$ROUNDS" "$DURATION" >"$TABLE" <<'EOF'
import json, statistics, sys
raw, before, after, rounds, duration = sys.argv[1:6]
runs = {}
for line in open(raw):
    row = json.loads(line)
    r = row["report"]
    key = (r["workload"], r["clients"], r.get("connections"))
    runs.setdefault(key, {}).setdefault(row["side"], []).append(r)
def med(reports, field):
    return statistics.median(x[field] for x in reports)
def lat(reports, q):
    return statistics.median(x["latency_us"][q] for x in reports) / 1000
print(f"# kvraft before/after ({rounds} round(s) of {duration} per run, medians)\n")
print(f"- before: `{before}`\n- after: `{after}`\n")
print("| workload | before req/s | before p50 / p99 | after req/s | after p50 / p99 | after/before |")
print("|---|---:|---|---:|---|---:|")
for (workload, clients, connections), sides in runs.items():
    if "before" not in sides or "after" not in sides:
        continue
    b, a = sides["before"], sides["after"]
    tb, ta = med(b, "throughput"), med(a, "throughput")
    print(f"| {workload}, {clients} client(s) over {connections} | {tb:,.0f} | "
          f"{lat(b, 'p50'):.2f} / {lat(b, 'p99'):.2f} ms | {ta:,.0f} | "
          f"{lat(a, 'p50'):.2f} / {lat(a, 'p99'):.2f} ms | {ta / tb:.2f}x |")
EOF
cat "$TABLE"
log "wrote $TABLE and $RAW"
