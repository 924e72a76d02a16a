#!/usr/bin/env bash
# The model-request proxy path in one run: chat completions sent to nginx directly (a fixed OpenAI answer: the
# upstream, fast enough not to be the bottleneck), through Portkey's open-source gateway, through YARP forwarding
# only (bench/YarpReference: the .NET stack's own cost of a proxied request) and through Wharf, all pointed at that
# nginx, all on loopback. One markdown table. Usage: bench/proxy.sh [--quick] [--without-wharf]
#   --quick          a smoke of a few seconds of measurement (CI runs it so the harness cannot rot); figures are
#                    not meaningful.
#   --without-wharf  nginx, Portkey and YARP only (to check the harness and the references on their own).
# Non-streaming: wrk -t2 with 32 connections (and with 1, for the latency of one request alone) on each side, in
# rounds, each side once per round, the order rotating from round to round; every side is warmed up first. Added
# latency is side - direct within a round, then the median over the rounds; the throughput ratio is side / direct
# within a round, then the median. Streaming (`stream: true`): time to first byte measured by curl, sequential
# requests on one kept-alive connection per side and round, added TTFB = side - direct, median over the rounds.
# Wharf's RSS is read at its start, after the warm-up, after each round and at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0; with_wharf=1
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    --without-wharf) with_wharf=0 ;;
    *) echo "usage: bench/proxy.sh [--quick] [--without-wharf]" >&2; exit 2 ;;
  esac
done

need=()
for tool in nginx wrk curl npm; do command -v "$tool" >/dev/null || need+=("$tool"); done
command -v node >/dev/null || need+=(nodejs)
command -v ss >/dev/null || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
PATH="$PATH:/usr/sbin"

if [ $quick = 1 ]; then
  rounds=1; secs=1; single_secs=1; warm=1; ttfb_n=10
else
  rounds=3; secs=10; single_secs=5; warm=20; ttfb_n=200
fi

# Portkey's gateway as npm serves it, with the one dependency its own lock file pins lower than npm now resolves:
# @hono/node-server after 1.14.2 hands Portkey immutable response headers and every proxied answer fails with
# `TypeError: immutable` (Portkey's issues #1389 and #1550); its lock file has 1.13.5.
portkey_version=1.15.2
hono_node_server_version=1.13.5

work="$(mktemp -d)"
wharf_port=18380; nginx_port=18381; portkey_port=18382; yarp_port=18383
wharf_key="sk-bench-proxy-000000000000"
upstream_key="sk-bench-upstream-0000000000"
wharf_pid=""; nginx_pid=""; portkey_pid=""; yarp_pid=""
cleanup() {
  local pid
  for pid in "$wharf_pid" "$portkey_pid" "$yarp_pid" "$nginx_pid"; do
    [ -n "$pid" ] && { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  done
  if [ -n "${BENCH_KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

for port in $wharf_port $nginx_port $portkey_port $yarp_port; do
  if [ -n "$(ss -Hltn "sport = :$port")" ]; then echo "port $port is taken" >&2; exit 1; fi
done

rss_mb() { awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$1/status"; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]}'; }
percentile() { sort -g | awk -v p="$1" '{a[NR]=$1} END {i=int(NR*p); if (i<NR*p) i++; if (i<1) i=1; if (NR) print a[i]}'; }
fmt() { awk -v v="$1" -v d="${2:-2}" 'BEGIN {if (v=="") print "-"; else printf "%.*f", d, v}'; }
wait_http() { # url pid log what
  local tries=0
  until curl -s -o /dev/null "$1" 2>/dev/null; do
    tries=$((tries + 1))
    if [ $tries -gt 3000 ] || ! kill -0 "$2" 2>/dev/null; then
      echo "$4 did not start:" >&2; tail -20 "$3" >&2; exit 1
    fi
    sleep 0.01
  done
}
loopback_only() { # port what: every listening socket on the port is bound to 127.0.0.1
  local addresses
  addresses=$(ss -Hltn "sport = :$1" | awk '{print $4}')
  if [ -z "$addresses" ] || grep -qv "^127\.0\.0\.1:$1\$" <<<"$addresses"; then
    echo "$2 listens on: $(tr '\n' ' ' <<<"$addresses")(expected 127.0.0.1:$1 only)" >&2; exit 1
  fi
}

# --- the upstream: nginx answering POST /v1/chat/completions with a fixed chat completion, and
#     /sse/v1/chat/completions with a fixed stream of chunks (the gateways' streaming provider points there) ---
completion='{"id":"chatcmpl-bench0000000000000000000001","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":9,"total_tokens":18},"system_fingerprint":"fp_bench"}'
chunk() { printf 'data: {"id":"chatcmpl-bench0000000000000000000002","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_bench","choices":[{"index":0,"delta":%s,"logprobs":null,"finish_reason":%s}]}\n\n' "$1" "$2"; }
stream="$(chunk '{"role":"assistant","content":""}' null; chunk '{"content":"Hello!"}' null
          chunk '{"content":" How can I help"}' null; chunk '{"content":" you today?"}' null
          chunk '{}' '"stop"'; printf 'data: [DONE]')"$'\n\n'
mkdir -p "$work/nginx-body"
cat >"$work/nginx.conf" <<CONF
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $work/nginx-body;
  server {
    listen 127.0.0.1:$nginx_port;
    location = /v1/chat/completions { default_type application/json; return 200 '$completion'; }
    location = /sse/v1/chat/completions { default_type text/event-stream; return 200 '$stream'; }
  }
}
CONF
nginx -c "$work/nginx.conf" -g 'daemon off;' &
nginx_pid=$!
wait_http "http://127.0.0.1:$nginx_port/" "$nginx_pid" "$work/nginx-error.log" nginx

# --- Portkey's gateway, from npm into the work directory; it binds every interface and has no option for the
#     address, so a module loaded first gives a listen() without an address 127.0.0.1 ---
mkdir -p "$work/portkey"
cat >"$work/portkey/package.json" <<JSON
{ "private": true,
  "dependencies": { "@portkey-ai/gateway": "$portkey_version" },
  "overrides": { "@hono/node-server": "$hono_node_server_version" } }
JSON
(cd "$work/portkey" && npm install --no-audit --no-fund --loglevel=error >"$work/npm.log" 2>&1) ||
  { echo "npm install of Portkey's gateway failed:" >&2; tail -20 "$work/npm.log" >&2; exit 1; }
cat >"$work/portkey/loopback.mjs" <<'JS'
// Loaded before the gateway: a server told to listen on a port but no address listens on 127.0.0.1.
import net from 'node:net';
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number') {
    if (args[1] === undefined || args[1] === null) args[1] = '127.0.0.1';
    else if (typeof args[1] === 'function') args.splice(1, 0, '127.0.0.1');
  } else if (args[0] && typeof args[0] === 'object' && args[0].path === undefined && !args[0].host) {
    args[0] = { ...args[0], host: '127.0.0.1' };
  }
  return listen.apply(this, args);
};
JS
NODE_ENV=production node --import "$work/portkey/loopback.mjs" \
  "$work/portkey/node_modules/@portkey-ai/gateway/build/start-server.js" --port=$portkey_port --headless \
  >"$work/portkey.log" 2>&1 &
portkey_pid=$!
wait_http "http://127.0.0.1:$portkey_port/" "$portkey_pid" "$work/portkey.log" "Portkey's gateway"
loopback_only $portkey_port "Portkey's gateway"

# --- YARP, the .NET reverse proxy, forwarding every request to nginx as it is (bench/YarpReference): what the .NET
#     stack itself costs per proxied request on this machine, with nothing of a gateway's own work ---
dotnet build bench/YarpReference -c Release -v quiet -nologo >/dev/null
dotnet bench/YarpReference/bin/Release/net10.0/YarpReference.dll --urls "http://127.0.0.1:$yarp_port" \
  --Upstream "http://127.0.0.1:$nginx_port/" --Logging:LogLevel:Default=Warning >"$work/yarp.log" 2>&1 &
yarp_pid=$!
wait_http "http://127.0.0.1:$yarp_port/" "$yarp_pid" "$work/yarp.log" YARP
loopback_only $yarp_port YARP

# --- Wharf (Release): provider `up` for plain answers (the default route), `sse` for the stream (model prefix) ---
if [ $with_wharf = 1 ]; then
  dotnet build src/Wharf.Server -c Release -v quiet -nologo >/dev/null
  dotnet src/Wharf.Server/bin/Release/net10.0/Wharf.Server.dll --urls "http://127.0.0.1:$wharf_port" \
    --Wharf:DataDir="$work/data" --Wharf:Auth:BootstrapKey="$wharf_key" \
    --Wharf:Providers:up:Type=openai --Wharf:Providers:up:BaseUrl="http://127.0.0.1:$nginx_port/v1" \
    --Wharf:Providers:up:ApiKey="$upstream_key" \
    --Wharf:Providers:sse:Type=openai --Wharf:Providers:sse:BaseUrl="http://127.0.0.1:$nginx_port/sse/v1" \
    --Wharf:Providers:sse:ApiKey="$upstream_key" \
    --Wharf:Routing:Default:0=up --Logging:LogLevel:Default=Warning >"$work/wharf.log" 2>&1 &
  wharf_pid=$!
  wait_http "http://127.0.0.1:$wharf_port/readyz" "$wharf_pid" "$work/wharf.log" Wharf
  loopback_only $wharf_port Wharf
  wharf_rss=("$(rss_mb "$wharf_pid")")
fi
portkey_rss=("$(rss_mb "$portkey_pid")"); yarp_rss=("$(rss_mb "$yarp_pid")")

# --- each side: URL and headers for the plain and the streaming request ---
sides=(direct portkey yarp); [ $with_wharf = 1 ] && sides+=(wharf)
declare -A url stream_url headers stream_model pid_of
pid_of[portkey]=$portkey_pid; pid_of[yarp]=$yarp_pid; pid_of[wharf]=$wharf_pid
url[direct]="http://127.0.0.1:$nginx_port/v1/chat/completions"
stream_url[direct]="http://127.0.0.1:$nginx_port/sse/v1/chat/completions"
headers[direct]="Authorization: Bearer $upstream_key"
stream_model[direct]=gpt-4o-mini
url[portkey]="http://127.0.0.1:$portkey_port/v1/chat/completions"
stream_url[portkey]="${url[portkey]}"
headers[portkey]="Authorization: Bearer $upstream_key|x-portkey-provider: openai|x-portkey-custom-host: http://127.0.0.1:$nginx_port/v1"
stream_model[portkey]=gpt-4o-mini
url[yarp]="http://127.0.0.1:$yarp_port/v1/chat/completions"
stream_url[yarp]="http://127.0.0.1:$yarp_port/sse/v1/chat/completions"
headers[yarp]="Authorization: Bearer $upstream_key"
stream_model[yarp]=gpt-4o-mini
url[wharf]="http://127.0.0.1:$wharf_port/v1/chat/completions"
stream_url[wharf]="${url[wharf]}"
headers[wharf]="Authorization: Bearer $wharf_key"
stream_model[wharf]=sse/gpt-4o-mini
# Portkey's streaming request goes to the same gateway URL; the custom host (the upstream's base URL) differs.
stream_headers() { # side
  if [ "$1" = portkey ]; then sed "s#custom-host: \(.*\)/v1#custom-host: \1/sse/v1#" <<<"${headers[portkey]}"; else echo "${headers[$1]}"; fi
}
body='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello."}],"max_tokens":16}'
stream_body() { printf '{"model":"%s","messages":[{"role":"user","content":"Say hello."}],"max_tokens":16,"stream":true}' "${stream_model[$1]}"; }

curl_headers() { # "a|b|c" -> -H a -H b -H c (one per line, for mapfile)
  tr '|' '\n' <<<"$1" | while IFS= read -r h; do printf -- '-H\n%s\n' "$h"; done
}
for side in "${sides[@]}"; do
  # A wrk script per side: POST the body with the side's headers.
  {
    echo 'wrk.method = "POST"'
    echo 'wrk.headers["Content-Type"] = "application/json"'
    tr '|' '\n' <<<"${headers[$side]}" | while IFS= read -r h; do
      printf 'wrk.headers["%s"] = "%s"\n' "${h%%: *}" "${h#*: }"
    done
    printf "wrk.body = '%s'\n" "$body"
  } >"$work/$side.lua"
  # Each side answers both requests correctly before anything is measured.
  mapfile -t h < <(curl_headers "${headers[$side]}")
  answer=$(curl -sS -w '\n%{http_code}' "${url[$side]}" -H 'Content-Type: application/json' "${h[@]}" -d "$body")
  if [ "$(tail -1 <<<"$answer")" != 200 ] || ! grep -q '"chat.completion"' <<<"$answer"; then
    echo "$side: the chat completion failed:" >&2; head -c 2000 <<<"$answer" >&2; echo >&2; exit 1
  fi
  mapfile -t h < <(curl_headers "$(stream_headers "$side")")
  answer=$(curl -sS -w '\n%{http_code}' "${stream_url[$side]}" -H 'Content-Type: application/json' "${h[@]}" -d "$(stream_body "$side")")
  if [ "$(tail -1 <<<"$answer")" != 200 ] || ! grep -q '^data: \[DONE\]' <<<"$answer" ||
     [ "$(grep -c '^data: {' <<<"$answer")" != 5 ]; then
    echo "$side: the streamed chat completion failed:" >&2; head -c 2000 <<<"$answer" >&2; echo >&2; exit 1
  fi
done

# wrk on one side: prints "req/s p50_ms p99_ms failures" (failures: non-2xx answers and socket errors).
# wrk on one side: prints "req/s p50_ms p99_ms failures cpu_us" (failures: non-2xx answers and socket errors;
# cpu_us: the gateway's user + system CPU time per request over the measurement, "-" for nginx).
cpu_ticks() { [ -n "${pid_of[$1]:-}" ] && awk '{print $14 + $15}' "/proc/${pid_of[$1]}/stat" || true; }
wrk_run() { # side connections threads seconds
  local before after out
  before=$(cpu_ticks "$1")
  out=$(wrk -t"$3" -c"$2" -d"${4}s" --latency -s "$work/$1.lua" "${url[$1]}" 2>&1 | awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) } /Requests\/sec/ { rate = $2 } /requests in/ { requests = $1 }
    /Non-2xx/ { bad += $NF }
    /Socket errors/ { gsub(/,/, ""); bad += $4 + $6 + $8 + $10 }
    END { printf "%s %.4f %.4f %d %d\n", rate, p50, p99, bad, requests }')
  after=$(cpu_ticks "$1")
  awk -v o="$out" -v b="$before" -v a="$after" -v hz="$(getconf CLK_TCK)" 'BEGIN {
    split(o, f, " "); cpu = (b == "" || f[5] == 0) ? "-" : sprintf("%.1f", (a - b) / hz * 1e6 / f[5])
    print f[1], f[2], f[3], f[4], cpu }'
}
# Time to first byte of the streamed answer, in ms, one line per request: n requests on one connection.
ttfb_run() { # side n
  local args=() i
  mapfile -t h < <(curl_headers "$(stream_headers "$1")")
  for i in $(seq "$2"); do args+=("${stream_url[$1]}"); done
  curl -sS -H 'Content-Type: application/json' "${h[@]}" -d "$(stream_body "$1")" \
    -w '\nttfb %{time_starttransfer} %{http_code}\n' "${args[@]}" |
    awk '$1 == "ttfb" { if ($3 != 200) bad++; printf "%.4f\n", $2 * 1000 } END { if (bad) exit 1 }'
}

for side in "${sides[@]}"; do
  wrk -t2 -c32 -d"${warm}s" -s "$work/$side.lua" "${url[$side]}" >/dev/null 2>&1
  ttfb_run "$side" "$ttfb_n" >/dev/null
done
[ $with_wharf = 1 ] && wharf_rss+=("$(rss_mb "$wharf_pid")")
portkey_rss+=("$(rss_mb "$portkey_pid")"); yarp_rss+=("$(rss_mb "$yarp_pid")")

declare -A many one ttfb
failures=0
for round in $(seq 0 $((rounds - 1))); do
  order=("${sides[@]:$((round % ${#sides[@]}))}" "${sides[@]:0:$((round % ${#sides[@]}))}")
  for side in "${order[@]}"; do
    many[$side,$round]=$(wrk_run "$side" 32 2 "$secs")
    one[$side,$round]=$(wrk_run "$side" 1 1 "$single_secs")
    ttfb[$side,$round]=$(ttfb_run "$side" "$ttfb_n")
    failures=$((failures + $(awk '{print $4}' <<<"${many[$side,$round]}") + $(awk '{print $4}' <<<"${one[$side,$round]}")))
    # Each measurement as it was taken, on stderr: "32 conns: req/s p50 p99 failures cpu_us; 1 conn: ...; TTFB p50".
    echo "round $((round + 1)) $side: 32 conns: ${many[$side,$round]}; 1 conn: ${one[$side,$round]}; TTFB p50 $(median <<<"${ttfb[$side,$round]}") ms" >&2
  done
  [ $with_wharf = 1 ] && wharf_rss+=("$(rss_mb "$wharf_pid")")
  portkey_rss+=("$(rss_mb "$portkey_pid")"); yarp_rss+=("$(rss_mb "$yarp_pid")")
done

# --- the table ---
col() { # measurement-array field side: that field of every round
  local -n m=$1; local r
  for r in $(seq 0 $((rounds - 1))); do awk -v f="$2" '{print $f}' <<<"${m[$3,$r]}"; done
}
added() { # measurement-array field side: side - direct of each round, then the median
  local -n m=$1; local r
  for r in $(seq 0 $((rounds - 1))); do
    awk -v f="$2" -v a="${m[$3,$r]}" -v b="${m[direct,$r]}" 'BEGIN {split(a, x, " "); split(b, y, " "); print x[f] - y[f]}'
  done | median
}
ratio() { # side [reference=direct]: req/s side / reference of each round, then the median
  local r
  for r in $(seq 0 $((rounds - 1))); do
    awk -v a="${many[$1,$r]}" -v b="${many[${2:-direct},$r]}" 'BEGIN {split(a, x, " "); split(b, y, " "); printf "%.4f\n", x[1] / y[1]}'
  done | median
}
ttfb_all() { local r; for r in $(seq 0 $((rounds - 1))); do echo "${ttfb[$1,$r]}"; done; }
ttfb_added() { # side: median TTFB of the side - of direct, each round, then the median
  local r
  for r in $(seq 0 $((rounds - 1))); do
    awk -v a="$(median <<<"${ttfb[$1,$r]}")" -v b="$(median <<<"${ttfb[direct,$r]}")" 'BEGIN {print a - b}'
  done | median
}
rate_cell() { printf "%.0f" "$(col many 1 "$1" | median)"; }
ratio_cell() { [ "$1" = direct ] && echo 1 || fmt "$(ratio "$1")" 3; }
yarp_ratio_cell() { [ "$1" = wharf ] && fmt "$(ratio wharf yarp)" 3 || echo -; }
lat_cell() { echo "$(fmt "$(col "$2" 2 "$1" | median)") / $(fmt "$(col "$2" 3 "$1" | median)")"; }
added_cell() { [ "$1" = direct ] && echo - || echo "$(fmt "$(added "$2" 2 "$1")") / $(fmt "$(added "$2" 3 "$1")")"; }
ttfb_cell() { echo "$(fmt "$(ttfb_all "$1" | median)") / $(fmt "$(ttfb_all "$1" | percentile 0.99)")"; }
ttfb_added_cell() { [ "$1" = direct ] && echo - || fmt "$(ttfb_added "$1")"; }
row() { # label format-function [arg]
  local label=$1 line side; shift
  line="| $label |"
  for side in "${sides[@]}"; do line+=" $("$@" "$side") |"; done
  echo "$line"
}
lat_many() { lat_cell "$1" many; }; lat_one() { lat_cell "$1" one; }
added_many() { added_cell "$1" many; }; added_one() { added_cell "$1" one; }
cpu_cell() { [ "$1" = direct ] && echo - || fmt "$(col many 5 "$1" | median)" 0; }
rate_one_cell() { printf "%.0f" "$(col one 1 "$1" | median)"; }

header="| chat completions, $rounds round(s) | nginx direct | Portkey $portkey_version | YARP (forwarding only) |"
rule="|---|---|---|---|"
[ $with_wharf = 1 ] && { header+=" Wharf |"; rule+="---|"; }
echo "$header"
echo "$rule"
row "req/s at 32 connections (median of rounds)" rate_cell
row "… ratio to direct (median of rounds' ratios; Wharf's target ≥ 0.25)" ratio_cell
[ $with_wharf = 1 ] && row "… Wharf's ratio to YARP (median of rounds' ratios)" yarp_ratio_cell
row "p50 / p99 at 32 connections, ms" lat_many
row "added p50 / p99 over direct at 32 connections, ms (Wharf's target: p50 ≤ 1)" added_many
row "gateway CPU time (user + system) per request at 32 connections, µs" cpu_cell
row "req/s at 1 connection" rate_one_cell
row "p50 / p99 at 1 connection, ms" lat_one
row "added p50 / p99 over direct at 1 connection, ms" added_one
row "\`stream: true\`: time to first byte p50 / p99, ms ($ttfb_n sequential requests per round)" ttfb_cell
row "added time to first byte (p50) over direct, ms (Wharf's target ≤ 1)" ttfb_added_cell
rss_line="| RSS, MB: at start, after the warm-up, after each round | - | ${portkey_rss[*]} | ${yarp_rss[*]} |"
[ $with_wharf = 1 ] && rss_line+=" ${wharf_rss[*]} |"
echo "$rss_line"

if [ "$failures" -gt 0 ]; then
  echo "$failures failed requests (non-2xx answers or socket errors) during the measurement: the figures are not valid" >&2
  exit 1
fi
