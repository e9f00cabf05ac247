#!/usr/bin/env python3
"""Password logins per second: Postern's auth beside Dovecot's, same machine, one run.

Each login is a fresh IMAP connection: greeting, a PLAIN check (`a LOGIN user password`, or
`a AUTHENTICATE PLAIN <initial response>` with --authenticate), `b LOGOUT`. What is measured is
mostly the cost of checking the password against its stored form:

  postern  scram-sha-256    Postern's own accounts: SCRAM-SHA-256 keys, PBKDF2 4096 rounds
                            (what every account has after import, and after a legacy login)
  postern  sasl-cyrus       (--cyrus) the libsasl2 bridge's PLAIN over a sasldb2 (saslpasswd2)
  dovecot  SCRAM-SHA-256    a passwd-file of {SCRAM-SHA-256} hashes (doveadm pw), PBKDF2 4096
  dovecot  SHA512-CRYPT     a passwd-file of {SHA512-CRYPT} hashes (Dovecot's usual default)

Run as root (Dovecot switches to its mail user); everything stops at the end.

    swift build -c release --scratch-path .build-release
    sudo python3 Benchmarks/auth_logins.py --postern .build-release/release/postern [--users 50]
        [--concurrency 1,4,16] [--seconds 5] [--cyrus]
"""
import argparse, base64, os, shutil, socket, subprocess, sys, tempfile, threading, time

from benchlib import free_port, start_dovecot, wait_port

PASSWORD = "bench-Password-1"


def login_once(port, user, authenticate):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    f = s.makefile("rwb")
    try:
        f.readline()
        if authenticate:
            ir = base64.b64encode(b"\0" + user.encode() + b"\0" + PASSWORD.encode())
            f.write(b"a AUTHENTICATE PLAIN " + ir + b"\r\n")
        else:
            f.write(b"a LOGIN " + user.encode() + b" " + PASSWORD.encode() + b"\r\n")
        f.flush()
        while True:
            line = f.readline()
            if not line:
                raise EOFError("connection closed")
            if line.startswith(b"a "):
                break
        if not line.startswith(b"a OK"):
            raise RuntimeError("login refused: %r" % line)
        f.write(b"b LOGOUT\r\n")
        f.flush()
        while True:
            line = f.readline()
            if not line or line.startswith(b"b "):
                break
    finally:
        s.close()


def measure(port, users, concurrency, seconds, authenticate):
    """Logins per second with `concurrency` clients, each as its own user."""
    count, errors, lock = [0], [], threading.Lock()
    stop = time.time() + seconds

    def worker(k):
        user = users[k % len(users)]
        n = 0
        try:
            while time.time() < stop:
                login_once(port, user, authenticate)
                n += 1
        except Exception as e:  # noqa: BLE001 (reported, then the run fails)
            errors.append("%s: %s" % (user, e))
        with lock:
            count[0] += n

    started = time.time()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError("; ".join(errors[:3]))
    return count[0] / (time.time() - started)


def doveadm_pw(scheme):
    return subprocess.run(["doveadm", "pw", "-s", scheme, "-p", PASSWORD], check=True, capture_output=True, text=True).stdout.strip()


def main():
    ap = argparse.ArgumentParser()
    default = ".build/release/postern" if os.path.exists(".build/release/postern") else ".build/debug/postern"
    ap.add_argument("--postern", default=default)
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--concurrency", default="1,4,16")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--authenticate", action="store_true", help="AUTHENTICATE PLAIN (SASL-IR) instead of LOGIN")
    ap.add_argument("--cyrus", action="store_true", help="also the sasl-cyrus bridge over a sasldb2")
    args = ap.parse_args()
    postern = os.path.abspath(args.postern)
    levels = [int(x) for x in args.concurrency.split(",")]
    users = ["user%d@example.org" % k for k in range(args.users)]
    work = tempfile.mkdtemp(prefix="postern-auth-bench-")
    os.chmod(work, 0o755)
    procs = []
    try:
        servers = []
        # Postern: SCRAM-SHA-256 accounts; optionally a second server with the libsasl2 bridge.
        variants = [("postern scram-sha-256", "[plugin.sasl-plain]\n")]
        if args.cyrus:
            sasldb = os.path.join(work, "sasldb2")
            for u in users:
                subprocess.run(["saslpasswd2", "-f", sasldb, "-p", "-c", "-u", "example.org", u.split("@")[0]],
                               input=PASSWORD.encode(), check=True)
            os.chmod(sasldb, 0o644)
            variants.append(("postern sasl-cyrus PLAIN", '[plugin.sasl-cyrus]\nmechanisms = ["PLAIN"]\nsasldb_path = "%s"\nrealm = "example.org"\n' % sasldb))
        for i, (name, sasl) in enumerate(variants):
            port = free_port()
            conf = os.path.join(work, "postern%d.toml" % i)
            open(conf, "w").write("""data_dir = "{w}/postern{i}"
first_account = false
workers = 2
[log]
level = "warning"
[plugin.store-sqlite]
password_iterations = 4096
{sasl}[plugin.imap]
login_failure_delay = "0s"
max_login_failures_per_ip = 0
[[listener]]
name = "imap"
address = "127.0.0.1"
port = {port}
protocol = "imap"
[listener.options]
allow_plaintext_on_loopback = true
""".format(w=work, i=i, sasl=sasl, port=port))
            subprocess.run([postern, "admin", "domain", "add", "example.org", "-c", conf], check=True, capture_output=True)
            csv = os.path.join(work, "users%d.csv" % i)
            open(csv, "w").write("email,password\n" + "".join("%s,%s\n" % (u, PASSWORD) for u in users))
            subprocess.run([postern, "admin", "user", "import", csv, "-c", conf], check=True, capture_output=True)
            p = subprocess.Popen([postern, "serve", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(p)
            wait_port(port)
            servers.append((name, port))
        # Dovecot: the same users in a passwd-file, once per scheme.
        for scheme in ["SCRAM-SHA-256", "SHA512-CRYPT"]:
            sub = os.path.join(work, scheme)
            os.makedirs(sub)
            os.chmod(sub, 0o755)
            passwd = os.path.join(sub, "passwd")
            open(passwd, "w").write("".join("%s:%s\n" % (u, doveadm_pw(scheme)) for u in users))
            os.chmod(passwd, 0o644)
            passdb = "passdb {\n  driver = passwd-file\n  args = scheme=%s %s\n}" % (scheme, passwd)
            ports, d, _ = start_dovecot(sub, ["imap"], PASSWORD, passdb=passdb)
            procs.append(d)
            servers.append(("dovecot " + scheme, ports["imap"]))

        for name, port in servers:   # every server and user works before anything is timed
            for u in users:
                login_once(port, u, args.authenticate)
        print("postern binary: %s; %s; %d users; %.0f s per cell" % (
            postern, "AUTHENTICATE PLAIN" if args.authenticate else "LOGIN", len(users), args.seconds))
        print("%-30s" % "logins/s" + "".join("%12s" % ("c=%d" % c) for c in levels))
        for name, port in servers:
            print("%-30s" % name + "".join("%12.1f" % measure(port, users, c, args.seconds, args.authenticate) for c in levels), flush=True)
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
    sys.exit(main())
