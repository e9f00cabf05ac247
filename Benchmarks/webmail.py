#!/usr/bin/env python3
"""Webmail beside Roundcube on the same machine, in one run, with ratios (issue 15).

Starts, under one temporary directory on 127.0.0.1:

  - a throw-away Dovecot (imap, Maildir) whose mailbox bench@example.org holds --messages
    messages (written straight into its Maildir, then indexed by one SELECT);
  - a throw-away Postern (store-sqlite, imap, lmtp, submission, queue, webmail) whose own store
    holds the same messages (through LMTP), with two webmail listeners: one reading Dovecot over
    IMAP, one reading Postern's own IMAP;
  - Roundcube (Debian's `roundcube-core` + `roundcube-sqlite3`) under PHP's built-in server with a
    private config (ROUNDCUBE_CONFIG_DIR), a private SQLite database, opcache on, and
    PHP_CLI_SERVER_WORKERS = --php-workers (default: the largest --users), reading the same Dovecot.

All three send through Postern's submission listener (AUTH PLAIN with the user's password, no TLS
on loopback) to a local account, so the send figures compare the webmails, not the peers.

Each virtual user is a thread with its own cookie jar and keep-alive connection, driving the pages
as a browser would (HTML and the JSON requests of Roundcube's own JavaScript; no static assets):

  login+inbox  Postern: GET /login, POST /login (303), GET /mail?f=INBOX (newest 50)
               Roundcube: GET ?_task=login, POST ?_task=login (302), GET ?_task=mail&_mbox=INBOX,
               GET ?_task=mail&_action=list&_mbox=INBOX&_remote=1 (newest 50, X-Roundcube-Request)
               a fresh session every time
  open         Postern: GET /read?f=INBOX&uid=N; Roundcube: GET ?_task=mail&_action=show&_uid=N
               (N random; one session per virtual user, logged in once)
  search       Postern: GET /search?q=needle&in=subject&f=INBOX
               Roundcube: GET ?_task=mail&_action=search&_q=needle&_headers=subject&_remote=1
               (10 of every 10,000 messages match)
  send         Postern: GET /compose, POST /compose (multipart, action=send, 303)
               Roundcube: GET ?_action=compose (302), GET ?_action=compose&_id=..,
               POST ?_action=send (multipart, as its compose form posts it)
               both save a copy in Sent through IMAP

and prints, for every action and --users level, operations per second (all users together) and
the median and 95th percentile latency of one operation (all its requests), then the ratios
Postern / Roundcube of the throughput (above 1 means Postern is faster). Each action is checked
once before measuring (the inbox lists 50 messages, the message shows its body, the search finds
the needles, the send is accepted); a build whose webmail answers "sending is not wired yet" is
measured without send. Needs root (Dovecot switches to its mail user) and installs nothing: see
Benchmarks/README.md for the packages. Everything it starts is stopped at the end (KEEP_WORK=1
keeps the temporary directory with the servers' logs).

    sudo python3 Benchmarks/webmail.py [--postern .build-release/release/postern] [--messages 10000]
        [--users 1,20] [--seconds 10] [--php-workers 20] [--only roundcube,postern-dovecot,postern-own]
"""
import argparse, http.client, os, random, re, resource, shutil, signal, sqlite3, statistics, subprocess, sys
import tempfile, threading, time, urllib.parse, uuid
import imaplib

from benchlib import free_port, start_dovecot as start_throwaway_dovecot, wait_port
from imap_pop3 import lmtp_fill, message

PASSWORD = "pw"
USER = "bench@example.org"
SINK = "sink@example.org"
ROUNDCUBE = "/var/lib/roundcube/public_html"


class Failure(Exception):
    pass


class Browser:
    """One user agent: a cookie jar (sent regardless of Secure, as browsers do for localhost) and
    a keep-alive connection, reopened when the server closes it (PHP's server closes every one)."""

    def __init__(self, port):
        self.port, self.cookies, self.conn = port, {}, None

    def request(self, method, path, body=None, headers=None):
        h = {"Host": "localhost:%d" % self.port, "User-Agent": "Mozilla/5.0 (postern-bench)",
             "Accept": "text/html,application/json"}
        if self.cookies:
            h["Cookie"] = "; ".join("%s=%s" % kv for kv in self.cookies.items())
        h.update(headers or {})
        for attempt in (0, 1):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                self.conn.request(method, path, body, h)
                r = self.conn.getresponse()
                data = r.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if attempt:
                    raise
        for line in r.headers.get_all("Set-Cookie") or []:
            name, _, rest = line.partition("=")
            value = rest.split(";", 1)[0]
            attrs = rest.lower()
            if value in ("", "deleted") or "max-age=0" in attrs or "1970" in attrs:
                self.cookies.pop(name.strip(), None)
            else:
                self.cookies[name.strip()] = value
        if r.will_close:
            self.close()
        return r.status, r.headers, data.decode("utf-8", "replace")

    def get(self, path, headers=None):
        return self.request("GET", path, headers=headers)

    def post_form(self, path, fields, headers=None):
        body = urllib.parse.urlencode(fields)
        h = {"Content-Type": "application/x-www-form-urlencoded"}
        h.update(headers or {})
        return self.request("POST", path, body, h)

    def post_multipart(self, path, fields, headers=None):
        boundary = "----postern-bench-" + uuid.uuid4().hex
        parts = []
        for k, v in fields:
            parts.append("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n" % (boundary, k, v))
        body = ("".join(parts) + "--%s--\r\n" % boundary).encode()
        h = {"Content-Type": "multipart/form-data; boundary=" + boundary}
        h.update(headers or {})
        return self.request("POST", path, body, h)

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def expect(cond, what, status, body):
    if not cond:
        m = re.search(r'class="error"[^>]*>([^<]*)<', body)
        raise Failure("%s: HTTP %s, %r" % (what, status, m.group(1) if m else body[:300]))


def hidden(body, name):
    m = re.search(r'<input[^>]*name="%s"[^>]*value="([^"]*)"' % re.escape(name), body) or \
        re.search(r'<input[^>]*value="([^"]*)"[^>]*name="%s"' % re.escape(name), body)
    if not m:
        raise Failure("no hidden field %s in %r" % (name, body[:300]))
    return m.group(1).replace("&amp;", "&")


# ---------------------------------------------------------------- Postern's webmail

class PosternWebmail:
    def __init__(self, port, messages):
        self.port, self.messages = port, messages

    def login(self):
        b = Browser(self.port)
        s, _, body = b.get("/login")
        expect(s == 200, "GET /login", s, body)
        s, h, body = b.post_form("/login", {"csrf": hidden(body, "csrf"), "user": USER, "password": PASSWORD})
        expect(s == 303 and "/mail" in (h.get("Location") or ""), "POST /login", s, body)
        return b

    def inbox(self, b):
        s, _, body = b.get("/mail?f=INBOX")
        expect(s == 200 and body.count("/read?f=INBOX&amp;uid=") >= 50, "GET /mail", s, body)

    def login_inbox(self, _):
        b = self.login()
        self.inbox(b)
        b.close()

    def open(self, b):
        uid = random.randint(1, self.messages)
        s, _, body = b.get("/read?f=INBOX&uid=%d" % uid)
        expect(s == 200 and "line of text" in body, "GET /read uid %d" % uid, s, body)

    def search(self, b):
        s, _, body = b.get("/search?q=needle&in=subject&f=INBOX")
        expect(s == 200 and body.count("/read?f=INBOX&amp;uid=") >= self.messages // 1000, "GET /search", s, body)

    def send(self, b):
        s, _, body = b.get("/compose")
        expect(s == 200, "GET /compose", s, body)
        fields = [("csrf", hidden(body, "csrf")), ("c", hidden(body, "c")), ("to", SINK),
                  ("cc", ""), ("bcc", ""), ("subject", "bench %d" % random.randint(0, 10 ** 9)),
                  ("body", "Hello,\r\n\r\nthis is the benchmark.\r\n" * 20), ("action", "send")]
        s, h, body = b.post_multipart("/compose", fields)
        expect(s == 303 and "sent=1" in (h.get("Location") or ""), "POST /compose", s, body)


# ---------------------------------------------------------------- Roundcube

class Roundcube:
    def __init__(self, port, messages):
        self.port, self.messages = port, messages

    def login(self):
        b = Browser(self.port)
        s, _, body = b.get("/?_task=login")
        expect(s == 200, "GET login", s, body)
        fields = {"_token": hidden(body, "_token"), "_task": "login", "_action": "login",
                  "_timezone": "UTC", "_url": "", "_user": USER, "_pass": PASSWORD}
        s, h, body = b.post_form("/?_task=login", fields)
        expect(s == 302 and "_task=mail" in (h.get("Location") or ""), "POST login", s, body)
        s, _, body = b.get("/?_task=mail&_mbox=INBOX")
        m = re.search(r'"request_token":"([^"]+)"', body)
        expect(s == 200 and m, "GET mail", s, body)
        b.token = m.group(1)
        return b

    def ajax(self, b, query):
        return b.get("/?" + query, headers={"X-Roundcube-Request": b.token, "X-Requested-With": "XMLHttpRequest"})

    def login_inbox(self, _):
        b = self.login()
        s, _, body = self.ajax(b, "_task=mail&_action=list&_mbox=INBOX&_page=1&_remote=1")
        expect(s == 200 and body.count("add_message_row") >= 50, "list", s, body)
        b.close()

    def open(self, b):
        uid = random.randint(1, self.messages)
        s, _, body = b.get("/?_task=mail&_action=show&_uid=%d&_mbox=INBOX" % uid)
        expect(s == 200 and "line of text" in body, "show uid %d" % uid, s, body)

    def search(self, b):
        s, _, body = self.ajax(b, "_task=mail&_action=search&_q=needle&_headers=subject&_filter=ALL"
                                  "&_scope=base&_mbox=INBOX&_remote=1")
        expect(s == 200 and body.count("add_message_row") >= self.messages // 1000, "search", s, body)

    def send(self, b):
        s, h, body = b.get("/?_task=mail&_action=compose")
        loc = h.get("Location") or ""
        expect(s == 302 and "_id=" in loc, "compose", s, body)
        s, _, body = b.get("/?" + loc.split("?", 1)[1])
        expect(s == 200, "compose page", s, body)
        compose_id = re.search(r'"compose_id":"([^"]+)"', body).group(1)
        m = re.search(r'<select[^>]*name="_from"[^>]*>.*?<option value="(\d+)"', body, re.S)
        expect(m, "identity", s, body)
        fields = [("_token", hidden(body, "_token")), ("_task", "mail"), ("_action", "send"),
                  ("_id", compose_id), ("_attachments", ""), ("_from", m.group(1)), ("_to", SINK),
                  ("_cc", ""), ("_bcc", ""), ("_replyto", ""), ("_followupto", ""),
                  ("_subject", "bench %d" % random.randint(0, 10 ** 9)), ("editorSelector", "plain"),
                  ("_message", "Hello,\r\n\r\nthis is the benchmark.\r\n" * 20), ("_is_html", "0"),
                  ("_priority", "0"), ("_store_target", "Sent"), ("_draft", "")]
        s, _, body = b.post_multipart("/?_task=mail&_unlock=loading1&_framed=1", fields)
        expect(s == 200 and "sent_successfully" in body, "send", s, body)


# ---------------------------------------------------------------- measuring

def run_for(seconds, users, setup, op):
    """`users` threads, each with its own session from `setup`, repeat `op` for `seconds`."""
    latencies, errors, lock = [], [], threading.Lock()
    box = {}

    def go():   # runs once, when every session is set up, before anyone starts
        box["begin"] = time.time()
        box["stop"] = box["begin"] + seconds
    start_gate = threading.Barrier(users + 1, action=go)

    def worker():
        ready = True
        try:
            state = setup()
        except Exception as e:
            errors.append("setup: %r" % e)
            state, ready = None, False
        start_gate.wait()
        mine = []
        while ready and time.time() < box["stop"]:
            t = time.perf_counter()
            try:
                op(state)
                mine.append(time.perf_counter() - t)
            except Exception as e:
                errors.append(repr(e))
                time.sleep(0.05)
        if isinstance(state, Browser):
            state.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(users)]
    [t.start() for t in threads]
    start_gate.wait()
    [t.join() for t in threads]
    elapsed = time.time() - box["begin"]
    if errors:
        print("    %d errors, first: %s" % (len(errors), errors[0][:400]), flush=True)
    if not latencies:
        return {"rate": 0.0, "p50": float("nan"), "p95": float("nan"), "n": 0, "errors": len(errors)}
    latencies.sort()
    return {"rate": len(latencies) / elapsed, "p50": statistics.median(latencies) * 1000,
            "p95": latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))] * 1000,
            "n": len(latencies), "errors": len(errors)}


def measure(app, args, users):
    out = {}
    out["login+inbox"] = run_for(args.seconds, users, lambda: None, app.login_inbox)
    out["open message"] = run_for(args.seconds, users, app.login, app.open)
    out["search"] = run_for(args.seconds, users, app.login, app.search)
    if getattr(app, "can_send", True):
        out["send"] = run_for(args.seconds, users, app.login, app.send)
        time.sleep(2)   # lets Postern's queue deliver what was sent before the next cell
    return out


# ---------------------------------------------------------------- servers

def fill_maildir(path, count):
    """The same messages as Postern's LMTP delivery, written straight into a Maildir's cur/."""
    for d in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(path, d), exist_ok=True)
    now = int(time.time()) - count
    for i in range(count):
        data = message(i)
        name = "%d.M%dP%d.bench,S=%d:2," % (now + i, i, os.getpid(), len(data))
        f = os.path.join(path, "cur", name)
        with open(f, "wb") as fh:
            fh.write(data)
        os.utime(f, (now + i, now + i))
    for root, dirs, files in os.walk(os.path.dirname(path)):
        os.chown(root, 65534, 65534)
        for n in files:
            os.chown(os.path.join(root, n), 65534, 65534)


def start_dovecot(work, args, procs):
    namespace = "namespace inbox {\n  inbox = yes\n" + "".join(
        "  mailbox %s {\n    special_use = \\%s\n    auto = subscribe\n  }\n" % (box, box)
        for box in ("Drafts", "Sent", "Junk", "Trash")) + "}\n"
    t = time.time()
    ports, p, _ = start_throwaway_dovecot(work, ["imap"], PASSWORD, extra=namespace,
                                           before_start=lambda root: fill_maildir(os.path.join(root, "mail", USER), args.messages))
    procs.append(p)
    port = ports["imap"]
    c = imaplib.IMAP4("127.0.0.1", port)
    c.login(USER, PASSWORD)
    typ, data = c.select("INBOX", readonly=True)
    c.logout()
    print("dovecot: Maildir of %s messages written and indexed in %.1f s" % (data[0].decode(), time.time() - t), flush=True)
    return port, p


def start_postern(work, args, dovecot_imap, procs):
    postern = os.path.abspath(args.postern)
    ports = {k: free_port() for k in ("imap", "lmtp", "submission", "web_own", "web_dovecot")}
    conf = os.path.join(work, "postern.toml")
    webmail = """[[listener]]
name = "{name}"
address = "127.0.0.1"
port = {port}
protocol = "webmail"
[listener.options]
imap_host = "127.0.0.1"
imap_port = {imap}
imap_security = "none"
submission_host = "127.0.0.1"
submission_port = {submission}
submission_security = "none"
session_store = "{w}/postern/{name}-sessions.sqlite"
"""
    open(conf, "w").write("""data_dir = "{w}/postern"
workers = 2
[log]
level = "warning"
[plugin.store-sqlite]
password_iterations = 4096
[plugin.sasl-plain]
[plugin.imap]
[plugin.smtp]
hostname = "mx.example.org"
[plugin.queue]
[plugin.webmail]
login_failure_delay = "10ms"
max_login_failures = 100000
[[listener]]
name = "imap"
address = "127.0.0.1"
port = {imap}
protocol = "imap"
[listener.options]
allow_plaintext_on_loopback = true
[[listener]]
name = "lmtp"
address = "127.0.0.1"
port = {lmtp}
protocol = "lmtp"
[[listener]]
name = "submission"
address = "127.0.0.1"
port = {submission}
protocol = "smtp"
[listener.options]
mode = "submission"
allow_plaintext_auth_on_loopback = true
""".format(w=work, **ports) +
        webmail.format(name="webmail-own", port=ports["web_own"], imap=ports["imap"], submission=ports["submission"], w=work) +
        webmail.format(name="webmail-dovecot", port=ports["web_dovecot"], imap=dovecot_imap, submission=ports["submission"], w=work))
    subprocess.run([postern, "admin", "domain", "add", "example.org", "-c", conf], check=True, capture_output=True)
    for u in (USER, SINK):
        subprocess.run([postern, "admin", "user", "add", u, "--password", PASSWORD, "-c", conf], check=True, capture_output=True)
    log = open(os.path.join(work, "postern.log"), "w")
    p = subprocess.Popen([postern, "serve", "-c", conf], stdout=log, stderr=subprocess.STDOUT)
    procs.append(p)
    for port in ports.values():
        try:
            wait_port(port, timeout=30)
        except RuntimeError:
            sys.exit("postern did not start: " + open(os.path.join(work, "postern.log")).read()[-2000:])
    t = time.time()
    per = (args.messages + 3) // 4
    fillers = [threading.Thread(target=lmtp_fill, args=(ports["lmtp"], [USER], min(per, args.messages - k * per),
                                                         (lambda k: lambda i: message(k * per + i))(k)))
               for k in range(4)]
    [f.start() for f in fillers]
    [f.join() for f in fillers]
    print("postern: %d messages delivered through LMTP in %.1f s" % (args.messages, time.time() - t), flush=True)
    return ports, p


def start_roundcube(work, args, dovecot_imap, submission, procs):
    d = os.path.join(work, "roundcube")
    for sub in ("config", "logs", "temp"):
        os.makedirs(os.path.join(d, sub))
    for f in ("defaults.inc.php", "mimetypes.php"):
        shutil.copy(os.path.join("/etc/roundcube", f), os.path.join(d, "config", f))
    db = os.path.join(d, "roundcube.sqlite")
    con = sqlite3.connect(db)
    con.executescript(open("/usr/share/roundcube/SQL/sqlite.initial.sql").read())
    con.close()
    open(os.path.join(d, "config", "config.inc.php"), "w").write("""<?php
$config = [];
$config['db_dsnw'] = 'sqlite:///{db}?mode=0640';
$config['imap_host'] = '127.0.0.1:{imap}';
$config['smtp_host'] = '127.0.0.1:{smtp}';
$config['smtp_user'] = '%u';
$config['smtp_pass'] = '%p';
$config['smtp_auth_type'] = 'PLAIN';
$config['des_key'] = '{key}';
$config['plugins'] = [];
$config['skin'] = 'elastic';
$config['enable_spellcheck'] = false;
$config['log_dir'] = '{d}/logs/';
$config['temp_dir'] = '{d}/temp/';
$config['login_rate_limit'] = 0;
$config['session_lifetime'] = 60;
$config['mail_pagesize'] = 50;
$config['support_url'] = '';
""".format(db=db, imap=dovecot_imap, smtp=submission, key=uuid.uuid4().hex[:24], d=d))
    port = free_port()
    env = dict(os.environ, ROUNDCUBE_CONFIG_DIR=os.path.join(d, "config"),
               PHP_CLI_SERVER_WORKERS=str(args.php_workers))
    log = open(os.path.join(d, "php-server.log"), "w")
    p = subprocess.Popen(["php", "-d", "opcache.enable_cli=1", "-d", "opcache.memory_consumption=128",
                          "-d", "opcache.validate_timestamps=0", "-d", "memory_limit=256M",
                          "-S", "127.0.0.1:%d" % port, "-t", ROUNDCUBE],
                         cwd=ROUNDCUBE, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    p.group = True   # its workers are forked children: stop the whole process group
    procs.append(p)
    wait_port(port)
    return port, p


def main():
    ap = argparse.ArgumentParser()
    default = ".build-release/release/postern" if os.path.exists(".build-release/release/postern") else ".build/release/postern"
    ap.add_argument("--postern", default=default)
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--users", default="1,20")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--php-workers", type=int, default=0, help="PHP_CLI_SERVER_WORKERS (default: the largest --users)")
    ap.add_argument("--only", default="roundcube,postern-dovecot,postern-own")
    args = ap.parse_args()
    levels = [int(x) for x in args.users.split(",")]
    args.php_workers = args.php_workers or max(levels)
    wanted = args.only.split(",")
    if os.geteuid() != 0:
        sys.exit("run as root (Dovecot switches to its mail user)")
    if not os.path.exists(os.path.join(ROUNDCUBE, "index.php")) or not shutil.which("php"):
        sys.exit("needs Debian's roundcube-core, roundcube-sqlite3 and php-cli (see Benchmarks/README.md)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    work = tempfile.mkdtemp(prefix="postern-webmail-bench-")
    os.chmod(work, 0o755)
    procs = []
    try:
        dovecot_imap, dovecot = start_dovecot(work, args, procs)
        ports, postern = start_postern(work, args, dovecot_imap, procs)
        rc_port, php = start_roundcube(work, args, dovecot_imap, ports["submission"], procs)
        apps = [("roundcube", "Roundcube on Dovecot", Roundcube(rc_port, args.messages)),
                ("postern-dovecot", "Postern webmail on Dovecot", PosternWebmail(ports["web_dovecot"], args.messages)),
                ("postern-own", "Postern webmail on its own store", PosternWebmail(ports["web_own"], args.messages))]
        apps = [a for a in apps if a[0] in wanted]
        # One of each action first, single-threaded: checks the pages, lets Roundcube create its
        # user row and identity, and warms caches (opcache, Dovecot's index, SQLite pages).
        for key, name, app in apps:
            app.login_inbox(None)
            b = app.login()
            app.open(b), app.search(b)
            try:
                app.send(b)
                app.can_send = True
                print("%s: every action checked" % name, flush=True)
            except Failure as e:
                if "not wired" not in str(e):
                    raise
                app.can_send = False
                print("%s: sending is not wired in this build; send is left out for it" % name, flush=True)
            b.close()
        results = {}
        for level in levels:
            for key, name, app in apps:
                print("measuring %s, %d user(s)" % (name, level), flush=True)
                results[(key, level)] = measure(app, args, level)
        print()
        print("postern binary: %s; %d messages; %s s per cell; PHP_CLI_SERVER_WORKERS=%d" %
              (os.path.abspath(args.postern), args.messages, args.seconds, args.php_workers))
        head = "| action | users |" + "".join(" %s ops/s | p50 ms | p95 ms |" % k for k, _, _ in apps)
        ratios = [k for k, _, _ in apps if k != "roundcube"] if "roundcube" in wanted else []
        head += "".join(" %s / roundcube |" % k for k in ratios)
        print(head)
        print("|---|---:|" + "---:|---:|---:|" * len(apps) + "---:|" * len(ratios))
        for action in ("login+inbox", "open message", "search", "send"):
            for level in levels:
                row = "| %s | %d |" % (action, level)
                for k, _, _ in apps:
                    r = results[(k, level)].get(action)
                    if r is None:
                        row += " not wired | | |"
                        continue
                    err = " (%d err)" % r["errors"] if r["errors"] else ""
                    row += " %.1f%s | %.0f | %.0f |" % (r["rate"], err, r["p50"], r["p95"])
                for k in ratios:
                    p, d = results[(k, level)].get(action), results[("roundcube", level)].get(action)
                    row += " %.2f |" % (p["rate"] / d["rate"]) if p and d and d["rate"] else " - |"
                print(row)
    finally:
        for p in reversed(procs):
            if getattr(p, "group", False):
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            else:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
            if getattr(p, "group", False):
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if os.environ.get("KEEP_WORK"):
            print("kept", work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
