#!/usr/bin/env bash
# The packed decoder (runretry_kit::packed) under libFuzzer for a bounded time: any bytes as a
# guest's packed answer must be refused or decoded without a panic, within 1 GiB of memory, and
# round-trip. Stable Rust: the target links only the kit, built with the coverage flags
# cargo-fuzz would pass (no sanitizer), in a target dir of its own.
#   scripts/fuzz-packed.sh [SECONDS]      (default 60; CI runs it for 60)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
host=$(rustc -vV | sed -n 's/^host: //p')
export CARGO_TARGET_DIR=target/fuzz-packed
# --target keeps these flags off build scripts and proc macros, as cargo-fuzz does.
RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks" \
    cargo build --quiet --release --target "$host" -p runretry-fuzz-packed --bin packed
corpus=$CARGO_TARGET_DIR/corpus
mkdir -p "$corpus"
# -rss_limit_mb: the decoder's budget is 64 MiB; a gigabyte means a length was trusted.
"$CARGO_TARGET_DIR/$host/release/packed" "$corpus" -dict=fuzz/packed/packed.dict \
    -max_total_time="$seconds" -max_len=16384 -rss_limit_mb=1024 -timeout=10 -print_final_stats=1 2>&1 |
    grep -E '^(#[0-9]+ +DONE|Done [0-9]+ runs|stat::peak_rss_mb|==[0-9]+==|SUMMARY)|panicked|ERROR' || true
# grep hides libFuzzer's progress lines; its exit status is the run's.
exit "${PIPESTATUS[0]}"
