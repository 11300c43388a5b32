#!/usr/bin/env bash
# `make smoke`: the release build, which users run, against the debug build, which the tests run.
# Code that is only wrong when optimised (a trap in the release build alone has happened) shows
# only here. The release binary runs the tour (without its server); then both binaries pack the
# sample folders and read the store-v5 fixture the same ways, and must print the same bytes.
set -euo pipefail
cd "$(dirname "$0")/.."
release=$(realpath "${1:-.build/release/confvault}")
debug=$(realpath "${2:-.build/debug/confvault}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "smoke: the tour with $release"
if ! CONFVAULT="$release" CONFVAULT_TOUR_SERVER=off ./Samples/tour.sh \
  >"$work/tour.log" 2>&1; then
  cat "$work/tour.log"
  echo "smoke: the tour failed with the release build" >&2
  exit 1
fi

# Each binary reads its own copy of the fixture: opening it converts its older layout.
for build in release debug; do
  mkdir -p "$work/$build"
  gunzip -c Tests/ConfvaultCLITests/Fixtures/store-v5/confvault.sqlite.gz >"$work/$build/confvault.sqlite"
done
compared=0
# Runs a command with both binaries (`STORE` standing for each one's store) and compares what they print.
same() {
  local build binary
  for build in release debug; do
    binary=$release
    [ "$build" = debug ] && binary=$debug
    "$binary" "${@//STORE/$work/$build}" >"$work/$build.out" 2>&1 || echo "exit $?" >>"$work/$build.out"
    sed -i "s#$work/$build#STORE#g" "$work/$build.out"
  done
  if ! cmp -s "$work/release.out" "$work/debug.out"; then
    echo "smoke: the release and debug builds differ on: confvault $*" >&2
    diff "$work/debug.out" "$work/release.out" | head -20 >&2
    exit 1
  fi
  compared=$((compared + 1))
}

same check --store STORE
same versions --json --limit 100 --store STORE
newest=$("$debug" versions --json --limit 1 --store "$work/debug" | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["number"])')
for ((number = 2; number <= newest; number++)); do
  same diff "$number" --json --store STORE
  same diff 1 "$number" --all --store STORE
done
same audit --json --limit 1000 --store STORE
for folder in Samples/inventory/*/; do
  name=$(basename "$folder")
  same pack "$folder" -o "STORE/$name.tar.zst" --compression zstd
  cmp "$work/release/$name.tar.zst" "$work/debug/$name.tar.zst"
  same verify "STORE/$name.tar.zst"
  same inspect "STORE/$name.tar.zst"
done
echo "smoke: the release build ran the tour and printed what the debug build printed for $compared commands"
