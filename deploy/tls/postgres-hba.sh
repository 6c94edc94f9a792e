#!/bin/sh
# The tls profile's PostgreSQL takes TLS connections only. The postgres
# image runs this once, when it makes the data directory (it is mounted
# into /docker-entrypoint-initdb.d), after writing a pg_hba.conf whose
# `host all all all` line lets plain connections in: this one has none.
cat > "$PGDATA/pg_hba.conf" <<'HBA'
# Inside the container: the image's health check and init scripts.
local   all  all                trust
# Over the network: TLS, and a password.
hostssl all  all  all           scram-sha-256
HBA
