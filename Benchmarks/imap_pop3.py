#!/usr/bin/env python3
"""IMAP and POP3 beside Dovecot on the same machine, in one run, with ratios.

Starts a throw-away Postern (store-sqlite, imap, pop3, lmtp, sasl-plain) and a throw-away Dovecot
(imap, pop3, lmtp; Maildir, sdbox or mdbox; login processes kept and shared unless
--dovecot-login default) on 127.0.0.1 under one temporary directory, fills the same mailbox
of --messages messages in each (through LMTP), then measures at each concurrency:

  login      connect, LOGIN, SELECT INBOX, FETCH 1:* (FLAGS), LOGOUT      sessions/s
  body       FETCH n BODY.PEEK[] of a random message (connections kept)     commands/s
  search     SEARCH FLAGGED (index) and SEARCH SUBJECT "needle" (content)   commands/s
  append     APPEND of a 2 KiB message                                      commands/s
  pop3       USER/PASS, STAT, RETR of 10 random messages, QUIT              sessions/s
             (one maildrop per client: POP3 locks a maildrop per session)

and --idle sessions in IDLE on the same INBOX: the resident memory per session (the server's
processes before and after, divided by the count) and how long one delivery takes to reach the
first and the last of them. With --large N it also appends N
messages to an empty mailbox and fetches them all back (the store benchmark of issue 3).

Run as root (Dovecot switches to its mail user). Everything stops at the end.

    sudo python3 Benchmarks/imap_pop3.py [--postern .build/release/postern] [--messages 10000]
        [--concurrency 1,10,50] [--seconds 5] [--idle 1000] [--large 100000] [--dovecot-format mdbox]
        [--dovecot-login performance|default]
"""
import argparse, imaplib, os, poplib, random, resource, selectors, shutil, socket, subprocess, sys, tempfile, threading, time

from benchlib import descendants, free_port, rss, start_dovecot, wait_port

USER_PASSWORD = "pw"


def lmtp_fill(port, recipients, count, make):
    """Delivers `count` messages to every recipient, one LMTP transaction per message."""
    s = socket.create_connection(("127.0.0.1", port))
    f = s.makefile("rwb")

    def reply():
        while True:
            line = f.readline()
            if not line:
                raise EOFError
            if line[3:4] == b" ":
                return line

    def cmd(line):
        f.write(line + b"\r\n")
        f.flush()
        return reply()

    reply()
    cmd(b"LHLO bench")
    for i in range(count):
        cmd(b"MAIL FROM:<bench@remote.example>")
        for r in recipients:
            assert cmd(b"RCPT TO:<" + r.encode() + b">").startswith(b"250")
        cmd(b"DATA")
        f.write(make(i) + b".\r\n")
        f.flush()
        for _ in recipients:
            line = reply()
            assert line.startswith(b"250"), line
    cmd(b"QUIT")


def message(i, size=1000):
    subject = b"needle" if i % 1000 == 7 else b"message %d" % i
    return (b"From: bench%d@remote.example\r\nTo: bench@example.org\r\nSubject: " % (i % 97) + subject +
            b"\r\nMessage-ID: <%d@bench>\r\nDate: Mon, 3 Jun 2024 10:00:00 +0000\r\n\r\n" % i +
            (b"line of text %d\r\n" % i) * (size // 20))


def run_for(seconds, concurrency, setup, op, teardown):
    """Runs `op(state)` in `concurrency` threads for `seconds`; returns operations per second."""
    count = [0]
    errors = []
    lock = threading.Lock()
    stop = time.time() + seconds

    def worker(k):
        try:
            state = setup(k)
            n = 0
            while time.time() < stop:
                op(state)
                n += 1
            teardown(state)
            with lock:
                count[0] += n
        except Exception as e:
            errors.append(repr(e))

    start = time.time()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(concurrency)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    if errors:
        print("    errors: %d, first: %s" % (len(errors), errors[0]))
    return count[0] / (time.time() - start)


class Server:
    def __init__(self, name, imap, pop3, lmtp, pids):
        self.name, self.imap, self.pop3, self.lmtp, self.pids = name, imap, pop3, lmtp, pids

    def rss(self):
        """Resident memory (bytes) of every process of the server (children included)."""
        return rss(self.pids())


def imap_login(port, user):
    c = imaplib.IMAP4("127.0.0.1", port)
    c.login(user, USER_PASSWORD)
    return c


def measure(server, args, concurrency):
    rows = {}
    n = args.messages
    user = "bench@example.org"

    def login_session(_):
        c = imap_login(server.imap, user)
        c.select("INBOX", readonly=True)
        c.fetch("1:*", "(FLAGS)")
        c.logout()
    if "login" in args.workloads:
        rows["login+select+fetch flags (sessions/s)"] = run_for(args.seconds, concurrency, lambda k: None, login_session, lambda s: None)

    def open_ro(k):
        c = imap_login(server.imap, user)
        c.select("INBOX", readonly=True)
        return c
    if "body" in args.workloads:
        rows["fetch body[] (commands/s)"] = run_for(args.seconds, concurrency, open_ro,
                                                    lambda c: c.fetch(str(random.randint(1, n)), "(BODY.PEEK[])"), lambda c: c.logout())
    if "search" in args.workloads:
        rows["search flagged (commands/s)"] = run_for(args.seconds, concurrency, open_ro, lambda c: c.search(None, "FLAGGED"), lambda c: c.logout())
        rows["search subject, content (commands/s)"] = run_for(args.seconds, concurrency, open_ro,
                                                               lambda c: c.search(None, "SUBJECT", "needle"), lambda c: c.logout())
    small = message(1, 2000)

    def open_append(k):
        c = imap_login(server.imap, "append%d@example.org" % k)
        return c
    if "append" in args.workloads:
        rows["append 2 KiB (commands/s)"] = run_for(args.seconds, concurrency, open_append,
                                                    lambda c: c.append("INBOX", None, None, small), lambda c: c.logout())

    def pop_session(k):
        p = poplib.POP3("127.0.0.1", server.pop3)
        p.user("pop%d@example.org" % k)
        p.pass_(USER_PASSWORD)
        count, _ = p.stat()
        for _ in range(10):
            p.retr(random.randint(1, count))
        p.quit()
    if "pop3" in args.workloads:
        rows["pop3 login+stat+10 retr (sessions/s)"] = run_for(args.seconds, concurrency, lambda k: k, pop_session, lambda s: None)
    return rows


def open_idle(port, user):
    """A raw socket logged in, INBOX examined and in IDLE (imaplib's objects cost the client too
    much memory and time at 10,000 sessions)."""
    s = socket.create_connection(("127.0.0.1", port))
    f = s.makefile("rb")

    def until(tag):
        while True:
            line = f.readline()
            if not line:
                raise EOFError("connection closed")
            if line.startswith(tag):
                return line

    until(b"* OK")
    s.sendall(b"a LOGIN %s %s\r\n" % (user.encode(), USER_PASSWORD.encode()))
    assert b"OK" in until(b"a "), "login"
    s.sendall(b"b EXAMINE INBOX\r\nc IDLE\r\n")
    assert b"OK" in until(b"b "), "examine"
    until(b"+")
    return s, f


def with_inotify_instances(wanted, run):
    """Runs `run()` with the kernel's fs.inotify.max_user_instances raised to `wanted` (then put
    back). Dovecot's IDLE watches the mailbox with inotify from each imap process, all of one
    user; past Debian's default of 128 instances the rest fall back to polling every
    mailbox_idle_check_interval (30 s), which is a kernel setting, not Dovecot at its best.
    Postern's workers use one instance each."""
    path = "/proc/sys/fs/inotify/max_user_instances"
    old = int(open(path).read())
    if old < wanted:
        open(path, "w").write(str(wanted))
    try:
        return run()
    finally:
        if old < wanted:
            open(path, "w").write(str(old))


def idle_sessions(server, count, user="bench@example.org"):
    """Holds `count` sessions in IDLE on `user`'s INBOX (--messages of them). Returns the resident memory per session
    (the server's processes before and after, divided by the count) and the seconds from one
    LMTP delivery until the first and the last session heard its EXISTS."""
    before = server.rss()
    conns, lock, errors = [], threading.Lock(), []

    def opener(k, n):
        try:
            for _ in range(n):
                c = open_idle(server.imap, user)
                with lock:
                    conns.append(c)
        except Exception as e:
            errors.append(repr(e))
    threads = [threading.Thread(target=opener, args=(k, count // 16 + (1 if k < count % 16 else 0))) for k in range(16)]
    start = time.time()
    [t.start() for t in threads]
    [t.join() for t in threads]
    opened = time.time() - start
    if errors:
        print("    %s: %d of %d sessions opened; first error: %s" % (server.name, len(conns), count, errors[0]))
    time.sleep(2)
    after = server.rss()
    per_session = (after - before) / max(1, len(conns))
    # One delivery; every session should hear "* n EXISTS".
    selector = selectors.DefaultSelector()
    for s, f in conns:
        s.setblocking(False)
        selector.register(s, selectors.EVENT_READ, f)
    sent = time.time()
    lmtp_fill(server.lmtp, [user], 1, lambda i: message(10**6 + i))
    woken, first, last = 0, None, None
    deadline = sent + 60
    while woken < len(conns) and time.time() < deadline:
        for key, _ in selector.select(timeout=1):
            try:
                data = key.fileobj.recv(4096)
            except BlockingIOError:
                continue
            if b"EXISTS" in data:
                now = time.time()
                first = first or now - sent
                last = now - sent
                woken += 1
                selector.unregister(key.fileobj)
    if woken < len(conns):
        print("    %s: only %d of %d sessions heard the delivery within 60 s" % (server.name, woken, len(conns)))
    for s, f in conns:
        try:
            s.setblocking(True)
            s.sendall(b"DONE\r\nd LOGOUT\r\n")
            s.close()
        except Exception:
            pass
    return {"sessions": len(conns), "opened_per_s": len(conns) / opened, "bytes": per_session,
            "first": first or float("nan"), "last": last or float("nan"), "woken": woken}


def large(server, count):
    """Appends `count` messages to an empty mailbox over 4 connections, then fetches them all."""
    user = "large@example.org"
    c = imap_login(server.imap, user)
    c.create("Large")
    c.logout()
    per = count // 4
    start = time.time()

    def appender(k):
        c = imap_login(server.imap, user)
        for i in range(per):
            c.append("Large", None, None, message(k * per + i, 1000))
        c.logout()
    threads = [threading.Thread(target=appender, args=(k,)) for k in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    append_rate = 4 * per / (time.time() - start)
    c = imap_login(server.imap, user)
    c.select("Large", readonly=True)
    start = time.time()
    fetched = 0
    for first in range(1, 4 * per + 1, 1000):
        typ, data = c.fetch("%d:%d" % (first, min(first + 999, 4 * per)), "(BODY.PEEK[])")
        fetched += sum(1 for d in data if isinstance(d, tuple))
    fetch_rate = fetched / (time.time() - start)
    c.logout()
    select_ms, qresync_ms = select_times(server, user, "Large")
    return append_rate, fetch_rate, select_ms, qresync_ms


def select_times(server, user, mailbox, runs=5):
    """Milliseconds (median of `runs`) for a fresh session's SELECT of `mailbox`, and for a
    QRESYNC SELECT (RFC 7162) by a client that knew the mailbox before another session changed
    the flags of 10 of its messages: the resynchronisation a mobile client does on reconnecting."""
    def median(xs):
        return sorted(xs)[len(xs) // 2]
    plain = []
    for _ in range(runs):
        c = imap_login(server.imap, user)
        start = time.time()
        c.select(mailbox, readonly=True)
        plain.append((time.time() - start) * 1000)
        c.logout()
    c = imap_login(server.imap, user)
    c._simple_command("ENABLE", "QRESYNC")
    c.select(mailbox)
    validity = int(c.untagged_responses["UIDVALIDITY"][-1])
    modseq = int(c.untagged_responses["HIGHESTMODSEQ"][-1])
    count = int(c.untagged_responses["EXISTS"][-1])
    for n in range(10):
        c.store(str(1 + n * (count // 10)), "+FLAGS", "(\\Answered)")
    c.logout()
    resync = []
    for _ in range(runs):
        c = imap_login(server.imap, user)
        c._simple_command("ENABLE", "QRESYNC")
        start = time.time()
        typ, _ = c._simple_command("SELECT", mailbox, "(QRESYNC (%d %d))" % (validity, modseq))
        resync.append((time.time() - start) * 1000)
        assert typ == "OK", typ
        fetched = c.untagged_responses.get("FETCH", [])
        assert len(fetched) >= 10, "%s: %d FETCHes after QRESYNC, expected the 10 changes" % (server.name, len(fetched))
        c.logout()
    return median(plain), median(resync)


def main():
    ap = argparse.ArgumentParser()
    default = ".build/release/postern" if os.path.exists(".build/release/postern") else ".build/debug/postern"
    ap.add_argument("--postern", default=default)
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--concurrency", default="1,10,50")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--idle", type=int, default=1000, help="sessions held in IDLE (Postern; 10,000 is the issue's goal)")
    ap.add_argument("--idle-peer", type=int, default=1000, help="at most this many IDLE sessions for Dovecot (a process each)")
    ap.add_argument("--large", type=int, default=0)
    ap.add_argument("--dovecot-format", choices=["maildir", "sdbox", "mdbox"], default="maildir",
                    help="Dovecot's mailbox format (maildir is Debian's usual; appending to a large "
                         "Maildir that nobody selects slows down as new/ grows)")
    ap.add_argument("--dovecot-login", choices=["performance", "default"], default="performance",
                    help="Dovecot's login processes: 'performance' (service_count = 0, process_min_avail = "
                         "cores: long-lived login processes, each serving many connections, as Dovecot's "
                         "documentation advises for speed) or 'default' (a new process per connection)")
    ap.add_argument("--workloads", default="login,body,search,append,pop3",
                    help="which of login, body, search, append, pop3 to measure (comma-separated)")
    ap.add_argument("--servers", default="postern,dovecot", help="postern, dovecot or both: the other is not started")
    args = ap.parse_args()
    args.workloads = set(args.workloads.split(","))
    wanted = set(args.servers.split(","))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    postern = os.path.abspath(args.postern)
    levels = [int(x) for x in args.concurrency.split(",")]
    work = tempfile.mkdtemp(prefix="postern-imap-bench-")
    os.chmod(work, 0o755)
    procs = []
    pops = ["pop%d@example.org" % k for k in range(max(levels))]
    appenders = ["append%d@example.org" % k for k in range(max(levels))]
    everyone = ["bench@example.org", "large@example.org"] + pops + appenders
    try:
        # Postern
        pi, pp, pl = free_port(), free_port(), free_port()
        pconf = os.path.join(work, "postern.toml")
        open(pconf, "w").write("""data_dir = "{w}/postern"
workers = 2
[log]
level = "warning"
[plugin.store-sqlite]
password_iterations = 4096
[plugin.sasl-plain]
[plugin.imap]
[plugin.pop3]
[[listener]]
name = "imap"
address = "127.0.0.1"
port = {pi}
protocol = "imap"
max_connections = 20000
[listener.options]
allow_plaintext_on_loopback = true
[[listener]]
name = "pop3"
address = "127.0.0.1"
port = {pp}
protocol = "pop3"
[listener.options]
allow_plaintext_on_loopback = true
[[listener]]
name = "lmtp"
address = "127.0.0.1"
port = {pl}
protocol = "lmtp"
""".format(w=work, pi=pi, pp=pp, pl=pl))
        subprocess.run([postern, "admin", "domain", "add", "example.org", "-c", pconf], check=True, capture_output=True)
        csv = os.path.join(work, "users.csv")
        open(csv, "w").write("email,password\n" + "".join("%s,%s\n" % (u, USER_PASSWORD) for u in everyone))
        subprocess.run([postern, "admin", "user", "import", csv, "-c", pconf], check=True, capture_output=True)
        pserve = subprocess.Popen([postern, "serve", "-c", pconf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(pserve)
        for p in (pi, pp, pl):
            wait_port(p)
        servers = [Server("postern", pi, pp, pl, lambda: descendants(pserve.pid))]
        # Dovecot
        if "dovecot" in wanted:
            location = None
            if args.dovecot_format != "maildir":
                location = "%s:%s/dovecot/mail/%%u/%s" % (args.dovecot_format, work, args.dovecot_format)
            login = ""
            if args.dovecot_login == "performance":
                login = "  service_count = 0\n  process_min_avail = %d\n" % (os.cpu_count() or 1)
            ports, dserve, root = start_dovecot(work, ["imap", "pop3", "lmtp"], USER_PASSWORD, location=location, login_settings=login)
            procs.append(dserve)
            servers.append(Server("dovecot", ports["imap"], ports["pop3"], ports["lmtp"], lambda: descendants(dserve.pid)))
        if "postern" not in wanted:
            servers = servers[1:]
        for s in servers:
            t = time.time()
            lmtp_fill(s.lmtp, ["bench@example.org"], args.messages, lambda i: message(i))
            # Every tenth message flagged, so SEARCH FLAGGED finds some.
            c = imap_login(s.imap, "bench@example.org")
            c.select("INBOX")
            for first in range(1, args.messages + 1, 10):
                c.store(str(first), "+FLAGS", "(\\Flagged)")
            c.logout()
            lmtp_fill(s.lmtp, pops, 200, lambda i: message(i, 4000))
            print("%s: filled in %.1f s" % (s.name, time.time() - t))

        print("postern binary: %s" % postern)
        if len(servers) == 1:
            print("%-44s %12s" % ("", servers[0].name))
            for level in levels:
                for key, value in measure(servers[0], args, level).items():
                    print("%-44s %12.1f" % ("c=%d %s" % (level, key), value), flush=True)
        else:
            print("%-44s %12s %12s %8s" % ("", "postern", "dovecot", "ratio"))
            for level in levels:
                results = [measure(s, args, level) for s in servers]
                for key in results[0]:
                    p, d = results[0][key], results[1][key]
                    print("%-44s %12.1f %12.1f %8.2f" % ("c=%d %s" % (level, key), p, d, p / d if d else float("nan")), flush=True)
        if args.idle:
            # Dovecot runs a process per IMAP session (its imap service's process_limit is 1,024 by
            # default, and 10,000 processes of about 6 MiB would not fit this machine): it holds at
            # most --idle-peer sessions; the memory per session is comparable across counts.
            found = []
            for s in servers:
                n = args.idle if s.name == "postern" else min(args.idle, args.idle_peer)
                r = with_inotify_instances(n + 256, lambda: idle_sessions(s, n)) if s.name == "dovecot" else idle_sessions(s, n)
                found.append(r)
                print("%s: %d sessions in IDLE (opened at %.0f/s), %.1f KiB resident each; one delivery heard by "
                      "%d sessions, the first after %.3f s, the last after %.3f s" %
                      (s.name, r["sessions"], r["opened_per_s"], r["bytes"] / 1024, r["woken"], r["first"], r["last"]), flush=True)
            if len(found) == 2:
                p, d = found[0]["bytes"], found[1]["bytes"]
                print("%-44s %12.0f %12.0f %8.2f" % ("memory per IDLE session (bytes)", p, d, d / p if p else float("nan")))
                print("%-44s %12.3f %12.3f %8.2f" % ("delivery heard by the last session (s)", found[0]["last"], found[1]["last"],
                                                     found[1]["last"] / found[0]["last"] if found[0]["last"] else float("nan")))
        if args.large:
            results = []
            for s in servers:
                results.append(large(s, args.large))
                print("%s: %d messages appended at %.0f msg/s, fetched back at %.0f msg/s; SELECT %.1f ms, QRESYNC after 10 changes %.1f ms" % (
                    (s.name, args.large) + results[-1]), flush=True)
            if len(results) == 2:
                (pa, pf, ps, pq), (da, df, ds, dq) = results
                print("%-44s %12.0f %12.0f %8.2f" % ("append %d messages (msg/s)" % args.large, pa, da, pa / da))
                print("%-44s %12.0f %12.0f %8.2f" % ("fetch them all back (msg/s)", pf, df, pf / df))
                print("%-44s %12.1f %12.1f %8.2f" % ("SELECT of them (ms)", ps, ds, ds / ps))
                print("%-44s %12.1f %12.1f %8.2f" % ("QRESYNC SELECT after 10 changes (ms)", pq, dq, dq / pq))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
