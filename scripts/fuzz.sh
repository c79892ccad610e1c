#!/usr/bin/env bash
# Runs every fuzz target (tests/fuzz/tests/*.rs) for a share of the given time, one after the other, and prints
# how many inputs each tried. The argument is the total in seconds (default 3600: one hour); each target gets
# an equal share. `scripts/test.sh` runs the same targets for 20 s each as part of `cargo test --workspace`.
#   scripts/fuzz.sh          # one hour in total
#   scripts/fuzz.sh 600      # ten minutes in total
# A failing target prints the input (and the seed to replay it) and the script exits non-zero at the end.
set -uo pipefail
cd "$(dirname "$0")/.."

total="${1:-3600}"
case "$total" in
    ''|*[!0-9]*) echo "usage: scripts/fuzz.sh [total seconds, default 3600]" >&2; exit 2 ;;
esac
targets=()
for file in tests/fuzz/tests/*.rs; do
    targets+=("$(basename "$file" .rs)")
done
each=$(( total / ${#targets[@]} ))
[ "$each" -ge 1 ] || each=1
echo "fuzz.sh: ${#targets[@]} targets, ${each} s each"

cargo test --locked -p penghubung-fuzz --no-run >/dev/null 2>&1 || cargo test --locked -p penghubung-fuzz --no-run
failed=()
summary=()
for target in "${targets[@]}"; do
    log="$(mktemp)"
    # Every test of the file: each fuzzing test runs for the share (in parallel, as the suite runs them), the
    # file's fixed regression cases take no time.
    PENGHUBUNG_FUZZ_SECONDS="$each" cargo test --locked -q -p penghubung-fuzz --test "$target" -- --nocapture \
        >"$log" 2>&1
    status=$?
    tried="$(grep -o "fuzz [a-z0-9_]*: [0-9]* inputs tried" "$log" | sed 's/^fuzz //' | paste -sd ';' - | sed 's/;/; /g')"
    if [ "$status" -ne 0 ]; then
        failed+=("$target")
        cat "$log"
        summary+=("${target}: ${tried:-no count} FAILED")
    else
        summary+=("${target}: ${tried:-no count}")
    fi
    echo "${summary[-1]}"
    rm -f "$log"
done

echo "fuzz.sh summary (${each} s each):"
printf '  %s\n' "${summary[@]}"
if [ "${#failed[@]}" -ne 0 ]; then
    echo "fuzz.sh: failed: ${failed[*]}" >&2
    exit 1
fi
