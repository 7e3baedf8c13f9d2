#!/bin/sh
# A stand-in for a slow per-file feature extractor: it takes half a second
# and prints one line of "features" for the file it is given.
f="$1"
sleep 0.5
printf '%s\tbytes=%s\tlines=%s\tsha256=%s\n' \
  "$f" "$(wc -c < "$f")" "$(wc -l < "$f")" "$(sha256sum < "$f" | cut -c1-16)"
