#!/bin/sh
# check-model.sh: model-check the backup cancel protocol (tests/model/cancel.pml)
# with spin, and prove that the check can fail.
#
#   1. The clean model: a safety run (assertions, invalid end states) and one
#      liveness run under weak fairness per LTL claim.  Every run must report
#      0 errors and a complete search.
#   2. Each seeded bug (spin -DBUG_x): the same runs, and at least one of them
#      must report an error.  A seeded bug that no run catches fails the test.
#
# pan is generated and compiled in a temporary directory (never in the source
# tree); each pan run is bounded by `timeout`.  One line per run: what ran,
# the verdict, errors, states stored, depth reached and time.
#
# Exit: 0 all as required; 1 otherwise; 77 (automake SKIP) when spin or a C
# compiler is missing.
#
# Usage: sh tests/model/check-model.sh [-k] [-v]
#   -k keep the temporary directory (pan sources and any .trail files) and
#      print its path; -v print pan's full output of every run.
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
PAN_TIMEOUT=${PAN_TIMEOUT:-60}      # seconds per pan run
DEPTH=${DEPTH:-100000}              # pan -m

command -v "$SPIN" >/dev/null 2>&1 || { echo "SKIP: spin not installed ($SPIN)"; exit 77; }
command -v "$CC" >/dev/null 2>&1 || { echo "SKIP: no C compiler ($CC)"; exit 77; }
[ -r "$model" ] || { echo "FAIL: cannot read $model" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/edb-model.XXXXXX") || exit 1
if [ "$keep" = 1 ]; then
    echo "keeping $tmp"
else
    trap 'rm -rf "$tmp"' EXIT
    trap 'rm -rf "$tmp"; exit 1' HUP INT TERM
fi
cp "$model" "$tmp/cancel.pml"
cd "$tmp" || exit 1

# The seeded bugs: name and what it breaks (documented in README.md).
BUGS=${BUGS:-"BUG_WAIT_IGNORES_CANCEL BUG_CANCEL_NO_MUTEX BUG_SIGNAL_ONE BUG_JOIN_LOCKED BUG_FREE_NO_REF BUG_READ_NO_REF"}
# The LTL claims (ltl NAME { ... } inside #ifdef LIVE).  By default only
# all_done, the conjunction of the others (their flags are sticky, so "each
# eventually" equals "eventually all"); FULL=1 runs every claim on its own.
ALL_CLAIMS=$(sed -n 's/^[[:space:]]*ltl[[:space:]]\{1,\}\([A-Za-z_][A-Za-z_0-9]*\).*/\1/p' cancel.pml)
if [ "${FULL:-0}" = 1 ]; then CLAIMS=$ALL_CLAIMS; else CLAIMS=all_done; fi
for c in $CLAIMS; do
    case " $(echo $ALL_CLAIMS) " in *" $c "*) ;; *) echo "FAIL: no ltl claim $c in the model" >&2; exit 1 ;; esac
done
# pan -a checks every execution, fair or not, which implies the claims under
# weak fairness (the model has no infinite loop, so no unfair cycle can hide
# a violation); FAIR=1 adds -f as TESTING.md writes it (about 5x slower).
if [ "${FAIR:-0}" = 1 ]; then FAIRFLAG=-f; else FAIRFLAG=; fi

failures=0
start=$(date +%s)

# build DIR DEFS...: spin -a and cc into DIR; prints nothing on success.
build() {
    d=$1; shift
    mkdir -p "$d" && cp cancel.pml "$d/" || return 1
    ( cd "$d" && $SPIN -a "$@" cancel.pml >spin.out 2>&1 &&
      $CC -O2 -w -DNFAIR=3 -o pan pan.c >cc.out 2>&1 ) || {
        echo "FAIL: cannot build pan in $d ($*)" >&2
        cat "$d/spin.out" "$d/cc.out" >&2 2>/dev/null
        return 1
    }
}

# run DIR LABEL PANARGS...: runs pan; sets $verdict to ok / error / incomplete
# and prints one summary line.
run() {
    d=$1 label=$2; shift 2
    t0=$(date +%s)
    ( cd "$d" && timeout "$PAN_TIMEOUT" ./pan "$@" >pan.out 2>&1 )
    status=$?
    t1=$(date +%s)
    out=$d/pan.out
    [ "$verbose" = 1 ] && cat "$out"
    errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$out" | tail -n 1)
    states=$(sed -n 's/^ *\([0-9e.+]*\) states, stored.*/\1/p' "$out" | tail -n 1)
    depth=$(sed -n 's/.*depth reached \([0-9]*\).*/\1/p' "$out" | tail -n 1)
    ptime=$(sed -n 's/^pan: elapsed time \([0-9.e+-]*\) seconds.*/\1/p' "$out" | tail -n 1)
    what=$(grep -m 1 -E '^pan:[0-9]+: |^pan: (invalid end state|acceptance cycle|assertion)' "$out" |
           sed 's/ (at depth [0-9]*)//')
    if [ "$status" -eq 124 ]; then
        verdict=incomplete what="timed out after ${PAN_TIMEOUT}s"
    elif [ -z "$errors" ]; then
        verdict=incomplete what="pan exited $status without a summary"
    elif [ "$errors" -gt 0 ]; then
        verdict=error
    elif grep -q 'max search depth too small' "$out"; then
        verdict=incomplete what="search depth $DEPTH too small"
    else
        verdict=ok what=
    fi
    printf '%-44s %-10s errors=%s states=%s depth=%s time=%ss (wall %ss)%s\n' \
        "$label" "$verdict" "${errors:-?}" "${states:-?}" "${depth:-?}" "${ptime:-?}" \
        "$((t1 - t0))" "${what:+  [$what]}"
}

# check CONFIG DEFS...: all runs of one configuration; sets $caught to the
# runs that reported an error and $bad to runs that did not complete.
check() {
    cfg=$1; shift
    caught= bad=
    build "$cfg-safety" "$@" || { bad=build; return; }
    run "$cfg-safety" "$cfg safety" -m"$DEPTH" -w22
    case $verdict in error) caught="$caught safety" ;; incomplete) bad="$bad safety" ;; esac
    build "$cfg-live" -DLIVE "$@" || { bad="$bad build"; return; }
    for c in $CLAIMS; do
        run "$cfg-live" "$cfg live:$c" -a $FAIRFLAG -m"$DEPTH" -w22 -N "$c"
        case $verdict in error) caught="$caught $c" ;; incomplete) bad="$bad $c" ;; esac
        if [ "$verdict" = error ] && [ -f "$cfg-live/cancel.pml.trail" ]; then
            mv "$cfg-live/cancel.pml.trail" "$cfg-live/$c.trail"
        fi
    done
}

check clean
if [ -n "$caught$bad" ]; then
    echo "FAIL: the clean model must pass every run (errors in:$caught; incomplete:$bad)"
    failures=$((failures + 1))
fi

for b in $BUGS; do
    check "$b" "-D$b"
    if [ -z "$caught" ]; then
        echo "FAIL: seeded bug $b was not caught by any run"
        failures=$((failures + 1))
    else
        echo "caught: $b by:$caught"
    fi
done

end=$(date +%s)
if [ "$failures" -ne 0 ]; then
    echo "check-model: $failures failure(s) in $((end - start))s"
    [ "$keep" = 1 ] && echo "pan sources and trails kept in $tmp"
    exit 1
fi
echo "check-model: clean model passes, all seeded bugs caught, in $((end - start))s"
exit 0
