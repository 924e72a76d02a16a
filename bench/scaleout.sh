#!/usr/bin/env bash
# The scale-out store against the embedded one, in one run (issue 15, item 6): the list scenarios of bench/run on
# Wharf with the SQLite catalog and on Wharf with the PostgreSQL catalog (same Release build, same seeded rows),
# then one large file uploaded and downloaded through Wharf on PostgreSQL + S3, with the server's peak RSS.
# Usage: bench/scaleout.sh [--quick]
#   --quick   a smoke with small sizes (10,000 files, 64 MiB, 2 s runs; CI runs it so the harness cannot rot); its
#             figures mean nothing.
# It starts its own throwaway PostgreSQL cluster (initdb in a temp directory, a free loopback port; as root through
# `runuser postgres`) and s3rver (a free port), found or installed by scripts/services.sh as ./test.sh does, and
# stops and removes all of it on exit. Full run: each figure the median of 3 measurements, SQLite and PostgreSQL
# measured in interleaved pairs (the order alternating), the PostgreSQL / SQLite ratio the median of the pairs' ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
source scripts/services.sh

quick=0
[ "${1:-}" = "--quick" ] && quick=1

if [ $quick = 1 ]; then
  big_mib=64; small_rows=1000; large_rows=10000; secs=2; reps=1; warm=1
else
  big_mib=1024; small_rows=1000; large_rows=1000000; secs=10; reps=3; warm=10
fi

need=()
for tool in wrk sqlite3 curl; do command -v "$tool" >/dev/null || need+=("$tool"); done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
install_test_services
pg_bin="$(dirname "$(readlink -f "$WHARF_TEST_INITDB")")"   # pg_ctl and psql are beside the real initdb

work="$(mktemp -d)"
chmod 755 "$work"          # the PostgreSQL cluster runs as another user when this runs as root
key_small="sk-bench-small-0000000000"; key_large="sk-bench-large-0000000000"
bucket=wharf-bench
pg_root="$work/pg"; pg_data="$work/pg/data"
run_pg=()
[ "$(id -u)" = 0 ] && run_pg=(runuser -u postgres --)
declare -A node_pid=([sqlite]="" [postgres]="")
s3rver_pid=""

stop_node() {
  local pid=${node_pid[$1]}
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  node_pid[$1]=""
}
cleanup() {
  stop_node sqlite
  stop_node postgres
  if [ -f "$pg_data/postmaster.pid" ]; then
    "${run_pg[@]}" "$pg_bin/pg_ctl" stop -D "$pg_data" -m immediate -w >/dev/null 2>&1 || true
  fi
  [ -n "$s3rver_pid" ] && { kill "$s3rver_pid" 2>/dev/null || true; wait "$s3rver_pid" 2>/dev/null || true; }
  if [ -n "${BENCH_KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT      # so that an interrupted run still stops the cluster, s3rver and the nodes (the EXIT trap)
trap 'exit 143' TERM

# A loopback port nothing listens on (a connection to it is refused).
free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
}

# --- PostgreSQL: a throwaway cluster, the server's defaults but for its address (durable commits, as deployed) ---
mkdir -p "$pg_root"
[ ${#run_pg[@]} -gt 0 ] && chown postgres "$pg_root"
pg_port=$(free_port)
"${run_pg[@]}" "$WHARF_TEST_INITDB" -D "$pg_data" -U wharf --auth=trust --no-sync -E UTF8 \
  --locale=C.UTF-8 --locale-provider=icu --icu-locale=en-US >"$work/initdb.log" 2>&1 \
  || { echo "initdb failed:" >&2; cat "$work/initdb.log" >&2; exit 1; }
"${run_pg[@]}" "$pg_bin/pg_ctl" start -D "$pg_data" -w -t 60 -l "$pg_root/server.log" \
  -o "-p $pg_port -k $pg_root -c listen_addresses=127.0.0.1" >/dev/null \
  || { echo "PostgreSQL did not start:" >&2; cat "$pg_root/server.log" >&2; exit 1; }
psql() { "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U wharf -X -q -v ON_ERROR_STOP=1 "$@"; }
psql -d postgres -c 'CREATE DATABASE wharf;'
pg_connection="Host=127.0.0.1;Port=$pg_port;Database=wharf;Username=wharf"

# --- s3rver: a throwaway S3-compatible store; port 0 lets the system choose, and s3rver prints the one it got ---
# (OpenSSL's legacy provider: s3rver makes a truncated listing's continuation token with a cipher only it still has.)
mkdir -p "$work/s3"
NODE_OPTIONS=--openssl-legacy-provider "$WHARF_TEST_S3RVER" --address 127.0.0.1 --port 0 --directory "$work/s3" --silent --configure-bucket "$bucket" \
  >"$work/s3rver.log" 2>&1 &
s3rver_pid=$!
s3_port=""
for _ in $(seq 300); do
  s3_port=$(sed -nE 's/.*S3rver listening on [^:]+:([0-9]+).*/\1/p' "$work/s3rver.log" | head -1)
  [ -n "$s3_port" ] && break
  kill -0 "$s3rver_pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$s3_port" ] || { echo "s3rver did not start:" >&2; cat "$work/s3rver.log" >&2; exit 1; }

# --- Wharf: one Release build, a node per catalog, each with its own data directory and port ---
dotnet build src/Wharf.Server -c Release -v quiet -nologo >/dev/null
wharf_dll=src/Wharf.Server/bin/Release/net10.0/Wharf.Server.dll
declare -A node_port=([sqlite]=$(free_port) [postgres]=$(free_port))
while [ "${node_port[postgres]}" = "${node_port[sqlite]}" ] || [ "${node_port[postgres]}" = "$pg_port" ]; do
  node_port[postgres]=$(free_port)
done
node_args_sqlite=()
node_args_postgres=(
  --Wharf:Storage:Catalog=postgres --Wharf:Storage:Postgres:ConnectionString="$pg_connection"
  --Wharf:Storage:Blobs=s3 --Wharf:Storage:S3:ServiceUrl="http://127.0.0.1:$s3_port" --Wharf:Storage:S3:Bucket="$bucket"
  --Wharf:Storage:S3:ForcePathStyle=true --Wharf:Storage:S3:Prefix=bench/)
declare -A startup_ms
base() { echo "http://127.0.0.1:${node_port[$1]}"; }

# start_node sqlite|postgres: starts that node and waits for its first 200 on /readyz (startup_ms[node]).
start_node() {
  local name=$1 t0 tries=0 args_name="node_args_$1[@]"
  t0=$(date +%s%N)
  # s3rver's built-in credentials, given as the docs advise for a secret (the environment, not the command line).
  Wharf__Storage__S3__AccessKey=S3RVER Wharf__Storage__S3__SecretKey=S3RVER \
  dotnet "$wharf_dll" --urls "$(base "$name")" --Wharf:DataDir="$work/data-$name" \
    --Wharf:Auth:BootstrapKey="$key_small" --Wharf:Files:MaxUploadBytes=4294967296 \
    --Logging:LogLevel:Default=Warning "${!args_name}" >>"$work/wharf-$name.log" 2>&1 &
  node_pid[$name]=$!
  until curl -fs "$(base "$name")/readyz" >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ $tries -gt 12000 ] || ! kill -0 "${node_pid[$name]}" 2>/dev/null; then
      echo "Wharf on $name did not become ready:" >&2; tail -20 "$work/wharf-$name.log" >&2; exit 1
    fi
    sleep 0.005
  done
  startup_ms[$name]=$(( ($(date +%s%N) - t0) / 1000000 ))
}
rss_mb() { awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/${node_pid[$1]}/status"; }
peak_mb() { awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/${node_pid[$1]}/status"; }
reset_peak() { echo 5 > "/proc/${node_pid[$1]}/clear_refs"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a/b; else print "-" }'; }

# --- the same rows in both catalogs, written while each node is stopped, into the schema it created at its first
#     start (two workspaces, $small_rows and $large_rows files, half purpose=batch, metadata k=v on every tenth) ---
start_node sqlite; stop_node sqlite
start_node postgres; stop_node postgres
seed_t0=$(now)
sqlite_seed_sql "$small_rows" "$large_rows" "$key_large" | sqlite3 "$work/data-sqlite/wharf.db" >/dev/null
seed_sqlite_s=$(awk -v a="$seed_t0" -v b="$(now)" 'BEGIN {printf "%.1f", b-a}')
seed_t0=$(now)
postgres_seed_sql "$small_rows" "$large_rows" "$key_large" | psql -d wharf >/dev/null
seed_postgres_s=$(awk -v a="$seed_t0" -v b="$(now)" 'BEGIN {printf "%.1f", b-a}')
start_node sqlite
start_node postgres
startup_sqlite_seeded=${startup_ms[sqlite]}; startup_postgres_seeded=${startup_ms[postgres]}
idle_sqlite=$(rss_mb sqlite); idle_postgres=$(rss_mb postgres)

# Both nodes must answer every scenario with the same page before anything is measured.
list_scenarios "$key_small" "$key_large" "$large_rows"
ids() { grep -oE '"id":"file-[0-9A-Za-z]+"' | tr '\n' ' '; }
for scenario in "${scenarios[@]}"; do
  IFS='|' read -r query key label <<<"$scenario"
  page_sqlite=$(curl -fsS "$(base sqlite)/v1/files?$query" -H "Authorization: Bearer $key")
  page_postgres=$(curl -fsS "$(base postgres)/v1/files?$query" -H "Authorization: Bearer $key")
  if [ "$(ids <<<"$page_sqlite")" != "$(ids <<<"$page_postgres")" ] || [ "$(ids <<<"$page_sqlite" | wc -w)" != 20 ]; then
    echo "the two catalogs answer $query ($label) differently:" >&2
    echo "sqlite:   $(ids <<<"$page_sqlite")" >&2; echo "postgres: $(ids <<<"$page_postgres")" >&2
    exit 1
  fi
done

# --- list pages: wrk, 32 connections; a warm-up of every scenario on both nodes first (the JIT, see bench/run) ---
for scenario in "${scenarios[@]}"; do
  IFS='|' read -r query key _ <<<"$scenario"
  for name in sqlite postgres; do
    wrk -t2 -c32 -d"${warm}s" -H "Authorization: Bearer $key" "$(base "$name")/v1/files?$query" >/dev/null 2>&1
  done
done
declare -A rate
list_rows=(); pg_ratios=()
for scenario in "${scenarios[@]}"; do
  IFS='|' read -r query key label <<<"$scenario"
  url_sqlite="$(base sqlite)/v1/files?$query"; url_postgres="$(base postgres)/v1/files?$query"
  # Each line: SQLite's "rate p50 p99", then PostgreSQL's; the order of the two alternates from pair to pair.
  results=$(for i in $(seq $reps); do
    if [ $((i % 2)) = 1 ]; then
      s=$(wrk_lat -H "Authorization: Bearer $key" "$url_sqlite"); p=$(wrk_lat -H "Authorization: Bearer $key" "$url_postgres")
    else
      p=$(wrk_lat -H "Authorization: Bearer $key" "$url_postgres"); s=$(wrk_lat -H "Authorization: Bearer $key" "$url_sqlite")
    fi
    echo "$s $p"
  done)
  rate_s=$(awk '{print $1}' <<<"$results" | median); rate_p=$(awk '{print $4}' <<<"$results" | median)
  lat_s=$(awk -v r="$rate_s" '$1==r {print $2 " / " $3; exit}' <<<"$results")
  lat_p=$(awk -v r="$rate_p" '$4==r {print $5 " / " $6; exit}' <<<"$results")
  paired=$(awk '$1 > 0 {printf "%.4f\n", $4/$1}' <<<"$results" | median)
  rate["$query|$key|s"]=$rate_s; rate["$query|$key|p"]=$rate_p
  small_s=${rate["limit=20|$key_small|s"]}; small_p=${rate["limit=20|$key_small|p"]}
  list_rows+=("| GET /v1/files?$query ($label) | $rate_s ($lat_s) | $rate_p ($lat_p) | $(printf '%.2f' "$paired") | $(ratio "$small_s" "$rate_s") | $(ratio "$small_p" "$rate_p") |")
  pg_ratios+=("$paired")
done

# --- one large file through Wharf on PostgreSQL + S3. The node is restarted first, so that its peak RSS (VmHWM,
#     reset before each upload and each download) is this scenario's and not the heap the list loads left; one
#     unmeasured upload first (the JIT). ---
stop_node sqlite
stop_node postgres
start_node postgres
dd if=/dev/urandom of="$work/big.bin" bs=1M count="$big_mib" iflag=fullblock status=none
bytes=$(stat -c %s "$work/big.bin")
sha=$(sha256sum "$work/big.bin" | cut -d' ' -f1)
mbps() { awk -v b="$bytes" -v a="$1" -v c="$2" 'BEGIN {printf "%.0f", b/1e6/(c-a)}'; }
auth="Authorization: Bearer $key_small"
id=""
upload() {
  [ -n "$id" ] && curl -fsS -X DELETE "$(base postgres)/v1/files/$id" -H "$auth" >/dev/null
  reset_peak postgres
  local t0 answer; t0=$(now)
  answer=$(curl -fsS "$(base postgres)/v1/files" -H "$auth" -F purpose=batch -F "file=@$work/big.bin")
  up+=("$(mbps "$t0" "$(now)")"); up_peak+=("$(peak_mb postgres)")
  id=$(sed -E 's/.*"id":"([^"]+)".*/\1/' <<<"$answer")
  grep -q "\"sha256\":\"$sha\"" <<<"$answer" || { echo "the upload's sha256 is not the file's: $answer" >&2; exit 1; }
}
download() {
  reset_peak postgres
  local t0 got; t0=$(now)
  got=$(curl -fsS "$(base postgres)/v1/files/$id/content" -H "$auth" -o /dev/null -w '%{size_download}')
  down+=("$(mbps "$t0" "$(now)")"); down_peak+=("$(peak_mb postgres)")
  [ "$got" = "$bytes" ] || { echo "the download gave $got bytes, not $bytes" >&2; exit 1; }
}
up=(); up_peak=(); down=(); down_peak=()
idle_big=$(rss_mb postgres)
upload
up=(); up_peak=()
for _ in $(seq $reps); do upload; download; done
# The bytes themselves, once, outside the timings.
back=$(curl -fsS "$(base postgres)/v1/files/$id/content" -H "$auth" | sha256sum | cut -d' ' -f1)
[ "$back" = "$sha" ] || { echo "the downloaded bytes are not the uploaded ones" >&2; exit 1; }
curl -fsS -X DELETE "$(base postgres)/v1/files/$id" -H "$auth" >/dev/null
m() { printf '%s\n' "$@" | median; }
most() { printf '%s\n' "$@" | sort -g | tail -1; }
least() { printf '%s\n' "$@" | sort -g | head -1; }

# --- the tables ---
echo "List pages, req/s at 32 connections (p50 / p99), median of $reps; $small_rows and $large_rows files. Cost against 1,000 files: the rate of the plain 1,000-file page ÷ this row's rate, in the same catalog"
echo
echo "| scenario | SQLite | PostgreSQL | PostgreSQL / SQLite (target ≥ 0.5) | SQLite cost vs 1,000 files | PostgreSQL cost vs 1,000 files (target ≤ 1.5) |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${list_rows[@]}"
echo
echo "| | SQLite | PostgreSQL + S3 |"
echo "|---|---|---|"
echo "| seeding $small_rows + $large_rows files, s | $seed_sqlite_s | $seed_postgres_s |"
echo "| start-up to first 200 on /readyz, ms ($large_rows-file catalog) | $startup_sqlite_seeded | $startup_postgres_seeded |"
echo "| idle RSS after start, MB | $idle_sqlite | $idle_postgres |"
echo
echo "$big_mib MiB through Wharf on PostgreSQL + S3 (s3rver), median of $reps (POST /v1/files multipart with curl -F; download to /dev/null)"
echo
echo "| | MB/s | peak RSS, MB (highest of $reps; target < 300) |"
echo "|---|---|---|"
echo "| upload | $(m "${up[@]}") | $(most "${up_peak[@]}") |"
echo "| download | $(m "${down[@]}") | $(most "${down_peak[@]}") |"
echo "| idle RSS after restart, MB | - | $idle_big |"
echo
# meets VALUE LIMIT min|max: whether VALUE is at least (min) or at most (max) LIMIT.
meets() { awk -v v="$1" -v t="$2" -v k="$3" 'BEGIN { ok = (k == "min") ? v >= t : v <= t; print ok ? "met" : "NOT met" }'; }
lowest=$(least "${pg_ratios[@]}")
flat=$(ratio "${rate["limit=20|$key_small|p"]}" "${rate["limit=20|$key_large|p"]}")
peak=$(most "${up_peak[@]}" "${down_peak[@]}")
echo "Against issue 15's targets$([ $quick = 1 ] && echo " (a quick run: its figures mean nothing)"):"
echo "- PostgreSQL / SQLite, the lowest of the list rows: $(printf '%.2f' "$lowest") (at least 0.5: $(meets "$lowest" 0.5 min))"
echo "- PostgreSQL, the $large_rows-file page's cost against the 1,000-file page's: $flat (at most 1.5: $(meets "$flat" 1.5 max))"
echo "- peak RSS moving $big_mib MiB through PostgreSQL + S3: $peak MB (under 300: $(meets "$peak" 299.5 max))"
