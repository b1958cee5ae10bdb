#!/usr/bin/env bash
# run.sh -- runs the fuzz targets built by tests/fuzz/Makefile.
#
#   run.sh MODE SECONDS JOBS TIMEOUT TARGET...
#
#   smoke    replay regressions/<target>/* once, then fuzz SECONDS per target
#   long     fuzz SECONDS per target (regressions are not replayed, so a
#            known, unfixed bug does not stop the run)
#   regress  only replay regressions/<target>/*
#
# JOBS targets run at a time. Binaries come from $FUZZ_BUILD (default
# build). Each run starts from a fresh working corpus, build/work/<mode>/
# <target>/, holding a copy of corpus/<target>/ (the committed seeds stay
# as they are); crash, leak, timeout and OOM inputs land in
# build/artifacts/<mode>/<target>/ and the full libFuzzer output in
# build/logs/<mode>/<target>.log. One line of final stats per target;
# exit status 1 when any target crashed, leaked, timed out or ran out of
# memory.
set -uo pipefail
cd "$(dirname "$0")" || exit 2

mode=$1 secs=$2 jobs=$3 timeout=$4
shift 4
bin=${FUZZ_BUILD:-build}
logs=build/logs/$mode
mkdir -p "$logs"

dict_for() {
    case $1 in
    request_* | approval_row) echo dict/request.dict ;;
    json | url | form | config | policy | webauthn | oidc) echo "dict/$1.dict" ;;
    esac
}

stat() { sed -n "s/^stat::$1: *//p" "$2" | tail -n 1; }

# Runs one target; writes its summary line to $logs/<target>.summary.
run_one() {
    local t=$1 log=$logs/$1.log sum=$logs/$1.summary rc=0
    local exe=$bin/fuzz_$t
    : > "$log"
    if [[ ! -x $exe ]]; then
        echo "FAIL $t: $exe is not built" > "$sum"
        return
    fi
    local regs=()
    if [[ $mode != long && -d regressions/$t ]]; then
        mapfile -t regs < <(find "regressions/$t" -type f ! -name '*.md' | sort)
    fi
    if ((${#regs[@]})); then
        if ! "$exe" -timeout="$timeout" -rss_limit_mb=2048 "${regs[@]}" >> "$log" 2>&1; then
            local which
            which=$(sed -n 's/^Running: //p' "$log" | tail -n 1)
            echo "FAIL $t: regression ${which:-?} crashes (see $log;" \
                "reproduce: tests/fuzz/$exe tests/fuzz/${which:-?})" > "$sum"
            return
        fi
    fi
    if [[ $mode == regress ]]; then
        echo "ok   $t: ${#regs[@]} regression input(s) pass" > "$sum"
        return
    fi

    local work=build/work/$mode/$t art=build/artifacts/$mode/$t
    rm -rf "$work" "$art"
    mkdir -p "$work" "$art"
    cp corpus/"$t"/* "$work"/
    local seeds dict
    seeds=$(find "$work" -type f | wc -l)
    dict=$(dict_for "$t")
    # smoke (CI) starts from a fixed seed, so a run repeats what an earlier one
    # with the same seed did before going further; long runs draw a new one.
    local seed=
    [[ $mode == smoke ]] && seed=${FUZZ_SEED:-1}
    "$exe" -max_total_time="$secs" -max_len=65536 -timeout="$timeout" -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$art/" ${dict:+-dict="$dict"} ${seed:+-seed="$seed"} \
        "$work" >> "$log" 2>&1 || rc=$?

    local execs eps last cov ft corp crashes
    execs=$(stat number_of_executed_units "$log")
    eps=$(stat average_exec_per_sec "$log")
    last=$(grep -E '(DONE|pulse|NEW|REDUCE|INITED).* cov: ' "$log" | tail -n 1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<< "$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<< "$last")
    corp=$(find "$work" -type f | wc -l)
    crashes=$(find "$art" -type f | wc -l)
    local line
    line=$(printf '%-16s %4ss  execs %9s  exec/s %6s  cov %5s  ft %6s  corpus %4s (seeds %s)  crashes %s' \
        "$t" "$secs" "${execs:-?}" "${eps:-?}" "${cov:-?}" "${ft:-?}" "$corp" "$seeds" "$crashes")
    if ((rc != 0 || crashes != 0)); then
        echo "FAIL $line" > "$sum"
    else
        echo "ok   $line" > "$sum"
    fi
}

targets=("$@")
echo "fuzz $mode: ${#targets[@]} target(s), ${secs}s each, $jobs at a time (logs in tests/fuzz/$logs)"
running=0
for t in "${targets[@]}"; do
    rm -f "$logs/$t.summary"
    run_one "$t" &
    running=$((running + 1))
    if ((running >= jobs)); then
        wait -n
        running=$((running - 1))
    fi
done
wait

fail=0
for t in "${targets[@]}"; do
    line=$(cat "$logs/$t.summary" 2>/dev/null || echo "FAIL $t: no result")
    echo "$line"
    if [[ $line == FAIL* ]]; then
        fail=1
        echo "---- $logs/$t.log (end) ----"
        grep -nE 'FUZZ PROPERTY|ERROR: |SUMMARY: |ALARM|out-of-memory|Test unit written|^Running: ' \
            "$logs/$t.log" | tail -n 15
        for a in build/artifacts/"$mode"/"$t"/*; do
            [[ -f $a ]] && echo "reproduce: tests/fuzz/$bin/fuzz_$t tests/fuzz/$a"
        done
    fi
done
exit $fail
