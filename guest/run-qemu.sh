#!/bin/sh
# Run guest programs on QEMU virt (the reference) and save transcripts.
# usage: guest/run-qemu.sh [-b builddir] [-o outdir] [name ...]   (default: every program in programs.json)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build="$here/build"
out="$here/build/transcripts"
while getopts b:o: opt; do
  case $opt in b) build=$OPTARG ;; o) out=$OPTARG ;; *) exit 2 ;; esac
done
shift $((OPTIND - 1))
mkdir -p "$out"
list=$(python3 -c 'import json,sys; [print(p["name"], p["smp"], p["timeoutSec"], p.get("gicVersion", 3)) for p in json.load(open(sys.argv[1])) if len(sys.argv) < 3 or p["name"] in sys.argv[2:]]' "$here/programs.json" "$@")

echo "$list" | while read -r name smp tmo gic; do
  [ -n "$name" ] || continue
  timeout "$tmo" qemu-system-aarch64 -M virt,gic-version="$gic" -cpu max -nographic -nic none -m 128M \
    -smp "$smp" -kernel "$build/$name.elf" < /dev/null > "$out/$name.txt" 2>&1 || true
  last=$(tail -n 1 "$out/$name.txt" | tr -d '\r')
  echo "$name: $last"
done

