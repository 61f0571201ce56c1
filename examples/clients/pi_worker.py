#!/usr/bin/env python3
"""The worker side of the pi example: run by `wrangle worker --exec`, it reads the
task's payload from $WRANGLE_PAYLOAD and prints the result as JSON: {"pi": "3.14..."}.
Machin's formula in integer arithmetic, exact to the digits asked for."""

import json
import os


def arctan_inverse(x, unity):
    total = term = unity // x
    x2, n, sign = x * x, 3, -1
    while term:
        term //= x2
        total += sign * (term // n)
        n, sign = n + 2, -sign
    return total


def pi_digits(digits):
    unity = 10 ** (digits + 10)
    pi = 4 * (4 * arctan_inverse(5, unity) - arctan_inverse(239, unity)) // 10 ** 10
    text = str(pi)
    return text[0] + "." + text[1:digits + 1]


digits = int(json.loads(os.environ["WRANGLE_PAYLOAD"])["digits"])
if not 1 <= digits <= 100000:
    raise SystemExit(f"digits must be 1 to 100000, not {digits}")
print(json.dumps({"pi": pi_digits(digits)}))
