#!/bin/bash
# Makes a fixture of Tests/ConfvaultCLITests/Fixtures: a store written by an older confvault, and what that confvault printed
# for it. store-v3 was made with a confvault before folder records (migrations v1 to v3, a row per entry per folder); store-v4
# with 6e414c1's (v1 to v4, a record per folder keyed by its digest); store-v5 with 214ffb7's (v1 to v5, blob deltas, folder
# records in a rowid table with a unique index of their digests). Run with the older confvault as $1 and the output folder
# as $2 (kept elsewhere: it is emptied first); then gzip -9 the confvault.sqlite, and save `versions --limit 100 --json`,
# `diff 1 41 --json` and `audit --limit 100 --json` from that confvault.
set -euo pipefail
cv=$1; out=$2
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
export CONFVAULT_STORE=$work/store CONFVAULT_AUTHOR=fixture CONFVAULT_APP=shop
$cv init --app shop --env dev --env staging --env production --production production -q
tree=$work/tree; mkdir -p $tree/services $tree/catalog $tree/deploy/k8s
for i in $(seq 1 60); do printf 'id: %d\nname: item-%d\nprice: %d\n' $i $i $((i*7)) > $tree/catalog/item-$i.yaml; done
for s in api web worker; do printf '{"service": "%s", "replicas": 2, "port": 80}\n' $s > $tree/services/$s.json; done
printf 'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: shop\n' > $tree/deploy/k8s/deployment.yaml
printf '#!/bin/sh\necho deploy\n' > $tree/deploy/run.sh; chmod +x $tree/deploy/run.sh
$cv push $tree --env dev -m "first" -q
for n in $(seq 1 40); do
  i=$(( (n * 13) % 60 + 1 ))
  printf 'id: %d\nname: item-%d\nprice: %d\n' $i $i $((i*7 + n)) > $tree/catalog/item-$i.yaml
  if (( n % 7 == 0 )); then printf '{"service": "api", "replicas": %d, "port": 80}\n' $((n/7+2)) > $tree/services/api.json; fi
  if (( n % 11 == 0 )); then printf 'new: %d\n' $n > $tree/catalog/extra-$n.yaml; fi
  if (( n % 13 == 0 )); then rm -f $tree/catalog/item-$((n)).yaml; fi
  env=dev; (( n % 5 == 0 )) && env=staging
  $cv push $tree --env $env -m "change $n" -q
done
$cv sync staging --yes -q
$cv restore 3 --env dev --yes -q -m "back to 3"
$cv export --env staging -o $work/staging.tar.gz -q
$cv import $work/staging.tar.gz --env dev -m "from staging" --yes -q
rm -rf $out; mkdir -p $out
python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('PRAGMA wal_checkpoint(TRUNCATE)'); c.execute('PRAGMA journal_mode=DELETE'); c.execute('VACUUM'); c.close()" $work/store/confvault.sqlite
cp $work/store/confvault.sqlite $out/
ls -la $out
