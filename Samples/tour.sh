#!/usr/bin/env bash
# `make run`: a short scripted tour of Confvault on the sample app `inventory`.
set -euo pipefail
cd "$(dirname "$0")/.."
confvault=${CONFVAULT:-.build/debug/confvault}
work=.confvault/tour
rm -rf "$work" && mkdir -p "$work"

step() { printf '\n\033[1m== %s\033[0m\n$ %s\n' "$1" "${*:2}"; "${@:2}"; }

step "Pack the production configuration into a verifiable archive" \
  "$confvault" pack Samples/inventory/production -o "$work/production.tar.gz" --app inventory --env production
step "Inspect it: manifest, sizes, modes, and the tree digest" \
  "$confvault" inspect "$work/production.tar.gz"
step "Verify it in full: every entry's size and SHA-256 against the manifest" \
  "$confvault" verify "$work/production.tar.gz"
step "Pack it again with zstd: other bytes, the same tree digest" \
  "$confvault" pack Samples/inventory/production -o "$work/production.tar.zst" --compression zstd --app inventory --env production
step "Unpack it into a new folder, atomically" \
  "$confvault" unpack "$work/production.tar.zst" --to "$work/restored"
step "The restored folder is the sample, file for file" \
  diff -r Samples/inventory/production "$work/restored"
echo "(no differences)"
step "A tampered archive is refused with exit code 65" \
  bash -c "python3 Samples/tamper.py '$work/production.tar.gz' '$work/tampered.tar.gz' && { '$confvault' verify '$work/tampered.tar.gz'; echo \"exit code \$?\"; }"
