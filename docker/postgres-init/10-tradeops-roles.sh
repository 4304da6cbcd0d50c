#!/bin/sh
# Runs once, when the postgres container initialises its data directory (docker-entrypoint-initdb.d).
# Two roles (docs/security.md): tradeops_owner owns the database and runs the migrations;
# tradeops is the application's runtime role (no superuser, owns nothing; `manage.py migrate`
# grants it per table what it needs). POSTGRES_USER stays the administrator, used for nothing else.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
	-v owner_password="$TRADEOPS_OWNER_PASSWORD" -v app_password="$TRADEOPS_APP_PASSWORD" <<'SQL'
CREATE ROLE tradeops_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'owner_password';
CREATE ROLE tradeops LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'app_password';
CREATE DATABASE tradeops OWNER tradeops_owner;
SQL
