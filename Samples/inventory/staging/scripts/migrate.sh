#!/bin/sh
# Applies pending schema migrations for the staging database before the app starts.
set -eu
exec inventory-migrate --database "postgres://inventory@db.staging.inventory.internal:5432/inventory_staging" --lock-timeout 30s
