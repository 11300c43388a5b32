#!/usr/bin/env bash
# `make run`: Confvault's main job on the sample app `inventory`, in a fresh store under .confvault/,
# then the server over that store with a one-time sign-in link (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
confvault=${CONFVAULT:-.build/debug/confvault}
work=.confvault/tour
export CONFVAULT_STORE=.confvault/store CONFVAULT_AUTHOR=${CONFVAULT_AUTHOR:-ana}
rm -rf "$work" "$CONFVAULT_STORE" .confvault/backups && mkdir -p "$work"

# Shows a command the way one would type it (single quotes where needed), then runs it.
step() {
  printf '\n\033[1m== %s\033[0m\n$' "$1"
  local argument
  for argument in "${@:2}"; do
    if [[ $argument =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then printf ' %s' "$argument"; else printf " '%s'" "$argument"; fi
  done
  printf '\n'
  "${@:2}"
}

step "Create the app and its environments (the store is $CONFVAULT_STORE)" \
  "$confvault" init --app inventory
step "Push the development configuration: version 1" \
  "$confvault" push --app inventory --env development Samples/inventory/development -m "initial import from the app builder"
step "Sync version 1 to production: production's head, synced-at set, pinned as a backup" \
  "$confvault" sync --app inventory 1 --yes

cp -r Samples/inventory/development "$work/development"
python3 - "$work/development/entities/customer.json" <<'PY'
import json, sys
path = sys.argv[1]
entity = json.load(open(path))
entity["fields"]["discount"]["precision"] = 6
entity["fields"]["vip"] = {"type": "boolean", "default": False}
open(path, "w").write(json.dumps(entity, indent=2, sort_keys=True) + "\n")
PY
sed -i 's/level: debug/level: trace/' "$work/development/settings/app.yaml"
step "Change two files in development and push again: version 2" \
  "$confvault" push --app inventory --env development "$work/development" -m "customer: vip flag, wider discount"
step "View the changes of version 2 against version 1" \
  "$confvault" diff --app inventory 2
step "Download production's current configuration as a verifiable archive" \
  "$confvault" export --app inventory --env production -o "$work/production-backup.tar.gz"
step "Check the download in full before trusting it" \
  "$confvault" verify "$work/production-backup.tar.gz"
step "Upload it to staging: checked whole, then pushed automatically as version 3" \
  "$confvault" import "$work/production-backup.tar.gz" --app inventory --env staging -m "staging = production"
step "Restore development to version 1: a new version 4, history kept, the replaced head pinned" \
  "$confvault" restore --app inventory 1 --env development
step "Preview a sync of version 2 to production: file by file, key by key; nothing is written" \
  "$confvault" sync --app inventory 2 --dry-run
step "Sync it (a change to production asks on a terminal; --yes answers for scripts): version 1 stays as a yellow 'synced once' backup" \
  "$confvault" sync --app inventory 2 --yes
step "The versions list (green: in production, yellow: synced once, blue: never synced)" \
  "$confvault" versions --app inventory
step "What a sync of staging to production would change" \
  "$confvault" diff --app inventory --env production --env staging --stat
step "Nightly backup (from cron): each head written, read back in full, retention applied" \
  "$confvault" backup --to .confvault/backups --keep-daily 7 --keep-weekly 4 --keep-monthly 12
step "The next night, nothing changed: nothing is written" \
  "$confvault" backup --to .confvault/backups --keep-daily 7 --keep-weekly 4 --keep-monthly 12
step "The store is consistent" \
  "$confvault" check
step "Who did what" \
  "$confvault" audit --app inventory --limit 12

# The team's page and API over the same store. The admin's password is random and never shown: the
# one-time link the server prints signs it in.
step "Add an admin user for the page" \
  "$confvault" user add admin --role admin < <(head -c 24 /dev/urandom | base64)
# CI's run of the release build (`make smoke`) stops before the server.
[ "${CONFVAULT_TOUR_SERVER:-on}" = off ] && exit 0
printf '\n\033[1m== The page and the HTTP API on http://127.0.0.1:%s (Ctrl-C stops the server)\033[0m\n' "${CONFVAULT_PORT:-8080}"
exec "$confvault" serve --port "${CONFVAULT_PORT:-8080}" --sign-in-link admin
