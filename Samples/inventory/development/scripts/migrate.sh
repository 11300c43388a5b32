#!/bin/sh
# Applies pending schema migrations for the development database before the app starts.
set -eu
exec inventory-migrate --database "postgres://inventory@db.dev.inventory.internal:5432/inventory_development" --lock-timeout 30s
