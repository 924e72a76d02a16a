#!/usr/bin/env bash
# Peak server memory while uploading and then downloading one large file through the Files API.
# Usage: bench/memory.sh [MiB]   (file size in MiB, default 2048)
# Prints the file size, the upload and download throughput, and the server's peak RSS (VmHWM) after each phase.
set -euo pipefail
cd "$(dirname "$0")/.."

mib="${1:-2048}"
work="$(mktemp -d)"
port=18089
key="sk-bench-memory"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

dotnet build src/Wharf.Server -c Release -v quiet -nologo >/dev/null
dd if=/dev/urandom of="$work/big.bin" bs=1M count="$mib" iflag=fullblock status=none
bytes=$(stat -c %s "$work/big.bin")

dotnet src/Wharf.Server/bin/Release/net10.0/Wharf.Server.dll \
  --urls "http://127.0.0.1:$port" --Wharf:DataDir="$work/data" --Wharf:Auth:BootstrapKey="$key" \
  --Wharf:Files:MaxUploadBytes=4294967296 >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done

rss() { awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$server_pid/status"; }
idle=$(awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$server_pid/status")

up_start=$(date +%s.%N)
id=$(curl -fsS "http://127.0.0.1:$port/v1/files" -H "Authorization: Bearer $key" \
  -F purpose=batch -F "file=@$work/big.bin" | sed -E 's/.*"id":"([^"]+)".*/\1/')
up_end=$(date +%s.%N)
peak_upload=$(rss)

curl -fsS "http://127.0.0.1:$port/v1/files/$id/content" -H "Authorization: Bearer $key" -o "$work/back.bin"
down_end=$(date +%s.%N)
peak_download=$(rss)

cmp -s "$work/big.bin" "$work/back.bin" && same=yes || same=NO

awk -v b="$bytes" -v us="$up_start" -v ue="$up_end" -v de="$down_end" -v idle="$idle" \
    -v pu="$peak_upload" -v pd="$peak_download" -v same="$same" 'BEGIN {
  printf "| file bytes | upload MB/s | download MB/s | idle RSS MB | peak RSS after upload MB | peak RSS after download MB | bytes identical |\n"
  printf "|---|---|---|---|---|---|---|\n"
  printf "| %.0f | %.0f | %.0f | %s | %s | %s | %s |\n", b, b/1e6/(ue-us), b/1e6/(de-ue), idle, pu, pd, same
}'
