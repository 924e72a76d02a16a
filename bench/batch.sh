#!/usr/bin/env bash
# The batch engine on the `mock` provider, in one run: a batch of 50,000 chat-completion lines (a) with 20 ms of
# latency per call and 64 lines in flight, against the ideal wall time lines x latency / concurrency, and (b) with
# no latency, in lines per second. Wharf (Release) on loopback, its embedded store. One markdown table.
# Usage: bench/batch.sh [--quick]
#   --quick   a smoke with 2,000 lines (CI runs it so the harness cannot rot); figures are not meaningful.
# Each scenario runs 3 times (once with --quick); the table gives the median. Wall time is the client's, from the
# batch's creation to its final status seen by polling every 50 ms (so it includes validation and finalising).
# Wharf's RSS is read at the start, every poll (the peak is kept) and at the end; its CPU time (user + system, from
# /proc) around each batch, divided by the lines.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
[ "${1:-}" = "--quick" ] && quick=1

need=()
for tool in curl python3; do command -v "$tool" >/dev/null || need+=("$tool"); done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

if [ $quick = 1 ]; then lines=2000; reps=1; else lines=50000; reps=3; fi
latency_ms=20; concurrency=64

work="$(mktemp -d)"
port=18480
key="sk-bench-batch-00000000000000"
wharf_pid=""
cleanup() {
  [ -n "$wharf_pid" ] && { kill "$wharf_pid" 2>/dev/null || true; wait "$wharf_pid" 2>/dev/null || true; }
  if [ -n "${BENCH_KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

dotnet build src/Wharf.Server -c Release -v quiet -nologo >/dev/null
dotnet src/Wharf.Server/bin/Release/net10.0/Wharf.Server.dll --urls "http://127.0.0.1:$port" \
  --Wharf:DataDir="$work/data" --Wharf:Auth:BootstrapKey="$key" \
  --Wharf:Providers:slow:Type=mock --Wharf:Providers:slow:LatencyMs=$latency_ms \
  --Wharf:Providers:fast:Type=mock --Wharf:Providers:fast:LatencyMs=0 \
  --Wharf:Batches:LineConcurrency=$concurrency --Wharf:Batches:PollIntervalMilliseconds=50 \
  --Logging:LogLevel:Default=Warning >"$work/wharf.log" 2>&1 &
wharf_pid=$!
tries=0
until curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; do
  tries=$((tries + 1))
  if [ $tries -gt 6000 ] || ! kill -0 "$wharf_pid" 2>/dev/null; then
    echo "Wharf did not become ready:" >&2; tail -20 "$work/wharf.log" >&2; exit 1
  fi
  sleep 0.01
done

rss_mb() { awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$wharf_pid/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$wharf_pid/stat"; } # user + system, in clock ticks
ticks_per_s=$(getconf CLK_TCK)
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
auth=(-H "Authorization: Bearer $key")
rss_start=$(rss_mb)

python3 - "$lines" >"$work/input.jsonl" <<'PY'
import json, sys
for i in range(int(sys.argv[1])):
    print(json.dumps({"custom_id": f"req-{i}", "method": "POST", "url": "/v1/chat/completions",
                      "body": {"model": "mock-model", "messages": [{"role": "user", "content": f"Say hello to number {i}."}]}},
                     separators=(",", ":")))
PY
input_id=$(curl -fs "${auth[@]}" -F purpose=batch -F "file=@$work/input.jsonl" "http://127.0.0.1:$port/v1/files" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')

echo "$rss_start" >"$work/rss_peak"
# Runs one batch on the provider, checks its result, prints "wall_seconds cpu_microseconds_per_line".
run_batch() {
  local provider=$1 t0 t1 c0 c1 id status body
  t0=$(date +%s%N); c0=$(cpu_ticks)
  id=$(curl -fs "${auth[@]}" -H 'content-type: application/json' \
    -d "{\"input_file_id\":\"$input_id\",\"endpoint\":\"/v1/chat/completions\",\"completion_window\":\"24h\",\"provider\":\"$provider\"}" \
    "http://127.0.0.1:$port/v1/batches" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  while true; do
    body=$(curl -fs "${auth[@]}" "http://127.0.0.1:$port/v1/batches/$id")
    status=$(printf '%s' "$body" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
    local rss; rss=$(rss_mb); [ "$rss" -gt "$(cat "$work/rss_peak")" ] && echo "$rss" >"$work/rss_peak"
    case "$status" in completed|failed|expired|cancelled) break ;; esac
    sleep 0.05
  done
  t1=$(date +%s%N); c1=$(cpu_ticks)
  printf '%s' "$body" | python3 -c '
import json, sys
b = json.load(sys.stdin); n = int(sys.argv[1]); c = b["request_counts"]
if b["status"] != "completed" or c["total"] != n or c["completed"] != n or c["failed"] != 0:
    sys.exit("batch ended %s with %s" % (b["status"], c))' "$lines" >&2
  local output_id; output_id=$(printf '%s' "$body" | python3 -c 'import json,sys; print(json.load(sys.stdin)["output_file_id"])')
  local got; got=$(curl -fs "${auth[@]}" "http://127.0.0.1:$port/v1/files/$output_id/content" | python3 -c '
import json, sys
ids = [json.loads(l)["custom_id"] for l in sys.stdin]
print(len(set(ids)) if len(ids) == len(set(ids)) else -1)')
  [ "$got" = "$lines" ] || { echo "the output file of $id holds $got distinct lines, not $lines" >&2; exit 1; }
  awk -v a="$t0" -v b="$t1" -v c="$((c1 - c0))" -v hz="$ticks_per_s" -v n="$lines" \
    'BEGIN {printf "%.3f %.0f", (b - a) / 1e9, c / hz * 1e6 / n}'
}

slow=(); fast=(); slow_cpu=(); fast_cpu=(); rss_after=()
for ((r = 0; r < reps; r++)); do
  read -r s c <<<"$(run_batch slow)"; slow+=("$s"); slow_cpu+=("$c"); rss_after+=("$(rss_mb)")
  read -r s c <<<"$(run_batch fast)"; fast+=("$s"); fast_cpu+=("$c"); rss_after+=("$(rss_mb)")
done
rss_end=$(rss_mb); rss_peak=$(cat "$work/rss_peak")

slow_s=$(printf '%s\n' "${slow[@]}" | median)
fast_s=$(printf '%s\n' "${fast[@]}" | median)
slow_c=$(printf '%s\n' "${slow_cpu[@]}" | median)
fast_c=$(printf '%s\n' "${fast_cpu[@]}" | median)
ideal_s=$(awk -v n="$lines" -v l="$latency_ms" -v c="$concurrency" 'BEGIN {printf "%.3f", n * l / 1000 / c}')
echo
echo "| scenario | lines | runs (s) | median | reference | result | target | server CPU per line (median) |"
echo "|---|---:|---|---:|---:|---:|---|---:|"
echo "| (a) mock, ${latency_ms} ms latency, ${concurrency} in flight | $lines | ${slow[*]} | ${slow_s} s | ideal ${ideal_s} s | $(awk -v a="$slow_s" -v b="$ideal_s" 'BEGIN {printf "%.2f", a / b}')x ideal | <= 1.1x | ${slow_c} µs |"
echo "| (b) mock, no latency | $lines | ${fast[*]} | ${fast_s} s | - | $(awk -v n="$lines" -v s="$fast_s" 'BEGIN {printf "%.0f", n / s}') lines/s | >= 10,000/s | ${fast_c} µs |"
echo
echo "Wharf RSS: ${rss_start} MB at start (input uploaded), after each batch ${rss_after[*]} MB, ${rss_peak} MB peak while batches ran, ${rss_end} MB at the end (target: flat, < 250 MB)."
