#!/bin/sh
# The tour's "thumbnail" task: pretends to shrink photos/NAME by writing its size to
# thumbs/NAME.txt (no image tools needed). Fails when the photo does not exist, which the
# tour uses to show retries, the dead set and `wrangle tasks retry`.
set -eu
photo="photos/$1"
if [ ! -f "$photo" ]; then
    echo "no such photo: $photo" >&2
    exit 1
fi
mkdir -p thumbs
wc -c < "$photo" > "thumbs/$1.txt"
echo "thumbs/$1.txt"
