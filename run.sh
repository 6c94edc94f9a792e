#!/usr/bin/env bash
# Runs the whole system against the PostgreSQL and RabbitMQ it is pointed at
# (by default the local ones): applies the migrations, starts the workers,
# then serves the API in the foreground. Ctrl-C stops everything gracefully.
#
#   WORKERS=2 ./run.sh            # more workers (default 1)
#   DATABASE_URL=... AMQP_URL=... ./run.sh
set -euo pipefail
cd "$(dirname "$0")"

workers=${WORKERS:-1}
cargo build --release --locked -p objectsync-ingest -p objectsync-worker
bin=target/release

"$bin/objectsync-ingest" migrate

pids=()
stop() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait
}
trap stop EXIT INT TERM

for i in $(seq 1 "$workers"); do
    # Each worker serves /healthz and /readyz on its own port: 8081, 8082, ...
    OBJECTSYNC__HTTP__PORT=$((8080 + i)) "$bin/objectsync-worker" &
    pids+=($!)
done
"$bin/objectsync-ingest" serve &
pids+=($!)
wait "${pids[-1]}"
