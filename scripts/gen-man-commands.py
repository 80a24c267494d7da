#!/usr/bin/env python3
"""Rewrite the COMMANDS section of doc/dbtool.1 (between ".SH COMMANDS" and
".SH EXIT STATUS") from the help texts in tools/dbtool.c, so that
'dbtool help CMD' and the man page say the same words (a test checks it).
Usage: python3 scripts/gen-man-commands.py tools/dbtool.c doc/dbtool.1"""
import re
import sys

src = open(sys.argv[1]).read()
tbl = src[src.index('static const dbt_cmd commands[] = {'):src.index('#define NCOMMANDS')]
entries = re.findall(r'\{ "([a-z-]+)", dbt_cmd_\w+,\s*"((?:[^"\\]|\\.)*)",\s*((?:"(?:[^"\\]|\\.)*"\s*)+)\}', tbl)


def cstr(parts):
    return ''.join(bytes(p, 'utf-8').decode('unicode_escape')
                   for p in re.findall(r'"((?:[^"\\]|\\.)*)"', parts))


def esc(line):
    line = line.replace('\\', '\\e').replace('-', '\\-')
    return '\\&' + line if line[:1] in ('.', "'") else line


out = []
for name, syn, parts in entries:
    out += ['.TP', '.B dbtool ' + esc(bytes(syn, 'utf-8').decode('unicode_escape'))]
    block = False
    for line in cstr(parts).rstrip('\n').split('\n'):
        if line.startswith('  ') != block:
            out.append('.nf' if not block else '.fi')
            block = not block
        out.append(esc(line))
    if block:
        out.append('.fi')
man = open(sys.argv[2]).read()
a = man.index('.SH COMMANDS\n') + len('.SH COMMANDS\n')
b = man.index('.SH EXIT STATUS\n')
open(sys.argv[2], 'w').write(man[:a] + '\n'.join(out) + '\n' + man[b:])
