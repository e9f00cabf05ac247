#!/usr/bin/env python3
"""Scale-out: what the IMAP access proxy costs, and the PostgreSQL store beside SQLite and Dovecot.

One run on this machine, everything on 127.0.0.1 under one temporary directory:

  proxy   a Postern store (store-sqlite, IMAP taking the proxy's master login, LMTP to fill) and a
          Postern access proxy (`imap-proxy`) in front of it; a Dovecot and a second Dovecot in
          front of it as its proxy (passdb `proxy=y host port master pass`; the back end has a
          master passdb). For each server, direct and through its proxy, at each concurrency:
          LOGIN+SELECT+FETCH 1:* FLAGS sessions/s and FETCH BODY.PEEK[] commands/s (the workloads
          of imap_pop3.measure), and at concurrency 1 the median time of a NOOP and of a FETCH
          BODY.PEEK[] of one message in a logged-in session; the proxies' CPU ms per operation.
  stores  the IMAP workloads of imap_pop3.measure (login, body, search, append) against Postern
          with store-sqlite, Postern with store-postgres (a throw-away PostgreSQL started here,
          synchronous_commit on, fsync on) and Dovecot, the same messages in each.

Run as root (Dovecot switches to its mail user; PostgreSQL runs as the `postgres` user). No
assertions: it prints ratios. Everything it starts is stopped, also on Ctrl-C or an error.

    sudo python3 Benchmarks/scale_out.py --postern .build-release/release/postern [--messages 2000]
        [--seconds 3] [--concurrency 1,10] [--parts proxy,stores] [--dovecot-format mdbox]
"""
import argparse, glob, os, pwd, random, signal, shutil, socket, statistics, subprocess, sys, tempfile, time
from types import SimpleNamespace

from benchlib import cpu_seconds, descendants, free_port, fsync_rate, start_dovecot, wait_port
from imap_pop3 import USER_PASSWORD, Server, imap_login, lmtp_fill, measure, message

MASTER, MASTER_PASSWORD = "proxy@proxy.internal", "Master-Secret-1"
LOGIN = "login+select+fetch flags (sessions/s)"
BODY = "fetch body[] (commands/s)"


class Cleanup:
    """What was started, stopped in reverse order at the end whatever happens."""
    def __init__(self):
        self.steps = []

    def add(self, step):
        self.steps.append(step)

    def run(self):
        for step in reversed(self.steps):
            try:
                step()
            except Exception as e:          # one failing stop must not keep the others running
                print("cleanup: %r" % e, file=sys.stderr)
        self.steps = []


def stop_process(p, sig=signal.SIGTERM):
    if p.poll() is None:
        p.send_signal(sig)
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def stray(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def log_tail(path):
    try:
        return open(path, errors="replace").read()[-3000:]
    except OSError:
        return "(no log)"


# --- Postern --------------------------------------------------------------------------------

def start_postern(binary, work, name, cleanup, store, listeners, users, plugins=""):
    """A Postern under `work`/`name` (two workers, as imap_pop3's) with `store` (its TOML
    section), `plugins` (more sections) and `listeners` [(name, port, protocol, options lines)];
    `users` [(address, password)] imported into its own account database. Returns the Popen."""
    d = os.path.join(work, name)
    os.makedirs(d)
    conf = os.path.join(d, "postern.toml")
    text = 'data_dir = "%s/var"\nworkers = 2\n[log]\nlevel = "warning"\n%s\n[plugin.sasl-plain]\n%s\n' % (d, store, plugins)
    for lname, port, protocol, options in listeners:
        text += ('[[listener]]\nname = "%s"\naddress = "127.0.0.1"\nport = %d\nprotocol = "%s"\nmax_connections = 20000\n'
                 '[listener.options]\n%s\n' % (lname, port, protocol, options))
    open(conf, "w").write(text)
    for domain in sorted({u.split("@")[1] for u, _ in users}):
        subprocess.run([binary, "admin", "domain", "add", domain, "-c", conf], check=True, capture_output=True)
    csv = os.path.join(d, "users.csv")
    open(csv, "w").write("email,password\n" + "".join("%s,%s\n" % u for u in users))
    subprocess.run([binary, "admin", "user", "import", csv, "-c", conf], check=True, capture_output=True)
    log = os.path.join(d, "serve.log")
    p = subprocess.Popen([binary, "serve", "-c", conf], stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    cleanup.add(lambda: stop_process(p))
    try:
        for _, port, _, _ in listeners:
            wait_port(port)
    except RuntimeError as e:
        raise RuntimeError("%s: %s\n%s" % (name, e, log_tail(log)))
    return p


def store_listeners(imap, lmtp):
    # The store takes the proxy's master login (SASL PLAIN with an authorization identity) from
    # loopback, proxy_networks' default.
    return [("imap", imap, "imap", 'allow_plaintext_on_loopback = true\nmaster_users = ["%s"]' % MASTER),
            ("lmtp", lmtp, "lmtp", "")]


SQLITE = "[plugin.store-sqlite]\npassword_iterations = 4096\n[plugin.imap]"


# --- PostgreSQL -----------------------------------------------------------------------------

def start_postgres(work, cleanup):
    """A throw-away PostgreSQL cluster under `work`/postgres on a free port, as
    Tests/TestSupport/PostgresServer.swift starts it: the newest /usr/lib/postgresql/*/bin,
    trust authentication for the superuser `postern`, run as the `postgres` user when root
    (PostgreSQL refuses root). fsync and synchronous_commit stay at their defaults (on): a
    delivery's 250 waits for the WAL on disk, as store-sqlite's waits for its own. Returns the
    port of the database `postern`."""
    initdbs = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if not initdbs:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    bindir = os.path.dirname(max(initdbs, key=lambda p: float(p.split("/")[4])))
    d = os.path.join(work, "postgres")
    os.makedirs(d)
    as_user = {}
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(d, pw.pw_uid, pw.pw_gid)
        os.chmod(d, 0o700)
        as_user = dict(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
    # --no-sync only for initdb's own files (thrown away with the run); the server keeps fsync on.
    r = subprocess.run([bindir + "/initdb", "-D", d + "/data", "-U", "postern", "--auth=trust", "--encoding=UTF8",
                        "--no-locale", "--no-sync"], cwd=d, capture_output=True, text=True, **as_user)
    if r.returncode:
        raise RuntimeError("initdb: " + r.stdout + r.stderr)
    port = free_port()
    log = os.path.join(work, "postgres.log")
    p = subprocess.Popen([bindir + "/postgres", "-D", d + "/data", "-p", str(port), "-c", "listen_addresses=127.0.0.1",
                          "-c", "unix_socket_directories=" + d, "-c", "max_connections=100"],
                         cwd=d, stdout=subprocess.DEVNULL, stderr=open(log, "w"), **as_user)
    # SIGINT is PostgreSQL's fast shutdown (SIGTERM would wait for every client to leave).
    cleanup.add(lambda: stop_process(p, signal.SIGINT))
    deadline = time.time() + 60
    while subprocess.run([bindir + "/pg_isready", "-h", "127.0.0.1", "-p", str(port), "-U", "postern", "-d", "postgres"],
                         capture_output=True).returncode:
        if time.time() > deadline or p.poll() is not None:
            raise RuntimeError("postgres did not start:\n" + log_tail(log))
        time.sleep(0.2)
    subprocess.run([bindir + "/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postern", "-T", "template0",
                    "-E", "UTF8", "postern"], check=True, capture_output=True)
    return port


# --- Dovecot --------------------------------------------------------------------------------

def dovecot_login_settings():
    # Login processes kept and shared, as imap_pop3 --dovecot-login performance: Dovecot's own
    # advice for speed, and in the proxy it is these processes that carry the bytes.
    return "  service_count = 0\n  process_min_avail = %d\n" % (os.cpu_count() or 1)


def start_dovecot_backend(work, cleanup, fmt):
    """The Dovecot store: imap and lmtp, `fmt` (mdbox or maildir), any user with USER_PASSWORD,
    and a master passdb for the proxy (PLAIN's authorization identity names the user; `pass = yes`
    then looks the user up in the static passdb), trusting the ID the proxy sends from loopback."""
    d = os.path.join(work, "dovecot-store")
    os.makedirs(d)
    os.chmod(d, 0o755)
    open(os.path.join(d, "master.passwd"), "w").write("%s:{PLAIN}%s\n" % (MASTER, MASTER_PASSWORD))
    passdb = ("passdb {\n  driver = passwd-file\n  args = %s/master.passwd\n  master = yes\n  pass = yes\n}\n"
              "passdb {\n  driver = static\n  args = password=%s\n}" % (d, USER_PASSWORD))
    location = None if fmt == "maildir" else "%s:%s/dovecot/mail/%%u/%s" % (fmt, d, fmt)
    ports, p, _ = start_dovecot(d, ["imap", "lmtp"], USER_PASSWORD, location=location, passdb=passdb,
                                extra="login_trusted_networks = 127.0.0.1\n", login_settings=dovecot_login_settings())
    cleanup.add(lambda: stop_process(p))
    return ports, p


def start_dovecot_proxy(work, cleanup, backend_port):
    """Dovecot as a proxy: it checks the user's password itself (static passdb), then logs in to
    the back end as the master user (`master=`, `pass=`), as Postern's proxy does."""
    d = os.path.join(work, "dovecot-proxy")
    os.makedirs(d)
    os.chmod(d, 0o755)
    passdb = ("passdb {\n  driver = static\n  args = password=%s proxy=y host=127.0.0.1 port=%d master=%s pass=%s\n}"
              % (USER_PASSWORD, backend_port, MASTER, MASTER_PASSWORD))
    ports, p, _ = start_dovecot(d, ["imap"], USER_PASSWORD, passdb=passdb, login_settings=dovecot_login_settings())
    cleanup.add(lambda: stop_process(p))
    return ports["imap"], p


# --- Measuring ------------------------------------------------------------------------------

def fill(server, messages):
    """The mailbox imap_pop3 fills: `messages` messages to bench@example.org through LMTP, every
    tenth flagged (so SEARCH FLAGGED finds some)."""
    t = time.time()
    lmtp_fill(server.lmtp, ["bench@example.org"], messages, lambda i: message(i))
    c = imap_login(server.imap, "bench@example.org")
    c.select("INBOX")
    for first in range(1, messages + 1, 10):
        c.store(str(first), "+FLAGS", "(\\Flagged)")
    c.logout()
    print("%s: filled in %.1f s" % (server.name, time.time() - t), flush=True)


def latencies(port, seconds, messages):
    """Seconds per NOOP and per FETCH n BODY.PEEK[] (a random message) in one logged-in session
    with INBOX examined, each command sent alone and timed to its tagged reply, for `seconds`
    each. A raw socket, not imaplib: its parsing would add more than the proxy does."""
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = s.makefile("rb")
    count = [0]

    def command(text):
        count[0] += 1
        tag = b"t%d " % count[0]
        s.sendall(tag + text + b"\r\n")
        while True:
            line = f.readline()
            if not line:
                raise EOFError("connection closed")
            if line.endswith(b"}\r\n"):                 # a literal: skip its bytes
                f.read(int(line[line.rindex(b"{") + 1:-3]))
            elif line.startswith(tag):
                if not line[len(tag):].startswith(b"OK"):
                    raise RuntimeError(line)
                return

    f.readline()
    command(b"LOGIN bench@example.org " + USER_PASSWORD.encode())
    command(b"EXAMINE INBOX")
    out = {}
    for name, make in (("noop", lambda: b"NOOP"), ("fetch", lambda: b"FETCH %d BODY.PEEK[]" % random.randint(1, messages))):
        samples, stop = [], time.time() + seconds
        while time.time() < stop:
            start = time.perf_counter()
            command(make())
            samples.append(time.perf_counter() - start)
        out[name] = samples
    command(b"LOGOUT")
    s.close()
    return out


def timed_measure(server, args, workload, level, proxy_pids):
    """imap_pop3.measure of one workload; returns (rate, the proxy's CPU seconds per operation)."""
    ns = SimpleNamespace(messages=args.messages, seconds=args.seconds, workloads={workload})
    cpu, start = cpu_seconds(proxy_pids()) if proxy_pids else 0, time.time()
    rate = list(measure(server, ns, level).values())[0]
    wall = time.time() - start
    per_op = (cpu_seconds(proxy_pids()) - cpu) / (rate * wall) if proxy_pids and rate else None
    return rate, per_op


def proxy_part(args, levels, families):
    """`families`: [(name, direct Server, proxied Server, proxy pids)]. Each cell runs direct,
    proxy, proxy, direct and averages the two of each: the machine's drift over a few seconds is
    of the order of the 5% being measured, and this order cancels a steady drift."""
    res = {}
    cells = [(level, w) for level in levels for w in ("login", "body")]
    for level, workload in cells:
        for name, direct, proxied, pids in families:
            rates = {"direct": [], "proxy": []}
            cpus = []
            for kind in ("direct", "proxy", "proxy", "direct"):
                rate, cpu = timed_measure(direct if kind == "direct" else proxied, args, workload, level,
                                          pids if kind == "proxy" else None)
                rates[kind].append(rate)
                if cpu is not None:
                    cpus.append(cpu)
            key = "c=%d %s" % (level, LOGIN if workload == "login" else BODY)
            res[(key, name)] = (statistics.mean(rates["direct"]), statistics.mean(rates["proxy"]), statistics.mean(cpus))
            print("  %-50s %-8s direct %8.1f  proxy %8.1f  (runs: %s)" % (
                key, name, res[(key, name)][0], res[(key, name)][1],
                " ".join("%.0f" % r for r in rates["direct"][:1] + rates["proxy"] + rates["direct"][1:])), flush=True)
    lat = {}
    for name, direct, proxied, _ in families:
        pooled = {("direct", "noop"): [], ("direct", "fetch"): [], ("proxy", "noop"): [], ("proxy", "fetch"): []}
        for kind in ("direct", "proxy", "proxy", "direct"):
            for cmd, samples in latencies((direct if kind == "direct" else proxied).imap, args.seconds / 2, args.messages).items():
                pooled[(kind, cmd)] += samples
        for cmd in ("noop", "fetch"):
            lat[(cmd, name)] = tuple(statistics.median(pooled[(kind, cmd)]) * 1000 for kind in ("direct", "proxy"))
    return res, lat


def print_proxy_tables(res, lat, levels, names):
    cols = " | ".join("%s direct | %s via proxy | overhead" % (n.capitalize(), n.capitalize()) for n in names)
    print("\n| proxy overhead | %s |" % cols)
    print("|---|" + "---:|" * (3 * len(names)))
    for level in levels:
        for w in (LOGIN, BODY):
            key = "c=%d %s" % (level, w)
            row = ""
            for n in names:
                d, p, _ = res[(key, n)]
                row += " %.1f | %.1f | %+.1f%% |" % (d, p, (d - p) / d * 100 if d else float("nan"))
            print("| %s |%s" % (key, row))
    for cmd, label in (("noop", "c=1 NOOP, median (ms)"), ("fetch", "c=1 FETCH BODY.PEEK[] of one message, median (ms)")):
        row = ""
        for n in names:
            d, p = lat[(cmd, n)]
            row += " %.3f | %.3f | +%.3f ms |" % (d, p, p - d)
        print("| %s |%s" % (label, row))
    print("\n(overhead: how many fewer per second through the proxy, or the milliseconds it adds; goal <= 5%, <= 1 ms)")
    print("\n| proxy CPU ms per operation | %s |" % " | ".join("%s proxy" % n.capitalize() for n in names))
    print("|---|" + "---:|" * len(names))
    for level in levels:
        for w in (LOGIN, BODY):
            key = "c=%d %s" % (level, w)
            print("| %s | %s |" % (key, " | ".join("%.3f" % (res[(key, n)][2] * 1000) for n in names)))


def stores_part(args, levels, servers):
    """imap_pop3.measure's IMAP workloads, one workload at a time on each server in turn, so that
    the machine's drift (other engineers build here) falls on all three columns alike."""
    rows = {}
    for level in levels:
        for workload in ("login", "body", "search", "append"):
            ns = SimpleNamespace(messages=args.messages, seconds=args.seconds, workloads={workload})
            for s in servers:
                for key, value in measure(s, ns, level).items():
                    rows.setdefault("c=%d %s" % (level, key), {})[s.name] = value
                    print("  %-50s %-16s %10.1f" % ("c=%d %s" % (level, key), s.name, value), flush=True)
    names = [s.name for s in servers]
    print("\n| store backends | %s | postgres / sqlite | postgres / dovecot |" % " | ".join(names))
    print("|---|" + "---:|" * (len(names) + 2))
    for key, values in rows.items():
        pg, sq, dv = values.get("postern-postgres"), values.get("postern-sqlite"), values.get("dovecot")
        ratio = lambda a, b: "%.2f" % (a / b) if a is not None and b else ""
        print("| %s | %s | %s | %s |" % (key, " | ".join("%.1f" % values[n] for n in names), ratio(pg, sq), ratio(pg, dv)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--postern", default=".build-release/release/postern")
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=3, help="per cell")
    ap.add_argument("--concurrency", default="1,10")
    ap.add_argument("--parts", default="proxy,stores", help="proxy, stores or both")
    ap.add_argument("--dovecot-format", choices=["maildir", "mdbox"], default="mdbox",
                    help="Dovecot's mailbox format (mdbox: its fastest, as the README's one-run table)")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    levels = [int(x) for x in args.concurrency.split(",")]
    binary = os.path.abspath(args.postern)
    # SIGTERM (a CI timeout, kill) ends the run through the same cleanup as Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    cleanup = Cleanup()
    # Under /tmp, not TMPDIR: the postgres user must be able to enter it.
    work = tempfile.mkdtemp(prefix="postern-scale-out-", dir="/tmp")
    os.chmod(work, 0o755)
    cleanup.add(lambda: shutil.rmtree(work, ignore_errors=True))
    # Last before the directory goes: whatever of ours is still running (a server that failed to
    # come up is not in the cleanup list yet), by the ids of our own descendants only.
    cleanup.add(lambda: [stray(pid) for pid in descendants(os.getpid())[1:]])
    try:
        print("postern binary: %s; disk: %.0f fsyncs/s" % (binary, fsync_rate(os.path.join(work, "fsync"))), flush=True)
        appenders = ["append%d@example.org" % k for k in range(max(levels))]
        users = [(u, USER_PASSWORD) for u in ["bench@example.org"] + appenders] + [(MASTER, MASTER_PASSWORD)]
        # The SQLite store (the proxy's back end, and the stores part's first column).
        si, sl = free_port(), free_port()
        store = start_postern(binary, work, "store-sqlite", cleanup, SQLITE, store_listeners(si, sl), users)
        sqlite = Server("postern-sqlite", si, None, sl, lambda: descendants(store.pid))
        dports, dproc = start_dovecot_backend(work, cleanup, args.dovecot_format)
        dovecot = Server("dovecot", dports["imap"], None, dports["lmtp"], lambda: descendants(dproc.pid))
        fill(sqlite, args.messages)
        fill(dovecot, args.messages)
        if "proxy" in parts:
            pport = free_port()
            # The proxy's own account database (who may log in) holds the same users; a site
            # would point it at LDAP. One back end, every example.org user routed to it.
            proxy = start_postern(binary, work, "proxy", cleanup, "[plugin.store-sqlite]\npassword_iterations = 4096",
                                  [("imap", pport, "imap-proxy", "allow_plaintext_on_loopback = true")],
                                  [u for u in users if u[0] != MASTER],
                                  plugins='[plugin.access-proxy]\nmaster_user = "%s"\nmaster_password = "%s"\n'
                                          '[[plugin.access-proxy.backend]]\nname = "store"\nhost = "127.0.0.1"\nport = %d\n'
                                          '[plugin.access-proxy.users]\n"@example.org" = "store"\n' % (MASTER, MASTER_PASSWORD, si))
            dpport, dpproc = start_dovecot_proxy(work, cleanup, dports["imap"])
            families = [("postern", sqlite, Server("postern-proxy", pport, None, None, None), lambda: descendants(proxy.pid)),
                        ("dovecot", dovecot, Server("dovecot-proxy", dpport, None, None, None), lambda: descendants(dpproc.pid))]
            print("\nproxy overhead (%d messages, %.0f s per cell, each cell direct, proxy, proxy, direct):" %
                  (args.messages, args.seconds), flush=True)
            res, lat = proxy_part(args, levels, families)
            print_proxy_tables(res, lat, levels, ["postern", "dovecot"])
        if "stores" in parts:
            pg_port = start_postgres(work, cleanup)
            # tls off: the throw-away cluster has no certificate, and store-sqlite has no wire at all.
            pi, pl = free_port(), free_port()
            pg_section = ('[plugin.store-postgres]\nhost = "127.0.0.1"\nport = %d\nuser = "postern"\ndatabase = "postern"\n'
                          'tls = "disable"\npassword_iterations = 4096\n[plugin.imap]' % pg_port)
            pgstore = start_postern(binary, work, "store-postgres", cleanup, pg_section, store_listeners(pi, pl), users)
            postgres = Server("postern-postgres", pi, None, pl, lambda: descendants(pgstore.pid))
            fill(postgres, args.messages)
            print("\nstore backends (%d messages, %.0f s per cell):" % (args.messages, args.seconds), flush=True)
            stores_part(args, levels, [sqlite, postgres, dovecot])
    finally:
        cleanup.run()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted; everything it started is stopped")
