#!/bin/sh
# The tour's range-job block: "scans" ids START..END (end exclusive) and reports how many.
set -eu
echo "scanned ids $1..$2: $(($2 - $1)) rows"
