#!/usr/bin/env python3
"""Where a batch's CPU goes: instructions per 1,000-record batch of ingest,
a worker and PostgreSQL's sessions (callgrind), and pg_stat_statements per
statement. The method of BENCHMARKS.md's "Issue 23" section.

Needs: a release build of objectsync-bench (its hidden `ingest` and
`worker` modes), RabbitMQ on 127.0.0.1:5672 (queues of its own), valgrind,
and a PostgreSQL of its own, e.g. (as root; PostgreSQL refuses to run as root):

    D=/tmp/profile-pg; mkdir -p $D /tmp/profile-cg; chown postgres $D; chmod 777 /tmp/profile-cg
    runuser -u postgres -- /usr/lib/postgresql/15/bin/initdb -D $D/data -A trust -U postgres
    cat >> $D/data/postgresql.conf <<CONF
    port = 55470
    listen_addresses = '127.0.0.1'
    unix_socket_directories = '$D'
    autovacuum = off
    shared_preload_libraries = 'pg_stat_statements'
    pg_stat_statements.track = all
    CONF
    # for instructions: the postmaster under callgrind (every backend is counted)
    runuser -u postgres -- valgrind --tool=callgrind --quiet \
        --callgrind-out-file=/tmp/profile-cg/pg.%p /usr/lib/postgresql/15/bin/postgres -D $D/data &
    # for pg_stat_statements: pg_ctl start instead, then once:
    psql -h 127.0.0.1 -p 55470 -U postgres -c 'create extension pg_stat_statements'

Then, for instructions (a 10-batch and a 40-batch run; their difference
over 30 batches is one batch without start-up):

    profile.py run --bin target/release/objectsync-bench --callgrind --phases insert --batches 10 --out i10.json
    profile.py run --bin target/release/objectsync-bench --callgrind --phases insert --batches 40 --out i40.json
    profile.py instructions i10.json i40.json 30

and per statement: `profile.py run --bin … --batches 100 --out s.json;
profile.py statements s.json`. Stop the server and remove its directory
when done.
"""
import argparse, json, os, glob, re, subprocess, sys, threading, time, uuid
import http.client, urllib.parse

PG_BIN = "/usr/lib/postgresql/15/bin"
ADMIN = "perf-admin-token-of-32-characters-x"


def psql(port, db, sql, app="perfpoll"):
    env = dict(os.environ, PGAPPNAME=app)
    out = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", db,
         "-AtX", "-F", "\t", "-c", sql],
        capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return [l.split("\t") for l in out.stdout.splitlines() if l]


def attributes(i, version):
    colors = ["red", "green", "blue"]
    return {
        "name": f"Item {i} v{version}",
        "description": f"A benchmark record, number {i}, written by pass {version} of the run.",
        "price": (i % 10000) * 1.25 + version,
        "quantity": i % 500,
        "rating": (i % 5) + 0.5,
        "active": (i + version) % 2 == 0,
        "registered": f"2024-{i % 12 + 1:02}-{i % 28 + 1:02}",
        "website": f"https://example.com/items/{i}",
        "color": colors[(i + version) % 3],
        "tags": ["new"] if version == 1 else ["sale", "eco"],
    }


def body(run, indices, version):
    return json.dumps({"records": [
        {"identifiers": {"ext_id": f"{run}-{i:08}"}, "attributes": attributes(i, version)}
        for i in indices]}).encode()


def definition():
    attrs = [("name", "text"), ("description", "text"), ("price", "number"),
             ("quantity", "number"), ("rating", "number"), ("active", "boolean"),
             ("registered", "date"), ("website", "url")]
    out = [{"key": k, "label": k, "type": t} for k, t in attrs]
    out.append({"key": "color", "label": "color", "type": "category",
                "options": [{"key": o, "label": o} for o in ["red", "green", "blue"]]})
    out.append({"key": "tags", "label": "tags", "type": "multiple_category",
                "options": [{"key": o, "label": o} for o in ["new", "sale", "eco"]]})
    return {"label": "Bench items", "attributes": out}


def request(port, method, path, data=None, headers=None, timeout=600):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    h = {"content-type": "application/json"}
    h.update(headers or {})
    c.request(method, path, body=data, headers=h)
    r = c.getresponse()
    payload = r.read()
    c.close()
    return r.status, payload


def wait_ready(port, proc, secs=600):
    for _ in range(secs * 10):
        if proc.poll() is not None:
            raise RuntimeError(f"process exited: {proc.returncode}")
        try:
            s, _ = request(port, "GET", "/readyz", timeout=5)
            if s == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("not ready")


def post_all(port, key, bodies, producers):
    lock = threading.Lock()
    queue = list(enumerate(bodies))
    errors = []

    def producer():
        while True:
            with lock:
                if not queue:
                    return
                _, b = queue.pop(0)
            for attempt in range(50):
                s, p = request(port, "POST", "/v3/objects/item/batch/upsert", b, {"api-key": key})
                if s == 202:
                    break
                if s in (429, 503):
                    time.sleep(0.2)
                    continue
                errors.append((s, p[:200]))
                break

    ts = [threading.Thread(target=producer) for _ in range(producers)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise RuntimeError(f"post errors: {errors[:3]}")


def wait_done(port, db, expected):
    while True:
        rows = psql(port, db, "select count(*) filter (where status in ('completed','failed')),"
                              " count(*) filter (where status = 'failed') from processes")
        done, failed = int(rows[0][0]), int(rows[0][1])
        if done >= expected:
            return failed
        time.sleep(0.5)


def drop_topology(prefix):
    """Removes the queues and exchanges the services declared under
    `prefix`, with rabbitmqctl (so on the broker's own host); says so when
    it cannot."""
    def ctl(*args):
        return subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL)
    try:
        for q in ctl("list_queues", "name", "-q").stdout.split():
            if q.startswith(prefix + "."):
                ctl("delete_queue", q)
        for x in ctl("list_exchanges", "name", "-q").stdout.split():
            if x.startswith(prefix + "."):
                ctl("eval", f'rabbit_exchange:delete(rabbit_misc:r(<<"/">>, exchange, <<"{x}">>), '
                            'false, <<"profile.py">>).')
    except OSError:
        print(f"delete the queues and exchanges {prefix}.* by hand", file=sys.stderr)


def cpu_of(pids):
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in pids:
        try:
            f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            total += (int(f[11]) + int(f[12])) / tick
        except OSError:
            pass
    return total


def pg_pids(port):
    rows = psql(port, "postgres", "select pid, coalesce(nullif(application_name,''), backend_type)"
                                  " from pg_stat_activity")
    return {int(p): a for p, a in rows}


def run_main(argv):
    ap = argparse.ArgumentParser(prog="profile.py run")
    ap.add_argument("--bin", required=True)
    ap.add_argument("--pg-port", type=int, default=55470)
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=4)
    ap.add_argument("--producers", type=int, default=4)
    ap.add_argument("--callgrind", action="store_true")
    ap.add_argument("--cg-dir", default="/tmp/profile-cg")
    ap.add_argument("--out", required=True)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--phases", default="insert,update")
    ap.add_argument("--limits", action="store_true", help="rate limits and the backlog cap at their defaults")
    a = ap.parse_args(argv)

    run = uuid.uuid4().hex[:8]
    db = f"perf_{run}"
    psql(a.pg_port, "postgres", f"create database {db}")
    http_port, worker_port = 18500 + os.getpid() % 400, 18950 + os.getpid() % 40
    base_env = dict(os.environ)
    for k in list(base_env):
        if k.startswith("OBJECTSYNC__") or k in ("DATABASE_URL", "AMQP_URL", "RUST_LOG"):
            del base_env[k]
    url = f"postgres://postgres@127.0.0.1:{a.pg_port}/{db}?sslmode=disable&application_name="
    common = {
        "AMQP_URL": "amqp://guest:guest@127.0.0.1:5672/%2f",
        "OBJECTSYNC__AMQP__PREFIX": f"perf-{run}",
        "OBJECTSYNC__ADMIN__TOKEN": ADMIN,
        "OBJECTSYNC__LIMITS__WRITES_PER_SECOND": "0",
        "OBJECTSYNC__LIMITS__WRITES_BURST": "0",
        "OBJECTSYNC__LIMITS__READS_PER_SECOND": "0",
        "OBJECTSYNC__LIMITS__READS_BURST": "0",
        "OBJECTSYNC__LIMITS__MAX_OPEN_PROCESSES": "0",
        "RUST_LOG": "warn",
    }
    if a.limits:
        for k in [k for k in common if k.startswith("OBJECTSYNC__LIMITS__")]:
            del common[k]
    os.makedirs(a.cg_dir, exist_ok=True)

    def spawn(mode, port, app):
        env = dict(base_env, **common, DATABASE_URL=url + app, OBJECTSYNC__HTTP__PORT=str(port))
        cmd = [a.bin, mode]
        if a.callgrind:
            cmd = ["valgrind", "--tool=callgrind", "--quiet",
                   f"--callgrind-out-file={a.cg_dir}/{mode}-{run}.%p"] + cmd
        log = open(os.path.join(a.cg_dir, f"{mode}-{run}.log"), "w")
        return subprocess.Popen(cmd, env=env, stdout=log, stderr=log)

    procs = []
    try:
        ingest = spawn("ingest", http_port, "ingest")
        procs.append(ingest)
        wait_ready(http_port, ingest)
        s, p = request(http_port, "POST", "/admin/organizations",
                       json.dumps({"name": "perf"}).encode(), {"admin-token": ADMIN})
        org = json.loads(p)
        s, p = request(http_port, "PUT", f"/admin/organizations/{org['id']}/objects/item",
                       json.dumps(definition()).encode(), {"admin-token": ADMIN})
        assert s == 200, p
        key = org["api_key"]
        worker = spawn("worker", worker_port, "worker")
        procs.append(worker)
        wait_ready(worker_port, worker)
        # Warm-up: connections, caches, the first plans.
        post_all(http_port, key, [body("w", range(i * 1000, (i + 1) * 1000), 1)
                                  for i in range(a.warmup)], a.producers)
        expected = wait_done(a.pg_port, db, a.warmup) * 0 + a.warmup
        results = {}
        seen = {}
        stop_watch = threading.Event()

        def watch():
            while not stop_watch.is_set():
                try:
                    seen.update(pg_pids(a.pg_port))
                except Exception:
                    pass
                stop_watch.wait(1.0)

        watcher = threading.Thread(target=watch)
        watcher.start()
        phases = [p for p in (("insert", 1), ("update", 2)) if p[0] in a.phases.split(",")]
        for phase, version in phases:
            bodies = [body("r", range(i * 1000, (i + 1) * 1000), version) for i in range(a.batches)]
            psql(a.pg_port, "postgres", "select pg_stat_statements_reset()")
            before_pids = pg_pids(a.pg_port)
            cpu0 = {"ingest": cpu_of([ingest.pid]), "worker": cpu_of([worker.pid])}
            pg_service = [p for p, app in before_pids.items() if app in ("ingest", "worker")]
            cpu0["pg"] = cpu_of(pg_service)
            t0 = time.time()
            post_all(http_port, key, bodies, a.producers)
            expected += a.batches
            failed = wait_done(a.pg_port, db, expected)
            wall = time.time() - t0
            after_pids = pg_pids(a.pg_port)
            pg_service_after = [p for p, app in after_pids.items() if app in ("ingest", "worker")]
            cpu1 = {"ingest": cpu_of([ingest.pid]), "worker": cpu_of([worker.pid]),
                    "pg": cpu_of(pg_service_after)}
            stmts = psql(a.pg_port, "postgres",
                         "select calls, total_exec_time, total_plan_time, rows, shared_blks_hit,"
                         " shared_blks_read, shared_blks_dirtied, shared_blks_written, wal_bytes,"
                         " wal_fpi, toplevel, regexp_replace(query, '\\s+', ' ', 'g')"
                         " from pg_stat_statements s join pg_database d on d.oid = s.dbid"
                         f" where d.datname = '{db}' order by total_exec_time desc")
            results[phase] = {
                "batches": a.batches, "failed": failed, "wall": wall,
                "cpu": {k: cpu1[k] - cpu0.get(k, 0) for k in cpu1},
                "pids": {str(p): app for p, app in after_pids.items()},
                "pids_before": {str(p): app for p, app in before_pids.items()},
                "statements": stmts,
            }
            print(f"{phase}: {a.batches} batches in {wall:.1f}s, failed {failed}, cpu {results[phase]['cpu']}",
                  file=sys.stderr)
        stop_watch.set()
        watcher.join()
        results["seen"] = {str(p): app for p, app in seen.items()}
        results["ingest_pid"] = ingest.pid
        results["worker_pid"] = worker.pid
        results["run"] = run
        results["cg_dir"] = a.cg_dir
        json.dump(results, open(a.out, "w"), indent=1)
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(120)
            except subprocess.TimeoutExpired:
                p.kill()
        if not a.keep:
            psql(a.pg_port, "postgres", f"drop database if exists {db} with (force)")
            drop_topology(f"perf-{run}")




def cg_total(path):
    for line in open(path, errors="replace"):
        if line.startswith("summary:") or line.startswith("totals:"):
            return int(line.split()[1])
    return 0


def groups(result_path):
    """Instructions of a run by process: ingest, worker, PostgreSQL's
    sessions of each (by application_name)."""
    r = json.load(open(result_path))
    cg, run = r["cg_dir"], r["run"]
    out = {"ingest": 0, "worker": 0, "pg-ingest": 0, "pg-worker": 0}
    for mode in ("ingest", "worker"):
        for f in glob.glob(f"{cg}/{mode}-{run}.*"):
            if not f.endswith(".log"):
                out[mode] += cg_total(f)
    for pid, app in r["seen"].items():
        f = f"{cg}/pg.{pid}"
        if app in ("ingest", "worker") and os.path.exists(f):
            out["pg-" + app] += cg_total(f)
    return out


def instructions(a, b, n):
    ga, gb = groups(a), groups(b)
    for k in ga:
        print(f"{k:10} {(gb[k] - ga[k]) / n / 1e6:8.2f} M instructions per batch")


def statements(path):
    r = json.load(open(path))
    for phase in ("insert", "update"):
        if phase not in r:
            continue
        p = r[phase]
        n = p["batches"]
        print(f"== {phase}: {n} batches; calls, exec ms, buffer hits, dirtied, WAL kB per batch")
        for row in p["statements"]:
            calls, ex, plan, rows, hit, rd, dirt, wr, wal, fpi, top, q = row
            if float(ex) / n < 0.001 and int(calls) / n < 0.5:
                continue
            print(f"{int(calls) / n:6.2f} {float(ex) / n:8.3f} {int(hit) / n:8.0f} "
                  f"{int(dirt) / n:6.1f} {int(wal) / n / 1024:7.1f}  {q[:110]}")


if __name__ == "__main__":
    cmd, args = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    if cmd == "run":
        run_main(args)
    elif cmd == "instructions" and len(args) == 3:
        instructions(args[0], args[1], float(args[2]))
    elif cmd == "statements" and len(args) == 1:
        statements(args[0])
    else:
        sys.exit(__doc__)
