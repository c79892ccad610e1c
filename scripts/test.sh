#!/usr/bin/env bash
# The whole test suite, as the README documents it and CI runs it (.ci/run calls exactly this).
# Unit tests beside the code, then the end-to-end tests in tests/ (real sockets, real upstream servers,
# the real `penghubung` binary as a child process).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all -- --check
# The end-to-end tests also run the binary as a child process: build it first.
cargo build --locked -p penghubung --bin penghubung
cargo test --locked --workspace
