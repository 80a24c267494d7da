#!/bin/sh
# check-model.sh: model-check the backup cancel protocol (tests/model/cancel.pml)
# with spin, and prove that the check can fail.
#
#   1. The clean model, per scenario: a safety run (assertions, invalid end
#      states: `pan -m`) and a liveness run of the LTL claim all_done
#      (`pan -a`).  Every run must report 0 errors over a complete search.
#   2. Each seeded bug (spin -DBUG_x): a safety run, then (if that found
#      nothing) a liveness run; one of them must report an error.
#
# Scenarios: by default the three of -DQUICK in one run, which together race
# every pair of threads, -DSC_BEGIN (edb_backup_begin, open, close and
# end racing env close and stop) and -DSC_WRITEFD (edb_backup_write_fd
# into a descriptor that may stop draining, canceled by stop, end or env
# close: about 15 s of pan); ALL=1 checks each of the sixteen combinations on its
# own, to completion: safety, liveness, and liveness under weak fairness
# (the proof of the whole model; about two hours of CPU and up to 10 GB,
# see README.md); FULL=1 runs all sixteen in one model (more memory than
# that: it has never completed).  pan is generated and compiled with cc -O2 in a temporary
# directory, never in the source tree; every pan run is bounded in time
# (PAN_TIMEOUT) and memory (MEMLIM MB), and a run that hits a bound counts
# as a failure, never as a pass.  One line per run: verdict, errors, states
# stored, depth reached, pan's time.
#
# Exit: 0 all as required; 1 otherwise; 77 (automake SKIP) when spin or a C
# compiler is missing.
#
# Usage: sh tests/model/check-model.sh [-k] [-v]
#   -k keep the temporary directory (pan sources, outputs and .trail files)
#      and print its path; -v print pan's full output of every run.
# Environment: ALL=1 (each of the sixteen scenarios on its own: pan -m,
# pan -a and pan -a -f, with -DCOLLAPSE; MEMLIM defaults to 16384 and
# PAN_TIMEOUT to 7200; a table per scenario at the end; SCEN="c2s1o4 begin ..."
# picks some of them), FULL=1 (every scenario in one run, all claims),
# FAIR=1 (liveness under weak fairness, pan -a -f), BUGS="BUG_x ..." (a
# subset; BUGS=none: no seeded bug), SPIN, CC,
# PAN_TIMEOUT (s per pan run, default 600: a bound against a runaway, not a
# budget; a QUICK run takes 5-80 s depending on load), MEMLIM (MB, default
# 2048), DEPTH (pan -m, default 100000).
set -u

keep=0 verbose=0
for a in "$@"; do
    case $a in
    -k) keep=1 ;;
    -v) verbose=1 ;;
    *) echo "usage: $0 [-k] [-v]" >&2; exit 2 ;;
    esac
done

here=$(cd "$(dirname "$0")" && pwd)
model=${MODEL:-$here/cancel.pml}
CC=${CC:-cc}
SPIN=${SPIN:-spin}
if [ -n "${PAN_TIMEOUT:-}" ]; then TIMEOUT_SET=1; else TIMEOUT_SET=0 PAN_TIMEOUT=600; fi
if [ -n "${MEMLIM:-}" ]; then MEMLIM_SET=1; else MEMLIM_SET=0 MEMLIM=2048; fi
DEPTH=${DEPTH:-100000}

# The model does not depend on how the library is built: scripts/test.sh checks
# it once, in the normal build, and sets EDB_SKIP_MODEL in the sanitizer builds.
[ -z "${EDB_SKIP_MODEL:-}" ] || { echo "SKIP: EDB_SKIP_MODEL is set (the model is checked in the normal build)"; exit 77; }
command -v "$SPIN" >/dev/null 2>&1 || { echo "SKIP: spin not installed ($SPIN)"; exit 77; }
command -v "$CC" >/dev/null 2>&1 || { echo "SKIP: no C compiler ($CC)"; exit 77; }
command -v timeout >/dev/null 2>&1 || { echo "SKIP: no timeout(1)"; exit 77; }
[ -r "$model" ] || { echo "FAIL: cannot read $model" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/edb-model.XXXXXX") || exit 1
if [ "$keep" = 1 ]; then
    echo "keeping $tmp"
else
    trap 'rm -rf "$tmp"' EXIT
    trap 'rm -rf "$tmp"; exit 1' HUP INT TERM
fi
cp "$model" "$tmp/cancel.pml" || exit 1
cd "$tmp" || exit 1

# Scenarios (init in cancel.pml): who closes the stream (the reading thread
# after its last read, or another thread at any moment) x whether a thread
# calls edb_backup_stop x edb_backup_end / edb_env_close / both in one thread
# / both in two threads.  By default -DQUICK: three of them in one run (read +
# end || env close; close from another thread + env close; read + stop +
# end), which race every pair of threads; and -DSC_BEGIN, edb_backup_begin
# and edb_backup_open racing edb_env_close (and stop).  FULL=1: all sixteen in one run
# (more than 100 million states: compiled with -DCOLLAPSE, MEMLIM raised to
# 16384 and PAN_TIMEOUT to 7200 unless set; see README.md).
if [ "${ALL:-0}" = 1 ]; then
    # cNsNoN = -DSC_CLOSE=N -DSC_STOP=N -DSC_OWNER=N, smallest first
    SCENARIOS=
    for c in 1 2; do for st in 0 1; do for o in 1 2 3 4; do
        name=c${c}s${st}o${o}
        if [ -n "${SCEN:-}" ]; then
            case " $SCEN " in *" $name "*) ;; *) continue ;; esac
        fi
        SCENARIOS="$SCENARIOS $name:-DSC_CLOSE=$c,-DSC_STOP=$st,-DSC_OWNER=$o"
    done; done; done
    case " ${SCEN:-begin} " in *" begin "*) SCENARIOS="$SCENARIOS begin:-DSC_BEGIN" ;; esac
    case " ${SCEN:-writefd} " in *" writefd "*) SCENARIOS="$SCENARIOS writefd:-DSC_WRITEFD" ;; esac
    [ -n "$SCENARIOS" ] || { echo "FAIL: SCEN='${SCEN:-}' names no scenario (c1s0o1 .. c2s1o4, begin, writefd)" >&2; exit 1; }
    COLLAPSE=-DCOLLAPSE
    [ "$MEMLIM_SET" = 1 ] || MEMLIM=16384
    [ "$TIMEOUT_SET" = 1 ] || PAN_TIMEOUT=7200
elif [ "${FULL:-0}" = 1 ]; then
    SCENARIOS="full:"
    COLLAPSE=-DCOLLAPSE
    [ "$MEMLIM_SET" = 1 ] || MEMLIM=16384
    [ "$TIMEOUT_SET" = 1 ] || PAN_TIMEOUT=7200
else
    SCENARIOS="quick:-DQUICK begin:-DSC_BEGIN writefd:-DSC_WRITEFD"
    COLLAPSE=
fi

# Seeded bug = the scenario it is checked in (the smallest that shows it).
ALLBUGS="BUG_WAIT_IGNORES_CANCEL:-DSC_CLOSE=1,-DSC_STOP=0,-DSC_OWNER=1
BUG_CANCEL_NO_MUTEX:-DSC_CLOSE=1,-DSC_STOP=0,-DSC_OWNER=1
BUG_SIGNAL_ONE:-DSC_CLOSE=1,-DSC_STOP=0,-DSC_OWNER=1
BUG_JOIN_LOCKED:-DSC_CLOSE=1,-DSC_STOP=0,-DSC_OWNER=2
BUG_FREE_NO_REF:-DSC_CLOSE=2,-DSC_STOP=0,-DSC_OWNER=1
BUG_READ_NO_REF:-DSC_CLOSE=2,-DSC_STOP=0,-DSC_OWNER=1
BUG_END_NO_REF:-DSC_CLOSE=2,-DSC_STOP=0,-DSC_OWNER=1
BUG_BEGIN_LEAVE_EARLY:-DSC_BEGIN
BUG_BEGIN_NO_BUSY:-DSC_BEGIN
BUG_OPEN_START_LATE:-DSC_BEGIN
BUG_CLOSE_NO_MARK:-DSC_BEGIN
BUG_DRAIN_IGNORES_CANCEL:-DSC_CLOSE=2,-DSC_STOP=0,-DSC_OWNER=1
BUG_POLL_IGNORES_WAKE:-DSC_WRITEFD
BUG_LEAVE_NO_WAKE:-DSC_CLOSE=2,-DSC_STOP=0,-DSC_OWNER=1"
BUGS=${BUGS:-$(echo "$ALLBUGS" | sed 's/:.*//')}
[ "$BUGS" = none ] && BUGS=

# The LTL claims (ltl NAME { ... } inside #ifdef LIVE).  all_done is the
# conjunction of the others (their flags are sticky, so "each eventually"
# equals "eventually all"); FULL=1 also runs each on its own.
ALL_CLAIMS=$(sed -n 's/^[[:space:]]*ltl[[:space:]]\{1,\}\([A-Za-z_][A-Za-z_0-9]*\).*/\1/p' cancel.pml)
if [ "${FULL:-0}" = 1 ]; then CLAIMS=$ALL_CLAIMS; else CLAIMS=all_done; fi
for c in $CLAIMS; do
    case " $(echo $ALL_CLAIMS) " in *" $c "*) ;; *) echo "FAIL: no ltl claim $c in the model" >&2; exit 1 ;; esac
done
# pan -a checks every execution, fair or not; that implies the claims under
# weak fairness.  (The model has no unbounded loop, so no unfair cycle can
# hide a violation.)  FAIR=1 adds -f as TESTING.md writes it.
if [ "${FAIR:-0}" = 1 ]; then FAIRFLAG=-f; else FAIRFLAG=; fi

failures=0
start=$(date +%s)

# build DIR CCFLAGS SPINDEFS...: spin -a and cc into DIR.
build() {
    d=$1 ccflags=$2; shift 2
    mkdir -p "$d" && cp cancel.pml "$d/" || return 1
    ( cd "$d" && "$SPIN" -a "$@" cancel.pml >spin.out 2>&1 &&
      $CC -O2 -w -DMEMLIM="$MEMLIM" -DNFAIR=4 $ccflags -o pan pan.c >cc.out 2>&1 ) || {
        echo "FAIL: cannot build pan in $d ($*)"
        cat "$d/spin.out" "$d/cc.out" 2>/dev/null
        return 1
    }
}

# run DIR LABEL PANARGS...: runs pan; sets $verdict to ok / error / incomplete
# and prints one summary line.
run() {
    d=$1 label=$2; shift 2
    ( cd "$d" && timeout "$PAN_TIMEOUT" ./pan "$@" >pan.out 2>&1 )
    status=$?
    out=$d/pan.out
    [ "$verbose" = 1 ] && cat "$out"
    errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$out" | tail -n 1)
    states=$(sed -n 's/^ *\([0-9e.+]*\) states, stored.*/\1/p' "$out" | tail -n 1)
    depth=$(sed -n 's/.*depth reached \([0-9]*\).*/\1/p' "$out" | tail -n 1)
    ptime=$(sed -n 's/^pan: elapsed time \([0-9.e+-]*\) seconds.*/\1/p' "$out" | tail -n 1)
    what=$(grep -m 1 -E '^pan:[0-9]+: ' "$out" | sed 's/^pan:[0-9]*: //; s/ (at depth [0-9]*)//')
    if [ "$status" -eq 124 ]; then
        verdict=incomplete what="timed out after ${PAN_TIMEOUT}s"
    elif [ -z "$errors" ]; then
        verdict=incomplete what="pan exited $status without a summary"
    elif [ "$errors" -gt 0 ]; then
        verdict=error
    elif grep -q -E 'max search depth too small|MEMLIM|out of memory|Search not completed' "$out"; then
        verdict=incomplete what="search not completed (depth $DEPTH or memory $MEMLIM MB)"
    else
        verdict=ok what=
    fi
    [ -f "$d/cancel.pml.trail" ] && mv "$d/cancel.pml.trail" "$d/$(echo "$label" | tr -c 'A-Za-z0-9_\n-' _).trail"
    printf '%-46s %-10s errors=%s states=%s depth=%s time=%ss%s\n' \
        "$label" "$verdict" "${errors:-?}" "${states:-?}" "${depth:-?}" "${ptime:-?}" \
        "${what:+  [$what]}"
}

# safety DIRNAME LABEL DEFS...
safety() {
    d=$1 label=$2; shift 2
    if build "$d" "-DSAFETY -DNOFAIR $COLLAPSE" "$@"; then
        run "$d" "$label safety" -m"$DEPTH" -w24
    else
        verdict=incomplete
    fi
}
# live DIRNAME LABEL CLAIM DEFS...
live() {
    d=$1 label=$2 claim=$3; shift 3
    if [ -x "$d/pan" ] || build "$d" "$COLLAPSE" -DLIVE "$@"; then
        run "$d" "$label live:$claim" -a $FAIRFLAG -m"$DEPTH" -w24 -N "${claim%(fair)}"
    else
        verdict=incomplete
    fi
}

# ALL=1: one row per scenario, "verdict states depth time" per run
rows=
cell() { echo "$verdict ${states:-?} ${depth:-?} ${ptime:-?}s"; }

echo "clean model (${FULL:+FULL: }${ALL:+ALL: }every run must pass)"
for sc in $SCENARIOS; do
    name=${sc%%:*}
    defs=$(echo "${sc#*:}" | tr ',' ' ')
    # shellcheck disable=SC2086
    safety "clean-$name-s" "$name" $defs
    [ "$verdict" = ok ] || failures=$((failures + 1))
    row="$(cell)"
    for c in $CLAIMS; do
        # shellcheck disable=SC2086
        live "clean-$name-l" "$name" "$c" $defs
        [ "$verdict" = ok ] || failures=$((failures + 1))
        row="$row | $(cell)"
    done
    rows="$rows
$name | $row"
    [ "$keep" = 1 ] || rm -rf "clean-$name-s"
done
if [ "${ALL:-0}" = 1 ]; then
    # Weak fairness, after every scenario's safety and liveness (pan -a
    # without -f already covers every execution, fair or not; these runs
    # check it as TESTING.md writes it): the same pan, compiled once.
    table=
    FAIRFLAG=-f
    for sc in $SCENARIOS; do
        name=${sc%%:*}
        defs=$(echo "${sc#*:}" | tr ',' ' ')
        # shellcheck disable=SC2086
        live "clean-$name-l" "$name" "all_done(fair)" $defs
        [ "$verdict" = ok ] || failures=$((failures + 1))
        table="$table
$(echo "$rows" | grep "^$name |") | $(cell)"
        [ "$keep" = 1 ] || rm -rf "clean-$name-l"
    done
    FAIRFLAG=
    echo "per scenario: verdict, states stored, depth, pan time (safety | live all_done | live all_done -f)"
    echo "$table" | sed '/^$/d'
fi
[ "$failures" -eq 0 ] || echo "FAIL: the clean model must pass every run ($failures did not)"

echo "seeded bugs: each must be caught"
for b in $BUGS; do
    line=$(echo "$ALLBUGS" | grep "^$b:")
    [ -n "$line" ] || { echo "FAIL: unknown seeded bug $b"; failures=$((failures + 1)); continue; }
    defs=$(echo "${line#*:}" | tr ',' ' ')
    # shellcheck disable=SC2086
    safety "$b-s" "$b" "-D$b" $defs
    caught=
    [ "$verdict" = error ] && caught=safety
    if [ -z "$caught" ]; then
        # shellcheck disable=SC2086
        live "$b-l" "$b" all_done "-D$b" $defs
        [ "$verdict" = error ] && caught=all_done
    fi
    if [ -z "$caught" ]; then
        echo "FAIL: seeded bug $b was not caught"
        failures=$((failures + 1))
    fi
done

end=$(date +%s)
if [ "$failures" -ne 0 ]; then
    echo "check-model: FAIL, $failures problem(s), $((end - start))s"
    [ "$keep" = 1 ] && echo "pan sources, outputs and trails kept in $tmp"
    exit 1
fi
echo "check-model: PASS, clean model verified, all seeded bugs caught, $((end - start))s"
exit 0
