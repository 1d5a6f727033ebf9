#!/usr/bin/env bash
# Runs once, when the official postgres image initialises an empty data directory
# (/docker-entrypoint-initdb.d). One login role and one schema per service, the role owning its
# schema and limited to it; PUBLIC loses its rights on the database and on schema public.
# Passwords come from the services' Secrets (env <SERVICE>_PASSWORD).
set -euo pipefail

psql=(psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB")

"${psql[@]}" -v database="$POSTGRES_DB" <<'SQL'
REVOKE ALL ON DATABASE :"database" FROM PUBLIC;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
SQL

for service in order_intake inventory payment fulfilment returns channel_connector console; do
  password_variable="${service^^}_PASSWORD"
  "${psql[@]}" -v database="$POSTGRES_DB" -v role="$service" -v password="${!password_variable}" <<'SQL'
CREATE ROLE :"role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  PASSWORD :'password';
ALTER ROLE :"role" SET search_path = :"role";
CREATE SCHEMA :"role" AUTHORIZATION :"role";
REVOKE ALL ON SCHEMA :"role" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"database" TO :"role";
SQL
done
