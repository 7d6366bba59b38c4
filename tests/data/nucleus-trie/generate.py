"""Random authorization cases for Harness.java: ``python3 generate.py COUNT SEED > cases.in``.

Lines: lookup style, request, resources (tab-separated). Patterns mix the characters the
nucleus's matcher treats specially with realistic topic words; requests are mostly a policy
resource with its wildcards replaced, so that both answers occur.
"""

from __future__ import annotations

import random
import sys

ATOMS = ["a", "b", "x", "y", "ab", "th", "/", "*", "+", "#", "${*}", "${$}", "${?}", "dt"]
ATOMS += ["pi-42", "health", "é", "😀", "/", "/"]
PREFIXES = ["", "dt/", "a/*", "x/+/", "*"]
POLICY_SIZES = [1, 2, 3, 5, 8, 12, 13, 20, 30, 50]


def pattern(rnd: random.Random, atoms: int) -> str:
    return "".join(rnd.choice(ATOMS) for _ in range(atoms))


def case(rnd: random.Random) -> list[str]:
    style = rnd.choice("SM")
    prefix = rnd.choice(PREFIXES)
    resources = [prefix + pattern(rnd, rnd.randint(1, 5)) for _ in range(rnd.choice(POLICY_SIZES))]
    request = rnd.choice(resources)
    for escape, char in (("${*}", "*"), ("${$}", "$"), ("${?}", "?")):
        request = request.replace(escape, char)
    for wildcard in "*+#":
        request = request.replace(wildcard, rnd.choice(["", "q", "q/z", wildcard, "th", "ab/x"]))
    if rnd.random() < 0.3:
        request = pattern(rnd, rnd.randint(1, 6))
    return [style, request or "q", *resources]


def main() -> None:
    count, seed = int(sys.argv[1]), int(sys.argv[2])
    rnd = random.Random(seed)
    for _ in range(count):
        print("\t".join(case(rnd)))


if __name__ == "__main__":
    main()
