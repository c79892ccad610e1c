#!/usr/bin/env bash
# User-space instructions per proxied request, counted by callgrind: repeatable for the same binary whatever else
# the machine is doing, unlike requests/s on a shared VM. Use it to compare two builds of the plain path.
#
#   benches/scripts/instructions-per-request.sh [PENGHUBUNG_BINARY ...] [nginx]
#   FULL=1 benches/scripts/instructions-per-request.sh [PENGHUBUNG_BINARY ...]
#
# The word `nginx` in the list measures nginx as the proxy instead (one process: `master_process off`, keep-alive
# upstream pool, access log off), the peer the issue compares against.
#
# Each binary serves `GET /bench/echo/v1/x` (plaintext listener, policy off, no limits, access log off, one worker
# thread) in front of nginx returning a 1 KiB file with keep-alive; wrk drives 16 connections, 3 s of warm-up
# uninstrumented, then 10 s counted. Prints requests, instructions and instructions per request. With
# KEEP_PROFILE_DIR=DIR the callgrind profiles are kept there (read them with `callgrind_annotate`); CALLGRIND_OPTS adds
# options to callgrind (e.g. `--dump-instr=yes`, to read a function instruction by instruction).
#
# With UPSTREAM=harness the upstream is the load harness's own (hyper, 1 KiB, `content-type`, `content-length`
# and `date` only: `target/release/load --mode upstream`, build it first) instead of nginx serving a file, so the
# figures match what `load --mode plain` measures.
#
# With FULL=1 it counts the FULL path instead (the `full` target of `load --mode full`: mTLS with a client
# certificate, policy with a grant and a purpose, local rate limits, the async audit trail, and a POST of a 1 KiB
# JSON body checked against a request contract), against the harness's own upstream. wrk cannot present a client
# certificate, so the harness drives it: `target/release/load --mode full --callgrind FILE` (build it first)
# starts the gateway under callgrind, warms it up 3 s uninstrumented, counts 10 s of 16 keep-alive connections and
# prints the requests; this script reads the totals. `nginx` is not accepted in the list then.
#
# EXTRA_CONFIG is appended to each Penghubung's config, e.g. to count what metrics cost (compare with and without):
#   EXTRA_CONFIG=$'[ops]\nlisten = "127.0.0.1:0"' benches/scripts/instructions-per-request.sh
#
# With ROUNDS=N the same setup measures throughput instead: all the proxies run uninstrumented and N rounds
# drive each in turn (wrk -t1 -c64, 5 s), printing requests/s and the machine's idle CPU share per run.
# With SYSCALLS=1 it counts system calls per request instead (perf's syscall tracepoints, uninstrumented proxies).
# Needs valgrind, nginx, wrk and curl (`apt-get install -y valgrind nginx wrk curl`).
set -euo pipefail

binaries=("$@")
[ ${#binaries[@]} -gt 0 ] || binaries=("$(dirname "$0")/../../target/release/penghubung")
for tool in valgrind callgrind_control callgrind_annotate nginx wrk curl python3; do
    command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install -y valgrind nginx wrk curl)" >&2; exit 2; }
done

work=$(mktemp -d)
chmod 755 "$work" # nginx workers run as another user
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

if [ -n "${FULL:-}" ]; then
    load_binary="$(dirname "$0")/../../target/release/load"
    [ -x "$load_binary" ] || { echo "needs $load_binary (cargo build --release -p penghubung-benches)" >&2; exit 2; }
    for binary in "${binaries[@]}"; do
        [ "$binary" != nginx ] || { echo "FULL=1 measures Penghubung binaries only" >&2; exit 2; }
        out="$work/callgrind.full"
        rm -f "$out"*
        report=$("$load_binary" --mode full --gateway "$(realpath "$binary")" --callgrind "$out" \
            --connections 16 --warmup 3s --duration 10s) || { echo "$report" >&2; exit 1; }
        requests=$(echo "$report" | awk '/^callgrind:/ {print $2}')
        instructions=$(callgrind_annotate "$out.1" 2>/dev/null | awk '/PROGRAM TOTALS/ && !done {gsub(",", "", $1); print $1; done = 1}')
        echo "$binary (full path): $requests requests, $instructions instructions, $((instructions / requests)) per request"
        if [ -n "${KEEP_PROFILE_DIR:-}" ]; then
            mkdir -p "$KEEP_PROFILE_DIR" && cp "$out.1" "$KEEP_PROFILE_DIR/callgrind.full.$(basename "$binary")"
            echo "  per function: callgrind_annotate $KEEP_PROFILE_DIR/callgrind.full.$(basename "$binary")"
        fi
    done
    exit 0
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# nginx_conf NAME HTTP_BLOCK [EXTRA_MAIN]: a one-worker, foreground nginx config in $work/NAME.conf.
nginx_conf() {
    cat > "$work/$1.conf" <<NGINX
worker_processes 1;
daemon off;
${3:-}
pid $work/$1.pid;
error_log $work/$1.err;
events { worker_connections 1024; }
http {
  access_log off;
$2
}
NGINX
}

if [ "${UPSTREAM:-nginx}" = harness ]; then
    load_binary="$(dirname "$0")/../../target/release/load"
    [ -x "$load_binary" ] || { echo "needs $load_binary (cargo build --release -p penghubung-benches)" >&2; exit 2; }
    mkfifo "$work/upstream.in"
    "$load_binary" --mode upstream < "$work/upstream.in" > "$work/upstream.out" &
    pids+=($!)
    exec 3>"$work/upstream.in" # the upstream serves until this closes
    for _ in $(seq 1 100); do grep -q '^upstream:' "$work/upstream.out" 2>/dev/null && break; sleep 0.1; done
    upstream_port=$(sed -n 's/^upstream: http:\/\/127.0.0.1://p' "$work/upstream.out")
    [ -n "$upstream_port" ] || { echo "the harness upstream did not start" >&2; exit 1; }
else
    upstream_port=$(free_port)
    head -c 1024 /dev/zero | tr '\0' x > "$work/body.txt"
    nginx_conf nginx "  server { listen 127.0.0.1:$upstream_port; keepalive_requests 10000000;
           location / { root $work; try_files /body.txt =404; } }"
    nginx -c "$work/nginx.conf" -p "$work" &
    pids+=($!)
fi

mkdir -p "$work/policies/opds" "$work/policies/services/bench" "$work/policies/operators"
printf 'id = "bench"\nname = "Bench"\n' > "$work/policies/opds/bench.toml"
# The operators who gave the service's approvals (and the admin every store with operators needs).
n=0
for operator in bench-owner:admin bench-operasi:operasi bench-keamanan:keamanan; do
    n=$((n + 1))
    printf 'id = "%s"\nname = "%s"\nnip = "19800101200601100%s"\nopd = "bench"\nroles = ["%s"]\n\n[identity]\n' \
        "${operator%%:*}" "${operator%%:*}" "$n" "${operator#*:}" > "$work/policies/operators/${operator%%:*}.toml"
done
cat > "$work/policies/services/bench/echo.toml" <<SERVICE
opd = "bench"
name = "echo"
version = 1
title = "echo"
classification = "terbuka"
status = "active"

[approvals.operations]
by = "bench-operasi"
at = "2026-01-01T00:00:00Z"
reason = "bench"

[approvals.security]
by = "bench-keamanan"
at = "2026-01-01T00:00:00Z"
reason = "bench"

[upstream]
endpoints = ["http://127.0.0.1:$upstream_port"]
SERVICE

# start_proxy BINARY PORT [WRAPPER...]: serves the bench route on PORT (penghubung or, for `nginx`, nginx as the
# proxy) in the background, its pid in $proxy_pid, once it answers.
start_proxy() {
    local binary=$1 port=$2 command
    shift 2
    if [ "$binary" = nginx ]; then
        nginx_conf "proxy-$port" "  upstream backend { server 127.0.0.1:$upstream_port; keepalive 64; keepalive_requests 10000000; }
  server { listen 127.0.0.1:$port; keepalive_requests 10000000;
           location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }" \
            "master_process off;"
        command=(nginx -c "$work/proxy-$port.conf" -p "$work")
    else
        command=("$(realpath "$binary")" serve --config "penghubung-$port.toml")
    fi
    cat > "$work/penghubung-$port.toml" <<CONFIG
[[listeners]]
name = "bench"
address = "127.0.0.1:$port"
plaintext = true

[store]
path = "policies"
seed_baseline = false

[server]
worker_threads = 1
shutdown_grace = "1s"

[log]
level = "warn"
access_log = false

[reload]
watch = false

[policy]
enforce = false

[ratelimit]
enabled = false
${EXTRA_CONFIG:-}
CONFIG
    (cd "$work" && exec "$@" "${command[@]}" >"$work/proxy-$port.log" 2>&1) &
    proxy_pid=$!
    pids+=($proxy_pid)
    local url="http://127.0.0.1:$port/bench/echo/v1/x"
    for _ in $(seq 1 120); do curl -sf -o /dev/null "$url" && break; sleep 0.5; done
    curl -sf -o /dev/null "$url" || { echo "$binary did not serve $url" >&2; cat "$work/proxy-$port.log" >&2; exit 1; }
}

if [ -n "${ROUNDS:-}" ]; then
    # Throughput: every proxy runs uninstrumented; each round drives each in turn (wrk -t1 -c64, 5 s) and shows
    # the share of idle CPU during the run (/proc/stat).
    ports=()
    for binary in "${binaries[@]}"; do
        port=$(free_port)
        start_proxy "$binary" "$port"
        ports+=("$port")
        wrk -t1 -c64 -d2s "http://127.0.0.1:$port/bench/echo/v1/x" >/dev/null
    done
    cpu() { awk '/^cpu / {print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8}' /proc/stat; }
    for round in $(seq 1 "$ROUNDS"); do
        line="round $round:"
        for i in "${!ports[@]}"; do
            read -r idle0 total0 < <(cpu)
            rate=$(wrk -t1 -c64 -d5s "http://127.0.0.1:${ports[$i]}/bench/echo/v1/x" | awk '/Requests\/sec/ {print $2}')
            read -r idle1 total1 < <(cpu)
            line+="  $(basename "${binaries[$i]}") $rate req/s (idle $(( 100 * (idle1 - idle0) / (total1 - total0) ))%)"
        done
        echo "$line"
    done
    exit 0
fi

if [ -n "${SYSCALLS:-}" ]; then
    # System calls per request, by name: each proxy runs uninstrumented while `perf stat` counts the syscall
    # tracepoints of its process during one wrk run (-t1 -c64, 5 s). Needs perf (apt-get install -y linux-perf).
    command -v perf >/dev/null || { echo "SYSCALLS needs perf (apt-get install -y linux-perf)" >&2; exit 2; }
    for binary in "${binaries[@]}"; do
        port=$(free_port)
        start_proxy "$binary" "$port"
        url="http://127.0.0.1:$port/bench/echo/v1/x"
        wrk -t1 -c64 -d2s "$url" >/dev/null
        nstat -n 2>/dev/null || true
        perf stat -x, -e 'syscalls:sys_enter_*' -p "$proxy_pid" -o "$work/perf.$port" &
        perf_pid=$!
        sleep 0.5
        requests=$(wrk -t1 -c64 -d5s "$url" | awk '/requests in/ {print $1}')
        kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true
        echo "$binary: $requests requests; TCP segments per request (whole machine): $(nstat -z TcpOutSegs 2>/dev/null | awk -v n="$requests" '/TcpOutSegs/ {printf "%.2f", $2 / n}')"
        echo "  system calls per request:"
        awk -F, -v n="$requests" '$1 ~ /^[0-9]+$/ && $1 > 0 { sub("syscalls:sys_enter_", "", $3); total += $1;
            printf "  %-16s %8.3f\n", $3, $1 / n } END { printf "  %-16s %8.3f\n", "all", total / n }' "$work/perf.$port"
        kill "$proxy_pid"; wait "$proxy_pid" 2>/dev/null || true
    done
    exit 0
fi

for binary in "${binaries[@]}"; do
    port=$(free_port)
    out="$work/callgrind.out"
    rm -f "$out"*
    # shellcheck disable=SC2086 # CALLGRIND_OPTS is a list of options
    start_proxy "$binary" "$port" valgrind --tool=callgrind --instr-atstart=no ${CALLGRIND_OPTS:-} --callgrind-out-file="$out"
    gateway=$proxy_pid
    url="http://127.0.0.1:$port/bench/echo/v1/x"
    wrk -t1 -c16 -d3s "$url" >/dev/null
    callgrind_control -i on "$gateway" >/dev/null
    requests=$(wrk -t1 -c16 -d10s "$url" | awk '/requests in/ {print $1}')
    callgrind_control -i off "$gateway" >/dev/null
    callgrind_control -d "$gateway" >/dev/null
    kill "$gateway"; wait "$gateway" 2>/dev/null || true
    instructions=$(callgrind_annotate "$out.1" 2>/dev/null | awk '/PROGRAM TOTALS/ && !done {gsub(",", "", $1); print $1; done = 1}')
    echo "$binary: $requests requests, $instructions instructions, $((instructions / requests)) per request"
    if [ -n "${KEEP_PROFILE_DIR:-}" ]; then
        mkdir -p "$KEEP_PROFILE_DIR" && cp "$out.1" "$KEEP_PROFILE_DIR/callgrind.$(basename "$binary").$port"
        echo "  per function: callgrind_annotate $KEEP_PROFILE_DIR/callgrind.$(basename "$binary").$port"
    fi
done
