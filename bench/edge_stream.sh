#!/usr/bin/env bash
# End-to-end benchmark of edgeqc-edge, in one run: a stream of 640x480 MJPEG frames through the node (read, split,
# decode, preprocess, infer, decide, spool, publish with QoS 1 to a local mosquitto) against the bare inference
# throughput of the same model (the plan alone), float and int8. Two measurements per model:
#   - throughput: the stream as fast as the node takes it (frames/s from the first frame read to the last result);
#   - latency: the stream paced at 30 frames/s (a camera) and at 80 % of that model's stream throughput, measured
#     from the frame read (the result's "time") to its arrival at a subscriber (after the broker's acknowledgement).
# Prints a markdown table; copy it into bench/RESULTS.md with the machine and the date.
#
# Usage: bench/edge_stream.sh
# Environment: THREADS [2] (bare inference)  EDGE_THREADS [0] (the node's --threads: 0 lets it choose, one per lane
# with its default of a lane per core)  EDGE_OPTIONS [] (more node flags, e.g. --full-decode)  FRAMES [2000]  SECONDS [5] (bare figures)  BATCH [1]  BUILD [build]  PYTHON [/usr/bin/python3]
# Run it on an otherwise idle machine.
set -euo pipefail

THREADS=${THREADS:-2}
EDGE_THREADS=${EDGE_THREADS:-0}
EDGE_OPTIONS=${EDGE_OPTIONS:-}
FRAMES=${FRAMES:-2000}
seconds=$(printenv SECONDS || echo 5)
BATCH=${BATCH:-1}
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
cd "$(dirname "${BASH_SOURCE[0]}")/.."
for tool in edgeqc-edge edgeqc_edge_stream; do
  [ -x "$BUILD/$tool" ] || { echo "edge_stream.sh: no $BUILD/$tool; build the benchmarks" >&2; exit 1; }
done
edge=$(realpath "$BUILD/edgeqc-edge")
helper=$(realpath "$BUILD/edgeqc_edge_stream")

work=$(mktemp -d)
broker_pid=
cleanup() { [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

echo "== models, bare inference ($THREADS threads) and a $FRAMES-frame stream"
OMP_NUM_THREADS=$THREADS "$helper" prepare "$work" "$FRAMES" "$seconds" | tee "$work/prepare.txt"

port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf 'listener %s 127.0.0.1\nallow_anonymous true\nuser %s\n' "$port" "$(id -un)" > "$work/mosquitto.conf"
mosquitto=$(command -v mosquitto || echo /usr/sbin/mosquitto)
"$mosquitto" -c "$work/mosquitto.conf" > "$work/mosquitto.log" 2>&1 &
broker_pid=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done

# run NAME MODEL FEED: the node on the stream FEED writes (a command), results collected by a subscriber;
# prints the node's frames/s and the latency percentiles in ms.
run() {
  local name=$1 model=$2 feed=$3
  rm -rf "$work/spool"
  mosquitto_sub -h 127.0.0.1 -p "$port" -q 1 -t "edgeqc/bench/result" -C "$FRAMES" -W 600 -F '%U %p' \
    > "$work/$name.received" &
  local subscriber=$!
  sleep 0.3
  eval "$feed" | "$edge" "$model" --mjpeg-stdin --broker "mqtt://127.0.0.1:$port" --node bench --output none \
    --stats-interval 0 --threads "$EDGE_THREADS" --batch "$BATCH" --spool "$work/spool" $EDGE_OPTIONS 2> "$work/$name.log"
  wait "$subscriber" || true
  "$PYTHON" - "$work/$name.received" "$work/$name.log" <<'PY'
import datetime, json, re, sys
latencies = []
for line in open(sys.argv[1]):
    received, payload = line.split(" ", 1)
    sent = datetime.datetime.strptime(json.loads(payload)["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
    sent = sent.replace(tzinfo=datetime.timezone.utc).timestamp()
    latencies.append((float(received) - sent) * 1000)
latencies.sort()
pick = lambda q: latencies[min(len(latencies) - 1, max(0, int(-(-q * len(latencies) // 1)) - 1))]
fps = re.search(r"\(([0-9.]+) frames/s\), peak memory ([0-9.]+) MiB", open(sys.argv[2]).read())
print(f"{fps.group(1)} {pick(0.5):.1f} {pick(0.95):.1f} {pick(0.99):.1f} {len(latencies)} {fps.group(2)}")
PY
}

echo
echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), bare $THREADS threads, node --threads $EDGE_THREADS," \
  "batch $BATCH${EDGE_OPTIONS:+, $EDGE_OPTIONS}, $FRAMES frames of 640x480"
echo
echo "| model | bare inference img/s | stream feed | stream frames/s | of bare | latency p50 / p95 / p99 ms | p99 / p50 | results | peak RSS MiB |"
echo "|---|---:|---|---:|---:|---:|---:|---:|---:|"
for model in float int8; do
  bare=$(sed -n "s/^bare $model batch 1: \([0-9.]*\) img\/s.*/\1/p" "$work/prepare.txt")
  read -r fps p50 p95 p99 n rss < <(run "$model-max" "$work/$model.eqc" "cat '$work/stream.mjpeg'")
  row() { echo "| $model | $bare | $1 | $2 | $(awk -v a="$2" -v b="$bare" 'BEGIN { printf "%.0f %%", 100 * a / b }') | $3 / $4 / $5 | $(awk -v a="$5" -v b="$3" 'BEGIN { printf "%.2f", a / b }') | $6 | $7 |"; }
  row "as fast as it goes" "$fps" "$p50" "$p95" "$p99" "$n" "$rss"
  for rate in 30 $(awk -v f="$fps" 'BEGIN { printf "%.0f", 0.8 * f }'); do
    read -r paced_fps p50 p95 p99 n rss < <(run "$model-$rate" "$work/$model.eqc" "'$helper' feed '$work/stream.mjpeg' $rate")
    row "paced at $rate frames/s" "$paced_fps" "$p50" "$p95" "$p99" "$n" "$rss"
  done
done
