#!/bin/sh
# Entry point of the offline-built Postgres image (scripts/compose/build-images):
# the official image's contract that docker-compose.yml relies on —
# POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB create the superuser and
# the database on first start, in PGDATA (a volume) — then runs the command.
# As a service of a test run (src/executor/services.rs) it runs as the image's
# non-root user with a read-only root, PGDATA on a root-owned tmpfs (mode
# 1777) it cannot chmod: the cluster then goes into a folder of its own there.
set -eu
: "${POSTGRES_USER:=postgres}" "${POSTGRES_DB:=$POSTGRES_USER}"
: "${PGDATA:=/var/lib/postgresql/data}"
if [ -d "$PGDATA" ] && [ ! -O "$PGDATA" ]; then
    PGDATA="$PGDATA/pgdata"
fi
mkdir -p "$PGDATA"
chmod 0700 "$PGDATA"
export PGDATA
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    [ -n "${POSTGRES_PASSWORD:-}" ] || { echo "POSTGRES_PASSWORD must be set" >&2; exit 1; }
    pwfile="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    # The image has no /run/postgresql (the root is made without /run's contents).
    echo "unix_socket_directories = '/tmp'" >> "$PGDATA/postgresql.conf"
    if [ "$POSTGRES_DB" != postgres ]; then
        echo "CREATE DATABASE \"$POSTGRES_DB\"" | postgres --single -D "$PGDATA" -j postgres >/dev/null
    fi
fi
exec "$@"
