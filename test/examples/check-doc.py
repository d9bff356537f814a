#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""check-doc.py - the C blocks of the sources documentation match the examples.

Usage: check-doc.py EXAMPLES_DIR MARKDOWN...

Every ```c block whose first line is "/* example: NAME */" must equal
EXAMPLES_DIR/NAME without its SPDX line. Every example must appear in at
least one of the markdown files that exist (the section may move from
doc/sources.md into README.md).
"""
import os
import re
import sys


def main(argv):
    exdir, docs = argv[1], [d for d in argv[2:] if os.path.exists(d)]
    found, errors = set(), []
    for doc in docs:
        for block in re.findall(r"```c\n(.*?)```", open(doc).read(), flags=re.S):
            m = re.match(r"/\* example: (\S+) \*/\n", block)
            if not m:
                continue
            name = m.group(1)
            path = os.path.join(exdir, name)
            if not os.path.exists(path):
                errors.append(f"{doc}: no example file {name}")
                continue
            text = open(path).read().split("\n", 1)[1]
            if block != text:
                errors.append(f"{doc}: block for {name} differs from {path}")
            found.add(name)
    for name in sorted(f for f in os.listdir(exdir) if f.endswith(".c")):
        if name not in found:
            errors.append(f"example {name} is not shown in {' or '.join(docs)}")
    for e in errors:
        print(e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
