#!/usr/bin/env python3
"""Asks remote workers for the digits of pi and prints them (ExecQueues' pi client, over
the HTTP API). Usage: pi_client.py [--url URL] [--token TOKEN] DIGITS"""

import argparse
import os
import sys

from wrangle_client import Wrangle, WrangleError

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("digits", type=int)
parser.add_argument("--url", default=os.environ.get("WRANGLE_URL", "http://127.0.0.1:7077"))
parser.add_argument("--token", default=os.environ.get("WRANGLE_TOKEN"))
args = parser.parse_args()
try:
    task = Wrangle(args.url, args.token).run("pi", {"digits": args.digits}, timeout=120)
except WrangleError as err:
    sys.exit(f"pi_client: {err}")
print(task["result"]["pi"])
