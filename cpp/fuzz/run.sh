#!/usr/bin/env bash
# Builds and runs the libFuzzer targets of cpp/fuzz (needs clang and libFuzzer's
# runtime: Debian's clang and libclang-rt-14-dev packages).
#
#   cpp/fuzz/run.sh [SECONDS [TARGET...]]   fuzz each target for SECONDS (default 60)
#   cpp/fuzz/run.sh --coverage [TARGET...]  line coverage of the corpus (llvm-cov)
#
# Each target starts from a copy of its committed corpus (cpp/fuzz/corpus/<target>)
# merged into $FUZZ_WORK/corpus/<target> (default build/fuzz-work), which keeps what
# earlier local runs found; the committed corpus is never written. A crash, a property
# failure, a hang past 10 s or an allocation past 2 GiB is saved under
# $FUZZ_WORK/artifacts/ and makes the script exit 1. Before fuzzing, every input in
# cpp/fuzz/findings/ (named <target without fuzz_>-<what>) and the committed corpus is
# replayed through its target once: a finding that crashes again fails the run. The
# seeds are made by
# make_corpus.cpp: `build/fuzz/cpp/fuzz/fuzz_make_corpus cpp/fuzz/corpus` rewrites them.
set -euo pipefail
cd "$(dirname "$0")/../.."
all_targets=(fuzz_cluster_snapshot fuzz_block_index_snapshot fuzz_cluster_ops)
work=${FUZZ_WORK:-build/fuzz-work}

configure() {  # configure DIR [cmake args...]
    local dir=$1
    shift
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
        -DFASTPLACE_FUZZ=ON -DFASTPLACE_WERROR=ON "$@" >/dev/null
    cmake --build "$dir" --parallel 2
}

if [[ ${1:-} == --coverage ]]; then
    shift
    targets=("$@")
    [[ ${#targets[@]} -gt 0 ]] || targets=("${all_targets[@]}")
    configure build/fuzz-coverage -DFASTPLACE_FUZZ_COVERAGE=ON
    rm -rf "$work/coverage" && mkdir -p "$work/coverage"
    for target in "${targets[@]}"; do
        corpus=cpp/fuzz/corpus/$target
        [[ -d $work/corpus/$target ]] && corpus=$work/corpus/$target
        LLVM_PROFILE_FILE="$work/coverage/$target.profraw" \
            "build/fuzz-coverage/cpp/fuzz/$target" -runs=0 "$corpus" 2>&1 | grep -E '^#[0-9]+[[:space:]]+DONE' || true
        llvm-profdata merge -sparse "$work/coverage/$target.profraw" -o "$work/coverage/$target.profdata"
        echo "== $target: line coverage over $corpus"
        llvm-cov report "build/fuzz-coverage/cpp/fuzz/$target" -instr-profile="$work/coverage/$target.profdata" \
            cpp/src/cluster_snapshot.cpp cpp/src/block_index_snapshot.cpp cpp/include/fastplace/snapshot_io.hpp \
            cpp/src/cluster_state.cpp cpp/src/cluster_validate.cpp cpp/src/block_index.cpp \
            cpp/src/block_index_validate.cpp
    done
    exit 0
fi

seconds=${1:-60}
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=("${all_targets[@]}")
configure build/fuzz
mkdir -p "$work/artifacts"
failed=()
# Replays: fixed findings stay fixed, and the seeds still pass the targets' checks.
for target in "${targets[@]}"; do
    inputs=(cpp/fuzz/corpus/"$target"/*)
    for finding in cpp/fuzz/findings/"${target#fuzz_}"-*; do
        [[ -e $finding ]] && inputs+=("$finding")
    done
    log=$work/$target.replay.log
    if "build/fuzz/cpp/fuzz/$target" -runs=0 -timeout=10 -rss_limit_mb=2048 "${inputs[@]}" >"$log" 2>&1; then
        echo "== $target: replayed ${#inputs[@]} committed inputs (corpus and findings)"
    else
        failed+=("$target (replay)")
        grep -E -B 2 -A 30 'ERROR: |runtime error|property failed' "$log" | head -n 60 || tail -n 60 "$log"
    fi
done
for target in "${targets[@]}"; do
    mkdir -p "$work/corpus/$target"
    cp -n "cpp/fuzz/corpus/$target"/* "$work/corpus/$target/"
    log=$work/$target.log
    echo "== $target: ${seconds}s from $(ls "$work/corpus/$target" | wc -l) inputs"
    if "build/fuzz/cpp/fuzz/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$work/artifacts/$target-" "$work/corpus/$target" >"$log" 2>&1; then
        grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log"
    else
        failed+=("$target")
        # The report: the sanitizer's or the property's message and the saved input.
        grep -E -A 30 'ERROR: |runtime error|property failed' "$log" | head -n 60 || tail -n 60 "$log"
        grep -E 'Test unit written to' "$log" || true
    fi
done
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzzing found crashes in: ${failed[*]} (inputs under $work/artifacts)" >&2
    exit 1
fi
echo "fuzzing: ${#targets[@]} targets ran ${seconds}s each without a crash"
