#!/usr/bin/env bash
# Throughput of cluster mode: N replicas behind haproxy (TCP mode, as docs/deployment.md deploys them) against
# one replica behind the same haproxy, in requests per second and in requests per CPU-second of the replicas
# (user + system time of the gateway processes over the run, from /proc), so that "per core" does not depend
# on how many cores the machine has.
#
#   benches/scripts/replicas-behind-haproxy.sh [PENGHUBUNG_BINARY]     (REPLICAS=3 ROUNDS=3 DURATION=5s)
#
# Each replica is `penghubung serve` on a plaintext listener (policy off, limits off, access log off, one worker
# thread) with `[store] backend = "redis"`: the store is pushed once into a redis-server this script starts, and
# every replica follows it. The upstream is the load harness's own (`target/release/load --mode upstream`, build
# it first). wrk drives haproxy with 64 keep-alive connections; haproxy balances connections with `leastconn`.
# Each round measures one replica, then N, back to back. Needs haproxy, redis-server, wrk, curl and python3.
set -euo pipefail
binary=$(realpath "${1:-$(dirname "$0")/../../target/release/penghubung}")
load_binary="$(dirname "$0")/../../target/release/load"
replicas=${REPLICAS:-3}
rounds=${ROUNDS:-3}
duration=${DURATION:-5s}
for tool in haproxy redis-server wrk curl python3; do
    command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install -y haproxy redis-server wrk curl)" >&2; exit 2; }
done
[ -x "$load_binary" ] || { echo "needs $load_binary (cargo build --release -p penghubung-benches --bin load)" >&2; exit 2; }

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The harness upstream: serves until its stdin closes.
mkfifo "$work/upstream.in"
"$load_binary" --mode upstream < "$work/upstream.in" > "$work/upstream.out" &
pids+=($!)
exec 3>"$work/upstream.in"
for _ in $(seq 1 100); do grep -q '^upstream:' "$work/upstream.out" 2>/dev/null && break; sleep 0.1; done
upstream_port=$(sed -n 's/^upstream: http:\/\/127.0.0.1://p' "$work/upstream.out")
[ -n "$upstream_port" ] || { echo "the harness upstream did not start" >&2; exit 1; }

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" >/dev/null &
pids+=($!)
for _ in $(seq 1 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done

# The store: one OPD, its operators (the service's approvals name them) and the bench service.
mkdir -p "$work/policies/opds" "$work/policies/services/bench" "$work/policies/operators"
printf 'id = "bench"\nname = "Bench"\n' > "$work/policies/opds/bench.toml"
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

# config PORT ID: a replica's config.
config() {
    cat > "$work/replica-$2.toml" <<CONFIG
[[listeners]]
name = "bench"
address = "127.0.0.1:$1"
plaintext = true

[store]
backend = "redis"
path = "policies"
seed_baseline = false

[redis]
url = "redis://127.0.0.1:$redis_port"

[audit]
enabled = false
gateway_id = "bench-$2"

[server]
worker_threads = 1
shutdown_grace = "1s"

[log]
level = "warn"
access_log = false

[policy]
enforce = false

[ratelimit]
enabled = false
CONFIG
}

config "$(free_port)" push
(cd "$work" && "$binary" store push --config replica-push.toml --operator bench-owner >/dev/null)

ports=()
replica_pids=()
for i in $(seq 1 "$replicas"); do
    port=$(free_port)
    config "$port" "$i"
    (cd "$work" && exec "$binary" serve --config "replica-$i.toml" >"$work/replica-$i.log" 2>&1) &
    pids+=($!)
    replica_pids+=($!)
    ports+=("$port")
    url="http://127.0.0.1:$port/bench/echo/v1/x"
    for _ in $(seq 1 120); do curl -sf -o /dev/null "$url" && break; sleep 0.25; done
    curl -sf -o /dev/null "$url" || { echo "replica $i did not serve $url" >&2; cat "$work/replica-$i.log" >&2; exit 1; }
done

# haproxy_for NAME COUNT: haproxy in TCP mode in front of the first COUNT replicas; its port in $front.
haproxy_for() {
    front=$(free_port)
    {
        printf 'global\n  maxconn 4096\n  nbthread 1\ndefaults\n  mode tcp\n  timeout connect 2s\n'
        printf '  timeout client 60s\n  timeout server 60s\nfrontend f\n  bind 127.0.0.1:%s\n' "$front"
        printf '  default_backend replicas\nbackend replicas\n  balance leastconn\n'
        for i in $(seq 0 $(($2 - 1))); do printf '  server r%s 127.0.0.1:%s\n' "$i" "${ports[$i]}"; done
    } > "$work/$1.cfg"
    haproxy -f "$work/$1.cfg" -db >"$work/$1.log" 2>&1 &
    pids+=($!)
    eval "$1_pid=$!"
    for _ in $(seq 1 50); do curl -sf -o /dev/null "http://127.0.0.1:$front/bench/echo/v1/x" && break; sleep 0.1; done
    eval "$1_front=$front"
}
haproxy_for one 1
haproxy_for all "$replicas"

# CPU-seconds (user + system) of the replicas so far.
cpu_seconds() {
    local ticks=0 p
    for p in "${replica_pids[@]}"; do ticks=$((ticks + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
    python3 -c "print($ticks / $(getconf CLK_TCK))"
}
# run FRONT: prints "requests/s requests-per-replica-CPU-second".
run() {
    local before after out
    before=$(cpu_seconds)
    out=$(wrk -t1 -c64 -d"$duration" "http://127.0.0.1:$1/bench/echo/v1/x")
    after=$(cpu_seconds)
    local requests rate
    requests=$(echo "$out" | awk '/requests in/ {print $1}')
    rate=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    python3 -c "print(f'{$rate:.0f} {$requests / max($after - $before, 1e-9):.0f}')"
}
wrk -t1 -c64 -d2s "http://127.0.0.1:$one_front/bench/echo/v1/x" >/dev/null
wrk -t1 -c64 -d2s "http://127.0.0.1:$all_front/bench/echo/v1/x" >/dev/null
echo "round: 1 replica req/s, req per replica CPU-s | $replicas replicas req/s, req per replica CPU-s | ratios"
for round in $(seq 1 "$rounds"); do
    read -r one_rate one_per_cpu < <(run "$one_front")
    read -r all_rate all_per_cpu < <(run "$all_front")
    python3 -c "print(f'round $round: $one_rate, $one_per_cpu | $all_rate, $all_per_cpu | req/s {$all_rate / $one_rate:.2f}x, per CPU-s {$all_per_cpu / $one_per_cpu:.2f}x')"
done
echo "machine: $(nproc) cores; every replica, haproxy, wrk and the upstream share them"
