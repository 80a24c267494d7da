#!/usr/bin/env python3
"""Package-index-like rows for the benchmarks (issue #12), as JSON lines or CSV.

    python3 tests/bench/gen_packages.py N [--csv] [--seed S]
    python3 tests/bench/gen_packages.py --from /path/to/Packages [--csv]

Each row is shaped like a stanza of Debian's Packages file (package, version,
architecture, maintainer, installed_size, depends as a multi-valued text
column, sha256 as 64 hex characters, ...), with the columns of
tests/bench/packages.schema.json.  Generated rows are deterministic: the same
N and seed print the same bytes on every machine.  Sizes and value counts
follow bookworm's main/binary-amd64 Packages (63,440 stanzas, about 5 depends
each, 46-byte descriptions, 2,248 maintainers), which --from converts when a
machine has it (an uncompressed file; `/usr/lib/apt/apt-helper cat-file`
decompresses apt's lists).  The benchmarks never depend on the real file.

CSV (for sqlite3 .import and dbtool import --csv): a header row, fields
quoted as RFC 4180, NULL as an empty unquoted field, the multi-valued depends
as a JSON array in one field (dbtool's CSV convention).
"""
import hashlib
import json
import random
import sys

COLUMNS = ["package", "source", "version", "installed_size", "maintainer",
           "architecture", "depends", "description", "homepage",
           "description_md5", "tag", "section", "priority", "filename",
           "size", "md5sum", "sha256"]
INTS = {"installed_size", "size"}
FIELDS = {"Package": "package", "Source": "source", "Version": "version",
          "Installed-Size": "installed_size", "Maintainer": "maintainer",
          "Architecture": "architecture", "Depends": "depends",
          "Description": "description", "Homepage": "homepage",
          "Description-md5": "description_md5", "Tag": "tag",
          "Section": "section", "Priority": "priority",
          "Filename": "filename", "Size": "size", "MD5sum": "md5sum",
          "SHA256": "sha256"}

SECTIONS = ["libs", "libdevel", "python", "doc", "perl", "devel", "utils",
            "net", "misc", "x11", "text", "science", "games", "admin",
            "graphics", "web", "java", "sound", "golang", "rust", "ruby",
            "javascript", "math", "kernel", "interpreters", "editors"]
WORDS = ("library tool data files for the python module development headers "
         "documentation plugin support client server command line interface "
         "simple fast static shared runtime bindings extension utilities "
         "graphical network protocol parser generator test suite common "
         "kernel driver font theme game engine audio video image compiler "
         "debug symbols transitional package collection").split()
SYL = ["lib", "py", "gir", "node", "ruby", "golang", "rust", "perl", "x",
       "gnome", "kde", "qt", "gtk", "tex", "font", "ocaml", "haskell", "r",
       "php", "java", "lua", "ml", "core", "util", "net", "sql", "xml",
       "json", "ssl", "crypt", "zip", "gl", "cairo", "pango", "dbus"]


def word(rng, n):
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(n))


def generate(n, seed):
    rng = random.Random(seed)
    maint = ["%s %s <%s@%s.org>" % (word(rng, 6).title(), word(rng, 8).title(),
                                    word(rng, 7), rng.choice(["debian", "lists.debian", "example"]))
             for _ in range(2248)]
    teams = ["Debian %s Team <debian-%s@lists.debian.org>" % (s.title(), s) for s in SECTIONS]
    names = []
    seen = set()
    while len(names) < n:
        base = "-".join([rng.choice(SYL)] + [word(rng, rng.randint(3, 9)) for _ in range(rng.randint(0, 2))])
        name = base + rng.choice(["", "", "-dev", "-doc", "-dbgsym", str(rng.randint(0, 9))])
        ver = "%d.%d.%d-%d" % (rng.randint(0, 5), rng.randint(0, 30), rng.randint(0, 99), rng.randint(1, 9))
        if (name, ver) in seen:
            continue
        seen.add((name, ver))
        names.append((name, ver))
    for i, (name, ver) in enumerate(names):
        arch = "all" if rng.random() < 0.35 else "amd64"
        sec = rng.choice(SECTIONS)
        row = {
            "package": name,
            "source": name.split("-")[0] if rng.random() < 0.72 else None,
            "version": ver,
            "installed_size": rng.randint(1, 200000) if rng.random() < 0.998 else None,
            "maintainer": rng.choice(teams) if rng.random() < 0.4 else rng.choice(maint),
            "architecture": arch,
            "depends": None,
            "description": " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9))).capitalize(),
            "homepage": "https://%s.org/%s" % (word(rng, 8), name) if rng.random() < 0.93 else None,
            "description_md5": hashlib.md5(("d%d" % i).encode()).hexdigest(),
            "tag": ", ".join("%s::%s" % (word(rng, 5), word(rng, 6)) for _ in range(rng.randint(1, 4)))
                   if rng.random() < 0.48 else None,
            "section": sec,
            "priority": "optional" if rng.random() < 0.97 else "extra",
            "filename": "pool/main/%s/%s/%s_%s_%s.deb" % (name[0], name, name, ver, arch),
            "size": rng.randint(800, 5000000),
            "md5sum": hashlib.md5(("p%d" % i).encode()).hexdigest(),
            "sha256": hashlib.sha256(("p%d" % i).encode()).hexdigest(),
        }
        if rng.random() < 0.88:
            deps = []
            for _ in range(max(1, int(rng.expovariate(1 / 5.6)))):
                d = rng.choice(names)[0]
                if rng.random() < 0.5:
                    d += " (>= %d.%d)" % (rng.randint(0, 5), rng.randint(0, 30))
                deps.append(d)
            row["depends"] = deps
        yield row


def parse(path):
    """Stanzas of a real Packages file, mapped onto the same columns."""
    cur, last = {}, None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                if cur:
                    yield convert(cur)
                cur, last = {}, None
            elif line[0] in " \t":
                if last is not None:
                    cur[last] += "\n" + line[1:]
            else:
                k, _, v = line.partition(":")
                last = k
                cur[k] = v.strip()
    if cur:
        yield convert(cur)


def convert(st):
    row = {c: None for c in COLUMNS}
    for k, c in FIELDS.items():
        if k in st:
            row[c] = st[k]
    for c in INTS:
        if row[c] is not None:
            row[c] = int(row[c])
    if row["depends"] is not None:
        row["depends"] = [d.strip() for d in row["depends"].split(",") if d.strip()]
    return row


def csv_field(v):
    if v is None:
        return ""
    if isinstance(v, list):
        v = json.dumps(v, ensure_ascii=False)
    elif isinstance(v, int):
        return str(v)
    return '"' + v.replace('"', '""') + '"'


def main(argv):
    csv, seed, src, n = False, 12, None, None
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--csv":
            csv = True
        elif a == "--seed" and i + 1 < len(argv):
            seed = int(argv[i + 1])
            i += 1
        elif a == "--from" and i + 1 < len(argv):
            src = argv[i + 1]
            i += 1
        elif n is None and a.isdigit():
            n = int(a)
        else:
            sys.stderr.write("usage: gen_packages.py N [--csv] [--seed S] | --from PACKAGES [--csv]\n")
            return 2
        i += 1
    if (n is None) == (src is None):
        sys.stderr.write("usage: gen_packages.py N [--csv] [--seed S] | --from PACKAGES [--csv]\n")
        return 2
    rows = parse(src) if src else generate(n, seed)
    out = sys.stdout
    if csv:
        out.write(",".join(COLUMNS) + "\n")
    for r in rows:
        if csv:
            out.write(",".join(csv_field(r[c]) for c in COLUMNS) + "\n")
        else:
            out.write(json.dumps({c: r[c] for c in COLUMNS if r[c] is not None}, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
