#!/usr/bin/env bash
# Runs the libFuzzer targets (fuzz/CMakeLists.txt) for a bounded time each
# and fails on any crash, leak, sanitizer report or timeout.  ctest runs it
# as fuzz.run, with the paths below in the environment; for longer runs:
#
#   cmake -DMEMTRACE_FUZZ_SECONDS=600 build
#   ctest --test-dir build -R fuzz.run --output-on-failure
#
# Seeds are made here: synthetic traces and real ones (the demo program and
# a small Python script, traced), their JSON reports for fuzz_render, plus
# the known-bad traces of tests/integration/bad_traces.  Inputs that crash
# are kept in $FUZZ_WORK/artifacts; replay one with `fuzz_NAME FILE`.
#
#   FUZZERS      directory of fuzz_trace, fuzz_records, fuzz_render (empty:
#                clang's fuzzer runtime is missing, the test is skipped)
#   FUZZ_SECONDS how long each target runs (default 20)
set -euo pipefail

SKIP=77
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
secs=${FUZZ_SECONDS:-20}

if [[ -z "${FUZZERS:-}" ]]; then
    echo "fuzz: skipped: clang cannot link libFuzzer programs (install libclang-rt-14-dev)"
    exit $SKIP
fi
for name in trace records render; do
    if [[ ! -x "$FUZZERS/fuzz_$name" ]]; then
        echo "fuzz: skipped: $FUZZERS/fuzz_$name is not built"
        exit $SKIP
    fi
done

work=${FUZZ_WORK:?}
rm -rf "$work"
mkdir -p "$work"/{traces,artifacts,render} "$work"/corpus/{trace,records,render}

# Real traces, small ones.
run_traced() {
    local out=$1; shift
    env LD_PRELOAD="$MEMTRACE_LIB" MEMTRACE_OUTPUT="$out" MEMTRACE_QUIET=1 \
        MEMTRACE_PY_DEPTH=8 "$@" >/dev/null 2>&1 || true
}
run_traced "$work/traces/demo.trace" "$DEMO"
python=/usr/bin/python3
[[ -x $python ]] || python=$(command -v python3)
cat >"$work/seed.py" <<PY
import sys
sys.path.insert(0, "$repo/python")
from memtrace import mark
def build(n):
    return [str(i) for i in range(n)]
mark("list")
xs = build(3000)
mark("dict")
d = {i: (i, [i]) for i in range(300)}
del xs
mark("end")
PY
run_traced "$work/traces/python.trace" "$python" "$work/seed.py"
"$MAKE_SEEDS" seeds "$work/seeds" "$work"/traces/*.trace

# JSON reports for fuzz_render, of every good and bad trace that has one.
for t in "$work"/seeds/trace/* "$BAD_TRACES"/*.trace; do
    out="$work/render/$(basename "$t").json"
    "$MEMTRACE_CLI" report --format json -o "$out" "$t" 2>/dev/null || true
    [[ -s $out ]] || rm -f "$out"
done

failed=0
fuzz() {
    local name=$1; shift
    local log="$work/$name.log"
    echo "fuzz: fuzz_$name for ${secs}s"
    if "$FUZZERS/fuzz_$name" -max_total_time="$secs" -timeout=30 -rss_limit_mb=3072 \
            -print_final_stats=1 -artifact_prefix="$work/artifacts/$name-" \
            "$@" >"$log" 2>&1; then
        grep -E '^(stat::number_of_executed_units|stat::new_units_added|#[0-9]+.*DONE)' "$log" |
            sed 's/^/    /' || true
    else
        failed=1
        echo "fuzz: fuzz_$name FAILED; the end of its log ($log):"
        tail -n 60 "$log" | sed 's/^/    /'
        ls "$work"/artifacts/"$name"-* 2>/dev/null | sed 's/^/    input: /' || true
    fi
}
fuzz trace -dict="$here/trace.dict" "$work/corpus/trace" "$work/seeds/trace" "$BAD_TRACES"
fuzz records "$work/corpus/records" "$work/seeds/records"
fuzz render -dict="$here/report.dict" "$work/corpus/render" "$work/render"
exit $failed
