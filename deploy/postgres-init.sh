#!/usr/bin/env bash
# Runs once when the postgres container initialises its data directory: the two roles of DESIGN.md §4.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<SQL
CREATE ROLE tourops_owner LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE PASSWORD '${TOUROPS_OWNER_PASSWORD}';
CREATE ROLE tourops_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB PASSWORD '${TOUROPS_APP_PASSWORD}';
CREATE DATABASE tourops OWNER tourops_owner;
GRANT CONNECT ON DATABASE tourops TO tourops_app;
SQL
