#!/bin/sh
# Prints its argument in capitals: the smallest command to run over items.
printf '%s\n' "$1" | tr '[:lower:]' '[:upper:]'
