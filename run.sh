#!/usr/bin/env bash
# Runs the whole system against the PostgreSQL and RabbitMQ it is pointed at
# (by default the local ones): applies the migrations, starts the workers and
# ingest, and supervises them. Ctrl-C (or SIGTERM) stops everything
# gracefully and exits 0. If ingest or a worker exits on its own (its port is
# taken, it crashed), run.sh says which one and how, stops the others and
# exits non-zero.
#
#   WORKERS=2 ./run.sh            # more workers (default 1)
#   DATABASE_URL=... AMQP_URL=... ./run.sh
set -euo pipefail
cd "$(dirname "$0")"

# `wait -n -p` (which child ended) needs bash 5.1.
if ((BASH_VERSINFO[0] < 5 || (BASH_VERSINFO[0] == 5 && BASH_VERSINFO[1] < 1))); then
    echo "run.sh: needs bash 5.1 or later (this is $BASH_VERSION)" >&2
    exit 2
fi

workers=${WORKERS:-1}
cargo build --release --locked -p objectsync-ingest -p objectsync-worker
bin=target/release

"$bin/objectsync-ingest" migrate

declare -A names=() # pid -> what it is, for every child still running
stopping=0
trap 'stopping=1' INT TERM HUP

# Asks every child still running to stop (SIGTERM: in-flight requests and
# batches finish) and waits until each has exited; a second Ctrl-C does not
# cut that short.
stop_all() {
    local pid
    for pid in "${!names[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${!names[@]}"; do
        while kill -0 "$pid" 2>/dev/null; do wait "$pid" 2>/dev/null || true; done
    done
}

for i in $(seq 1 "$workers"); do
    # Each worker serves /healthz and /readyz on its own port: 8081, 8082, ...
    OBJECTSYNC__HTTP__PORT=$((8080 + i)) "$bin/objectsync-worker" &
    names[$!]="worker $i"
done
"$bin/objectsync-ingest" serve &
names[$!]="ingest"

while true; do
    ended=""
    status=0
    wait -n -p ended "${!names[@]}" || status=$?
    if ((stopping)); then
        # Ctrl-C or SIGTERM (which also interrupts the wait).
        echo "run.sh: stopping" >&2
        stop_all
        exit 0
    fi
    [[ -n $ended ]] || continue
    name=${names[$ended]}
    unset "names[$ended]"
    how="exited with status $status"
    if ((status > 128)); then
        how="was killed by SIG$(kill -l $((status - 128)) 2>/dev/null || echo $((status - 128)))"
    fi
    echo "run.sh: $name (pid $ended) $how; stopping the others" >&2
    stop_all
    exit $((status == 0 ? 1 : status))
done
