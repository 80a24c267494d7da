#!/bin/sh
# S3 repository figures (issue #16), against a server on 127.0.0.1 started
# here (s3rver when installed, else moto_server; neither: skipped):
#  1. upload: 'dbtool backup DB --repo s3://...' (a full archive streamed into
#     a multipart upload) against 'curl -T' of the same archive to the same
#     server (the archive already on disk; curl signs with --aws-sigv4);
#  2. restore: 'dbtool restore --repo s3://...' against a curl download of the
#     archive followed by 'dbtool restore' of the file;
#  3. SIGTERM to exit with a part in flight to a server that never answers
#     (tests/tools/s3_misbehave.py stall), --s3-timeout 60.
# A database of ROWS rows (default 100,000, about 23 MB); REPS runs (default
# 3) interleave each pair (A B A B).  Prints each run and the medians.
# s3rver assembles a multipart upload on disk when it is completed (about
# 0.2 s per 8 MiB part here), which a single 'curl -T' PUT does not pay: the
# upload figure is therefore also taken with BENCH_S3_SERVER=moto_server.
#
#   sh tests/bench/bench_s3.sh BUILD_DIR [ROWS] [REPS]
set -eu
build=${1:-build}
rows=${2:-100000}
reps=${3:-3}
top=$(cd "$(dirname "$0")/../.." && pwd)
dbtool="$build/dbtool"
[ -x "$dbtool" ] || { echo "bench_s3: $dbtool not built"; exit 1; }
work=$(mktemp -d /tmp/edb-bench-s3-XXXXXX)
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
mbps() { echo "scale=1; $1 / 1048576 / $2" | bc; }
port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {
    i=0
    until curl -s -o /dev/null "http://127.0.0.1:$1/"; do
        i=$((i + 1)); [ $i -lt 200 ] || return 1; sleep 0.1
    done
}

p=$(port)
# BENCH_S3_SERVER=moto_server picks moto even when s3rver is installed.
if [ "${BENCH_S3_SERVER:-s3rver}" = s3rver ] && command -v s3rver >/dev/null 2>&1; then
    server=s3rver
    mkdir "$work/s3"
    s3rver -d "$work/s3" -a 127.0.0.1 -p "$p" --silent --configure-bucket bkt >"$work/server.log" 2>&1 &
    pids="$pids $!"
    export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
    wait_port "$p" || { echo "bench_s3: s3rver did not start; skipped"; exit 0; }
elif command -v moto_server >/dev/null 2>&1; then
    server=moto_server
    moto_server -H 127.0.0.1 -p "$p" >"$work/server.log" 2>&1 &
    pids="$pids $!"
    export AWS_ACCESS_KEY_ID=AKIDBENCH AWS_SECRET_ACCESS_KEY=benchsecret
    wait_port "$p" || { echo "bench_s3: moto_server did not start; skipped"; exit 0; }
    curl -sf -X PUT "http://127.0.0.1:$p/bkt" >/dev/null
else
    echo "bench_s3: neither s3rver nor moto_server is installed (scripts/deps.sh); skipped"
    exit 0
fi
ep="http://127.0.0.1:$p"
sign() {  # curl with the same SigV4 signing libcurl gives dbtool
    curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" -u "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
        -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"
}

"$dbtool" create "$work/db" >/dev/null
echo '{"name": "t", "columns": [{"name": "id", "type": "int64", "flags": ["autoinc"]}, {"name": "v", "type": "text"}],
 "indexes": [{"name": "pk", "key": ["+id"], "flags": ["primary"]}]}' > "$work/schema.json"
"$dbtool" create-table "$work/db" "$work/schema.json"
awk -v n="$rows" 'BEGIN { for (i = 0; i < n; i++) printf "{\"v\": \"row %d %0180d\"}\n", i, (i * 7919) % 1000000007 }' |
    "$dbtool" import "$work/db" t - >/dev/null
"$dbtool" backup "$work/db" "$work/a.edbk" --quiet
bytes=$(stat -c %s "$work/a.edbk")
echo "server: $server on $ep; archive: $bytes bytes ($rows rows)"

: > "$work/t_up"; : > "$work/t_curl"; : > "$work/t_two"; : > "$work/t_rs"; : > "$work/t_dl"
for r in $(seq 1 "$reps"); do
    t0=$(now); "$dbtool" backup "$work/db" --repo "s3://bkt/bench/r$r" --s3-endpoint "$ep" --s3-path-style --quiet; t1=$(now)
    sign -T "$work/a.edbk" "$ep/bkt/curl/a$r.edbk" >/dev/null; t2=$(now)
    "$dbtool" backup "$work/db" "$work/b.edbk" --quiet --overwrite; t3=$(now)
    a=$(secs "$t0" "$t1"); b=$(secs "$t1" "$t2"); c=$(secs "$t2" "$t3")
    two=$(echo "$b + $c" | bc)
    echo "$a" >> "$work/t_up"; echo "$b" >> "$work/t_curl"; echo "$two" >> "$work/t_two"
    echo "run $r: backup --repo s3:// $a s ($(mbps "$bytes" "$a") MiB/s), curl -T $b s ($(mbps "$bytes" "$b") MiB/s), backup to a file $c s"
done
mu=$(median < "$work/t_up"); mc=$(median < "$work/t_curl"); mt=$(median < "$work/t_two")
echo "median upload: backup --repo s3:// $mu s ($(mbps "$bytes" "$mu") MiB/s, snapshot and copy included), curl -T $mc s ($(mbps "$bytes" "$mc") MiB/s); ratio $(echo "scale=2; $mu / $mc" | bc)"
echo "median two steps (backup to a file, then curl -T): $mt s; backup --repo s3:// / two steps: $(echo "scale=2; $mu / $mt" | bc)"

for r in $(seq 1 "$reps"); do
    rm -rf "$work/r1" "$work/r2" "$work/dl.edbk"
    t0=$(now); "$dbtool" restore "$work/r1" --repo "s3://bkt/bench/r$r" --s3-endpoint "$ep" --s3-path-style >/dev/null; t1=$(now)
    sign -o "$work/dl.edbk" "$ep/bkt/curl/a$r.edbk"; "$dbtool" restore "$work/r2" "$work/dl.edbk" >/dev/null; t2=$(now)
    a=$(secs "$t0" "$t1"); b=$(secs "$t1" "$t2")
    echo "$a" >> "$work/t_rs"; echo "$b" >> "$work/t_dl"
    echo "run $r: restore --repo s3:// $a s, curl download + restore $b s"
done
mr=$(median < "$work/t_rs"); md=$(median < "$work/t_dl")
echo "median restore: restore --repo s3:// $mr s, curl + restore $md s; ratio $(echo "scale=2; $mr / $md" | bc)"

# SIGTERM with a part in flight to a server that never answers.
: > "$work/t_sig"
python3 "$top/tests/tools/s3_misbehave.py" stall "$work/stall.port" "$work/stall.log" >/dev/null 2>&1 &
pids="$pids $!"
i=0; until [ -s "$work/stall.port" ]; do i=$((i + 1)); [ $i -lt 200 ] || { echo "bench_s3: stall server did not start"; exit 1; }; sleep 0.05; done
sp=$(cat "$work/stall.port")
for r in $(seq 1 "$reps"); do
    : > "$work/stall.log"
    "$dbtool" backup "$work/db" --repo "s3://bkt/sig/r$r" --s3-endpoint "http://127.0.0.1:$sp" --s3-path-style \
        --s3-timeout 60 --quiet 2>/dev/null &
    bp=$!
    i=0; until grep -q part-start "$work/stall.log"; do i=$((i + 1)); [ $i -lt 400 ] || break; sleep 0.025; done
    sleep 0.2
    t0=$(now); kill -TERM "$bp"; wait "$bp" || true; t1=$(now)
    s=$(secs "$t0" "$t1"); echo "$s" >> "$work/t_sig"
    echo "run $r: SIGTERM to exit with a part in flight: $s s"
done
echo "median SIGTERM to exit: $(median < "$work/t_sig") s (target < 1 s)"
