#!/usr/bin/env python3
"""Mutation check of the key codec tests: apply one deliberate bug at a time to
engine/key.c, rebuild tests/bin/keys in BUILD (default: build), run it, and
report which tests caught the bug.  Every mutant must be caught by at least one
test.  engine/key.c is restored at the end (also on error or Ctrl-C).

    python3 tests/engine/key_mutants.py [BUILD]
"""
import os, subprocess, sys
top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.chdir(top)
build = sys.argv[1] if len(sys.argv) > 1 else 'build'
src = 'engine/key.c'
orig = open(src).read()
muts = [
 ("no sign flip", "            u ^= UINT64_C(1) << (8 * n - 1);\n        store_be(p, u, n);", "            u ^= 0;\n        store_be(p, u, n);"),
 ("no -0 normalization double", "        if (d == 0.0)\n            d = 0.0;", ""),
 ("no -0 normalization float", "        if (f == 0.0f)\n            f = 0.0f;                          /* -0.0 -> +0.0 */", ""),
 ("float negative not inverted", "u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);", "u = (u & 0x80000000u) ? (u & 0x7FFFFFFFu) : (u | 0x80000000u);"),
 ("no NaN check double", "        if (d != d)\n            return edb__err(EDB_INVAL, \"key segment: double value is NaN\");", ""),
 ("no zero escape", "            if (s[i] == 0)\n                *w++ = (uint8_t)(0xFF ^ inv);", ""),
 ("terminator 00 01", "    *w++ = inv;\n    *w++ = inv;", "    *w++ = inv;\n    *w++ = (uint8_t)(1 ^ inv);"),
 ("prefix inverted for desc", "        p[0] = PREFIX_VALUE;\n        if (desc)", "        p[0] = desc ? 0xFD : PREFIX_VALUE;\n        if (desc)"),
 ("desc not inverted fixed", "                p[1 + i] = (uint8_t)~tmp[i];", "                p[1 + i] = tmp[i];"),
 ("null prefix ignores mode", "    return mode != 0 ? PREFIX_NULL_HIGH : PREFIX_NULL;", "    return PREFIX_NULL;"),
 ("null always high", "    return mode != 0 ? PREFIX_NULL_HIGH : PREFIX_NULL;", "    return PREFIX_NULL_HIGH;"),
 ("nulls high only descending", "    return mode != 0 ? PREFIX_NULL_HIGH", "    return (mode & EDB__KEY_DESC) ? PREFIX_NULL_HIGH"),
 ("descending nulls low", "    return mode != 0 ? PREFIX_NULL_HIGH", "    return mode == EDB__KEY_NULLS_HIGH ? PREFIX_NULL_HIGH"),
 ("decode any null prefix", "    if (prefix == null_prefix(mode)) {", "    if (prefix == PREFIX_NULL || prefix == PREFIX_NULL_HIGH) {"),
 ("unknown mode accepted", "    if (mode & ~KNOWN_MODES)\n        return edb__err(EDB_INVAL, \"key segment: unknown mode", "    if (0)\n        return edb__err(EDB_INVAL, \"key segment: unknown mode"),
 ("toobig off by one fixed", "if (room < (size_t)n + 1)", "if (room < (size_t)n)"),
 ("toobig escapes ignored", "    if (zeros > room - 3 - size)", "    if (0)"),
 ("successor keeps FF", "    while (n > 0 && buf[n - 1] == 0xFF)\n        n--;", ""),
 ("utf8 no surrogate check", "            if (c == 0xED) hi = 0x9F;         /* surrogates */", ""),
 ("utf8 no overlong 4", "            if (c == 0xF0) lo = 0x90;         /* overlong */", ""),
 ("utf8 accepts NUL", "        if (c >= 0x01 && c < 0x80) {", "        if (c < 0x80) {"),
 ("bool not checked", "        if (b > 1)\n            return edb__err(EDB_INVAL", "        if (0)\n            return edb__err(EDB_INVAL"),
 ("decode bad escape accepted", "        if (e != 0xFF || type == EDB_COL_TEXT)", "        if (type == EDB_COL_TEXT)"),
 ("decode truncation no warning", "            ret = EDB_WRN_TRUNCATED;\n        if (inv", "            ret = 0;\n        if (inv"),
 ("decode skip escape wrong", "                    r++;                       /* skip the escape byte */", "                    r += 0;"),
 ("decode off not advanced fixed", "        *off = at + (size_t)n;", "        *off = at + (size_t)n - 1;"),
 ("wrong size accepted", "        if (size != (size_t)n)", "        if (size < (size_t)n)"),
 ("len changed on toobig", "        if (room < 1)\n            return edb__err(EDB_TOOBIG", "        if (room < 1)\n            return *len += 1, edb__err(EDB_TOOBIG"),
]
missed = []
try:
    for name, a, b in muts:
        if orig.count(a) != 1:
            sys.exit("pattern of mutant '%s' not found once in %s" % (name, src))
        open(src, 'w').write(orig.replace(a, b))
        r = subprocess.run("make -C %s tests/bin/keys >/dev/null 2>&1 && ./%s/tests/bin/keys -j2 2>&1"
                           % (build, build), shell=True, capture_output=True, text=True, errors="replace")
        out = r.stdout + r.stderr
        caught = sorted(set(l.split('::')[1].split(':')[0] for l in out.splitlines()
                            if '::' in l and ('FAIL' in l or 'CRASH' in l or 'Timeout' in l)))
        syn = [l for l in out.splitlines() if 'Synthesis' in l]
        if not syn:
            sys.exit("mutant '%s' did not build or run:\n%s" % (name, out[-2000:]))
        print("%-32s caught by %2d: %s" % (name, len(caught), ", ".join(caught)))
        if not caught:
            missed.append(name)
finally:
    open(src, 'w').write(orig)
    subprocess.run("make -C %s tests/bin/keys >/dev/null 2>&1" % build, shell=True)
if missed:
    sys.exit("mutants not caught: " + ", ".join(missed))
print("every mutant was caught")
