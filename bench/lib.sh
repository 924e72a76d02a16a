# Pieces shared by the benchmark scripts (sourced by bench/run and bench/scaleout.sh): the list scenarios, the rows
# both catalogs are seeded with, wrk's measurements and medians.

# The median of the numbers on stdin, one a line.
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
now() { date +%s.%N; }

# wrk, 2 threads and 32 connections for $secs seconds: the request rate, or "rate p50 p99".
wrk_rate() { wrk -t2 -c32 -d"${secs}s" --latency "$@" 2>/dev/null | awk '/Requests\/sec/ {print $2}'; }
wrk_lat() { wrk -t2 -c32 -d"${secs}s" --latency "$@" 2>/dev/null | awk '$1=="50%" {p50=$2} $1=="99%" {p99=$2} /Requests\/sec/ {r=$2} END {print r, p50, p99}'; }

# The seeded second workspace and its key (the first is the bootstrap key's workspace, "default").
bench_large_workspace=ws_0000000000000000000000000000000b
bench_large_key_id=key_0000000000000000000000000000000b
bench_key_scopes='files:read files:write batches:read batches:write'

# list_scenarios SMALL_KEY LARGE_KEY LARGE_ROWS: sets `scenarios`, each "query|key|label" (the list URLs measured).
list_scenarios() {
  scenarios=("limit=20|$1|1,000 files" "limit=20|$2|$3 files"
             "limit=20&purpose=batch|$2|$3 files, purpose"
             "limit=20&metadata.k=v|$2|$3 files, metadata.k=v")
}

# The rows of the list scenarios, as SQL for each catalog (the schema is the one Wharf created at its first start):
# a second workspace "large" with LARGE_KEY, SMALL_ROWS files in "default" and LARGE_ROWS in "large", ids in creation
# order, half purpose=batch, metadata k=v on every tenth file (in `files.metadata` and in the metadata index).
# sqlite_seed_sql SMALL_ROWS LARGE_ROWS LARGE_KEY
sqlite_seed_sql() {
  local hash_hex; hash_hex=$(printf '%s' "$3" | sha256sum | cut -d' ' -f1)
  cat <<SQL
INSERT INTO workspaces (id, name, created_at) VALUES ('$bench_large_workspace', 'large', 1);
INSERT INTO api_keys (id, workspace_id, name, hash, prefix, created_at, scopes)
  VALUES ('$bench_large_key_id', '$bench_large_workspace', 'bench', X'$hash_hex', '…', 1, '$bench_key_scopes');
CREATE TEMP TABLE seed(ws TEXT, fid TEXT, n INTEGER);
INSERT INTO seed SELECT (SELECT id FROM workspaces WHERE name = 'default'), 'file-000000000' || '1' || printf('%012d', value), value
  FROM generate_series(1, $1);
INSERT INTO seed SELECT '$bench_large_workspace', 'file-000000000' || '2' || printf('%012d', value), value
  FROM generate_series(1, $2);
INSERT INTO files (workspace_id, id, bytes, created_at, filename, purpose, status, provider, sha256, metadata)
  SELECT ws, fid, 1024, 1700000000, 'seed.jsonl', CASE n % 2 WHEN 0 THEN 'batch' ELSE 'assistants' END,
         'processed', 'local', 'x', CASE WHEN n % 10 = 0 THEN '{"k":"v"}' END FROM seed;
INSERT INTO file_metadata (workspace_id, key, value, file_id) SELECT ws, 'k', 'v', fid FROM seed WHERE n % 10 = 0;
SQL
}

# postgres_seed_sql SMALL_ROWS LARGE_ROWS LARGE_KEY: the same rows, set-based (generate_series), then VACUUM ANALYZE:
# the statistics and visibility map autovacuum would give the tables within a minute of such a load.
postgres_seed_sql() {
  local hash_hex; hash_hex=$(printf '%s' "$3" | sha256sum | cut -d' ' -f1)
  cat <<SQL
\set ON_ERROR_STOP on
BEGIN;
INSERT INTO workspaces (id, name, created_at) VALUES ('$bench_large_workspace', 'large', 1);
INSERT INTO api_keys (id, workspace_id, name, hash, prefix, created_at, scopes)
  VALUES ('$bench_large_key_id', '$bench_large_workspace', 'bench', decode('$hash_hex', 'hex'), '…', 1, '$bench_key_scopes');
CREATE TEMP TABLE seed ON COMMIT DROP AS
  SELECT s.ws, 'file-000000000' || s.tag || lpad(n::text, 12, '0') AS fid, n
  FROM (VALUES ((SELECT id FROM workspaces WHERE name = 'default'), '1', $1),
               ('$bench_large_workspace', '2', $2)) AS s(ws, tag, rows),
       generate_series(1, s.rows) AS n;
INSERT INTO files (workspace_id, id, bytes, created_at, filename, purpose, status, provider, sha256, metadata)
  SELECT ws, fid, 1024, 1700000000, 'seed.jsonl', CASE n % 2 WHEN 0 THEN 'batch' ELSE 'assistants' END,
         'processed', 'local', 'x', CASE WHEN n % 10 = 0 THEN '{"k":"v"}' END FROM seed;
INSERT INTO file_metadata (workspace_id, key, value, file_id) SELECT ws, 'k', 'v', fid FROM seed WHERE n % 10 = 0;
COMMIT;
VACUUM (ANALYZE) workspaces, api_keys, files, file_metadata;
SQL
}
