#!/bin/sh
# STYLE.md "One place per fact", checked over engine/, backup/ and tools/:
# - LMDB's on-disk layout is written down once, in engine/lmdb_layout.h: fail
#   when a file outside it states the magic, defines a page-header, node or
#   meta constant as a number, or reads a meta or page field at a literal offset;
# - LMDB's return codes are compared with MDB_* only in engine/error.c;
# - nobody cuts the code's name off the thread's last error: its message is
#   edb_error_last_message(), its code edb_error_last_code().
# - a column type's facts are its row in engine/coltype.h (name, size,
#   signedness, JSON kind): tools/ never switches on a column type nor ranges
#   over the type numbers (jsonval.c keeps one codec per JSON kind).
set -eu
top="${top_srcdir:-.}"
cd "$top"
files=$(find engine backup tools -name '*.[ch]' ! -name lmdb_layout.h | sort)
[ -n "$files" ] || { echo "check-one-place: no sources under $top"; exit 1; }
fail=0
report() { echo "check-one-place: $1:"; printf '%s\n' "$2"; fail=1; }
hits=$(grep -in 'beefc0de' $files || true)
[ -z "$hits" ] || report "LMDB's magic outside engine/lmdb_layout.h" "$hits"
hits=$(grep -En '^#define +(PAGEHDRSZ|NODESIZE|P_(BRANCH|LEAF|LEAF2|OVERFLOW|META|SUBP)|F_(BIGDATA|SUBDATA|DUPDATA)|[A-Z_]*(META|DB|PAGE|NODE)_OFF_[A-Z]*|[A-Z_]*DB_SIZE) +\(?(0x)?[0-9a-fA-F]+u?\)?( |$)' $files || true)
[ -z "$hits" ] || report "a layout constant defined as a number outside engine/lmdb_layout.h" "$hits"
hits=$(grep -En '(rd|le)(16|32|64)\((m|meta|pick|page|node|big|first|data|db)(\[[a-z0-9]+\])? \+ (10|12|14|16|20|40|46|80|88|136|144)\)' $files || true)
[ -z "$hits" ] || report "a page or meta field read at a literal offset" "$hits"
# (cursor operations such as MDB_NEXT are not codes: they may be compared anywhere)
ops='MDB_(FIRST|FIRST_DUP|GET_BOTH|GET_BOTH_RANGE|GET_CURRENT|GET_MULTIPLE|LAST|LAST_DUP|NEXT|NEXT_DUP|NEXT_MULTIPLE|NEXT_NODUP|PREV|PREV_DUP|PREV_NODUP|PREV_MULTIPLE|SET|SET_KEY|SET_RANGE)\b'
hits=$(grep -En '(==|!=) *MDB_[A-Z_]+|MDB_[A-Z_]+ *(==|!=)|case +MDB_' $(printf '%s\n' $files | grep -vx engine/error.c) |
       grep -Ev "(==|!=) *$ops|$ops *(==|!=)|case +$ops" || true)
[ -z "$hits" ] || report "an LMDB code compared outside engine/error.c" "$hits"
hits=$(grep -En 'edb_error_last\(\) *\+|strlen\("EDB_|strncmp\([a-z]+, "EDB_", *4\)|strlen\(edb_err_name\([a-z]+\)\) *\+ *2|strstr\((d|detail), ": "\)|strncmp\(detail, name, nl\)' $files || true)
[ -z "$hits" ] || report "the code's name cut off an error string" "$hits"
types='EDB_COL_(BOOL|INT8|INT16|INT32|INT64|UINT8|UINT16|UINT32|UINT64|FLOAT|DOUBLE|DATETIME|GUID|TEXT|BINARY)\b'
hits=$(grep -En "case +$types|[<>]=? *$types|$types *[<>]" $(printf '%s\n' $files | grep '^tools/') || true)
[ -z "$hits" ] || report "a column type switched on or ranged over in tools/ (use engine/coltype.h's row)" "$hits"
[ "$fail" -eq 0 ] || exit 1
echo "check-one-place: LMDB's layout in engine/lmdb_layout.h only, its codes compared in engine/error.c only, no error string cut, column types by their coltype.h row in tools/ ($(echo $files | wc -w) files)"
