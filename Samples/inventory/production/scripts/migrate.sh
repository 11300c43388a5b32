#!/bin/sh
# Applies pending schema migrations for the production database before the app starts.
set -eu
exec inventory-migrate --database "postgres://inventory@db.inventory.example.com:5432/inventory_production" --lock-timeout 30s
