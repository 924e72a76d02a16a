#!/usr/bin/env bash
# A/B of the request rate of one route between a git revision (A) and the working tree (B), on the same seeded
# catalog, alternating A and B so both see the same noise. Usage: bench/ab.sh REV [PATH=/v1/files?limit=20] [ROUNDS=5]
# Each round: a fresh copy of the catalog, the server started, 25 s of warm-up (tiered compilation with dynamic PGO
# needs 20-30 s under full load here to reach its steady rate), then 6 s of wrk -t2 -c32 measured.
# Prints req/s of A and B per round and the ratio B/A; quote the median ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
rev="${1:?usage: bench/ab.sh REV [PATH] [ROUNDS]}"; path="${2:-/v1/files?limit=20}"; rounds="${3:-5}"
for tool in wrk sqlite3 curl; do command -v "$tool" >/dev/null || { echo "needs $tool (bench/run installs it)" >&2; exit 1; }; done
work="$(mktemp -d)"; port=18290; key="sk-bench-ab-000000000000"; pid=""
cleanup() {
  [ -n "$pid" ] && { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  git worktree remove --force "$work/a" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

git worktree add --detach "$work/a" "$rev" >/dev/null 2>&1
dotnet build "$work/a/src/Wharf.Server" -c Release -v quiet -nologo >/dev/null
dotnet build src/Wharf.Server -c Release -v quiet -nologo >/dev/null
dll() { echo "$1/src/Wharf.Server/bin/Release/net10.0/Wharf.Server.dll"; }

start() { # dll data
  dotnet "$1" --urls "http://127.0.0.1:$port" --Wharf:DataDir="$2" --Wharf:Auth:BootstrapKey="$key" \
    --Logging:LogLevel:Default=Warning >>"$work/server.log" 2>&1 &
  pid=$!
  until curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; do sleep 0.05; done
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""; }

# The catalog: A's schema, 1,000 files seeded in bulk as bench/run does (half purpose=batch, metadata k=v on every tenth).
start "$(dll "$work/a")" "$work/seed"; stop
sqlite3 "$work/seed/wharf.db" >/dev/null <<SQL
CREATE TEMP TABLE seed(ws TEXT, fid TEXT, n INTEGER);
INSERT INTO seed SELECT (SELECT id FROM workspaces WHERE name = 'default'), 'file-000000000' || '1' || printf('%012d', value), value
  FROM generate_series(1, 1000);
INSERT INTO files (workspace_id, id, bytes, created_at, filename, purpose, status, provider, sha256, metadata)
  SELECT ws, fid, 1024, 1700000000, 'seed.jsonl', CASE n % 2 WHEN 0 THEN 'batch' ELSE 'assistants' END,
         'processed', 'local', 'x', CASE WHEN n % 10 = 0 THEN '{"k":"v"}' END FROM seed;
INSERT INTO file_metadata (workspace_id, key, value, file_id) SELECT ws, 'k', 'v', fid FROM seed WHERE n % 10 = 0;
SQL
rm -f "$work/seed/wharf.lock"

measure() { # dll
  rm -rf "$work/data"; cp -r "$work/seed" "$work/data"
  start "$1" "$work/data"
  wrk -t2 -c32 -d25s -H "Authorization: Bearer $key" "http://127.0.0.1:$port$path" >/dev/null
  wrk -t2 -c32 -d6s -H "Authorization: Bearer $key" "http://127.0.0.1:$port$path" | awk '/Requests\/sec/ {print $2}'
  stop
}
for i in $(seq "$rounds"); do
  a=$(measure "$(dll "$work/a")"); b=$(measure "$(dll .)")
  echo "round $i A $a B $b ratio $(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", b/a}')"
done
