#!/usr/bin/env bash
# The Uploads API at size: one upload of GIB GiB in 64 MiB parts, PARALLEL parts at a time, against plain
# POST /v1/files of the same 64 MiB bodies at the same parallelism (the reference), on one Release server.
# Usage: bench/uploads.sh [GIB=8] [PARALLEL=4]
# Prints throughput of both, the time to complete the upload, the time until its file has its sha256 (set at
# completion, or by the background pass), the download rate of the assembled file, and the
# server's peak RSS (VmHWM, reset between phases through /proc/<pid>/clear_refs).
set -euo pipefail
cd "$(dirname "$0")/.."

gib="${1:-8}"
parallel="${2:-4}"
parts=$((gib * 16))
part_bytes=$((64 * 1024 * 1024))
total=$((parts * part_bytes))
work="$(mktemp -d)"
port=18090
key="sk-bench-uploads"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if [ -f "$work/server.log" ] && grep -q "hashed at completion" "$work/server.log"; then
    echo "note: the upload was hashed at completion (its parts were not hashed in order while they streamed)"
  fi
  if [ -f "$work/server.log" ] && grep -q "hashed after its upload completed" "$work/server.log"; then
    echo "note: the file's SHA-256 was computed after completion (its parts were not hashed in order while they streamed)"
  fi
  rm -rf "$work"
}
trap cleanup EXIT

dotnet build src/Wharf.Server -c Release -v quiet -nologo >/dev/null
dd if=/dev/urandom of="$work/part.bin" bs=1M count=64 iflag=fullblock status=none

dotnet src/Wharf.Server/bin/Release/net10.0/Wharf.Server.dll \
  --urls "http://127.0.0.1:$port" --Wharf:DataDir="$work/data" --Wharf:Auth:BootstrapKey="$key" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
base="http://127.0.0.1:$port/v1"
auth="Authorization: Bearer $key"
now() { date +%s.%N; }
peak_mb() { awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$server_pid/status"; }
reset_peak() { echo 5 > "/proc/$server_pid/clear_refs"; }
export base auth work

# Reference: plain POST /v1/files of each 64 MiB body, PARALLEL at a time.
reset_peak
t0=$(now)
seq 1 "$parts" | xargs -P "$parallel" -I{} sh -c \
  'curl -fsS "$base/files" -H "$auth" -F purpose=batch -F "file=@$work/part.bin" | sed -E "s/.*\"id\":\"([^\"]+)\".*/\1/" > "$work/f{}"'
t1=$(now)
files_peak=$(peak_mb)
for f in "$work"/f*; do curl -fsS -X DELETE "$base/files/$(cat "$f")" -H "$auth" >/dev/null; done

# The upload: create, parts in parallel, complete.
reset_peak
upload=$(curl -fsS "$base/uploads" -H "$auth" -H 'Content-Type: application/json' \
  -d "{\"filename\":\"big.bin\",\"purpose\":\"batch\",\"bytes\":$total,\"mime_type\":\"application/octet-stream\"}" \
  | sed -E 's/.*"id":"(upload_[0-9a-f]+)".*/\1/')
export upload
t2=$(now)
seq 1 "$parts" | xargs -P "$parallel" -I{} sh -c \
  'curl -fsS "$base/uploads/$upload/parts" -H "$auth" -F "data=@$work/part.bin" | sed -E "s/.*\"id\":\"(part_[0-9a-f]+)\".*/\1/" > "$work/p{}"'
t3=$(now)
ids=$(for i in $(seq 1 "$parts"); do printf '"%s",' "$(cat "$work/p$i")"; done)
curl -fsS "$base/uploads/$upload/complete" -H "$auth" -H 'Content-Type: application/json' \
  -d "{\"part_ids\":[${ids%,}]}" > "$work/complete.json"
t4=$(now)
upload_peak=$(peak_mb)
file=$(sed -E 's/.*"file":\{"id":"(file-[0-9A-Za-z]+)".*/\1/' "$work/complete.json")
grep -q '"status":"completed"' "$work/complete.json"
# The file's sha256 is set at completion, or shortly after by the background pass: time until it is.
until curl -fsS "$base/files/$file" -H "$auth" | grep -q '"sha256":"'; do sleep 0.05; done
t_sha=$(now)

reset_peak
t_dl=$(now)
curl -fsS "$base/files/$file/content" -H "$auth" -o /dev/null
t5=$(now)
download_peak=$(peak_mb)

awk -v b="$total" -v p="$parallel" -v t0="$t0" -v t1="$t1" -v t2="$t2" -v t3="$t3" -v t4="$t4" -v t5="$t5" -v ts="$t_sha" -v td="$t_dl" \
    -v fp="$files_peak" -v up="$upload_peak" -v dp="$download_peak" 'BEGIN {
  ref = b/1e6/(t1-t0); up_rate = b/1e6/(t3-t2)
  printf "| bytes | parallel | POST /v1/files MB/s | upload parts MB/s | ratio | complete s | complete s/GB | sha256 set after s | download MB/s | peak RSS files MB | peak RSS upload MB | peak RSS download MB |\n"
  printf "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
  printf "| %.0f | %d | %.0f | %.0f | %.2f | %.2f | %.3f | %.2f | %.0f | %s | %s | %s |\n", b, p, ref, up_rate, up_rate/ref, t4-t3, (t4-t3)/(b/1e9), ts-t3, b/1e6/(t5-td), fp, up, dp
}'
