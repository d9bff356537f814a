#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""check_snippets DOC FILE... - every ```python/```perl block of DOC occurs
verbatim in one of FILEs, so the documentation's snippets stay true."""
import re
import sys


def main(doc, sources):
    texts = [open(p).read() for p in sources]
    blocks = re.findall(r"^```(?:python|perl)\n(.*?)^```", open(doc).read(), re.S | re.M)
    bad = [b for b in blocks if not any(b in t for t in texts)]
    for b in bad:
        print("snippet not found in the tests:\n" + b, file=sys.stderr)
    print("%d snippets, %d stale" % (len(blocks), len(bad)))
    return 1 if bad or not blocks else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
