#!/usr/bin/env bash
# The whole test suite, as the README documents it and CI runs it (.ci/run calls exactly this).
# Static checks (formatting, unused dependencies, clippy, rustdoc), then unit tests beside the code, then the
# end-to-end tests in tests/ (real sockets, real upstream servers, the real `penghubung` binary as a child process).
set -euo pipefail
cd "$(dirname "$0")/.."

# Static checks first: they are cheap and fail fast.
# Every dependency must be used by some code. cargo-machete reads the sources, so it needs no build.
if ! command -v cargo-machete >/dev/null 2>&1; then
    echo "test.sh: installing cargo-machete (the check that fails on a dependency no code uses)" >&2
    cargo install --locked cargo-machete
fi

# Formatting, as rustfmt.toml sets it.
cargo fmt --all -- --check
# No unused dependency in any member.
cargo machete
# Lints, on everything that compiles: libraries, binaries, tests, benches and the fuzz crate.
cargo clippy --locked --workspace --all-targets -- -D warnings
# The API docs build without warnings (broken intra-doc links, bad code blocks).
RUSTDOCFLAGS=-Dwarnings cargo doc --locked --workspace --no-deps

# The rate-limit tests start their own redis-server on a free port (never the system's Redis on 6379).
if ! command -v redis-server >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "test.sh: installing redis-server (the rate-limit tests start their own)" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null 2>&1 \
            || { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }
    fi
    if ! command -v redis-server >/dev/null 2>&1; then
        echo "test.sh: redis-server is missing; install it (e.g. apt-get install redis-server): the rate-limit tests need it" >&2
        exit 1
    fi
fi

# The observability tests start their own Prometheus on a free port and check the example alert rules with
# promtool; Debian's prometheus package has both.
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "test.sh: installing prometheus (the observability tests start their own, and run promtool)" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 \
            || { apt-get update -qq >/dev/null 2>&1 \
                && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }
    fi
    if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
        echo "test.sh: prometheus or promtool is missing; install them (e.g. apt-get install prometheus): the observability tests need them" >&2
        exit 1
    fi
fi

# The console's browser tests drive Debian's headless Chromium through chromedriver (started on a free port).
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "test.sh: installing chromium and chromium-driver (the console's browser tests drive them)" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 \
            || { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }
    fi
    if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
        echo "test.sh: chromium or chromedriver is missing; install them (e.g. apt-get install chromium chromium-driver): the console's browser tests need them" >&2
        exit 1
    fi
fi

# The deployment tests run haproxy (deploy/haproxy.cfg in front of two gateways) and check the systemd unit with
# systemd-analyze (Debian's systemd package ships it; nothing is installed or started as a service).
for pair in haproxy:haproxy systemd-analyze:systemd; do
    tool=${pair%%:*}
    package=${pair##*:}
    if ! command -v "$tool" >/dev/null 2>&1; then
        if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
            echo "test.sh: installing $package (the deployment tests run $tool)" >&2
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$package" >/dev/null 2>&1 \
                || { apt-get update -qq >/dev/null 2>&1 \
                    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$package" >/dev/null; }
        fi
        if ! command -v "$tool" >/dev/null 2>&1; then
            echo "test.sh: $tool is missing; install it (e.g. apt-get install $package): the deployment tests need it" >&2
            exit 1
        fi
    fi
done

# The end-to-end tests also run the binary as a child process: build it first.
cargo build --locked -p penghubung --bin penghubung
# Unit tests of every crate, then the end-to-end tests.
cargo test --locked --workspace
