#!/usr/bin/env python3
"""Password logins per second: Postern's auth beside Dovecot's, same machine, one run.

Each login is a fresh IMAP connection: greeting, one authentication, `b LOGOUT`. The
authentication is `--mechanism`: `login` (`a LOGIN user password`), `plain` (`a AUTHENTICATE
PLAIN <initial response>`) or `scram-sha-256` (the full RFC 5802/7677 exchange, the client
doing its own PBKDF2 as real clients do, and checking the server's signature). What is measured
is mostly the cost of checking the secret against its stored form:

  postern  scram-sha-256    Postern's own accounts: SCRAM-SHA-256 keys, PBKDF2 4096 rounds
                            (what every account has after import, and after a legacy login)
  postern  sasl-cyrus       (--cyrus; login/plain only) the libsasl2 bridge's PLAIN over a sasldb2
  dovecot  SCRAM-SHA-256    a passwd-file of {SCRAM-SHA-256} hashes (doveadm pw), PBKDF2 4096
  dovecot  SHA512-CRYPT     (login/plain only) a passwd-file of {SHA512-CRYPT} hashes (Dovecot's
                            usual default)

GSSAPI is not in this benchmark: a GSSAPI login's cost is the ticket's decryption with the
keytab (in authproxyd for Postern), and it needs a KDC and a Dovecot built with GSSAPI; see
Benchmarks/README.md.

Run as root (Dovecot switches to its mail user); everything stops at the end.

    swift build -c release --scratch-path .build-release
    sudo python3 Benchmarks/auth_logins.py --postern .build-release/release/postern [--users 50]
        [--concurrency 1,4,16] [--seconds 5] [--mechanism login|plain|scram-sha-256] [--cyrus]
"""
import argparse, base64, hashlib, hmac, os, shutil, socket, subprocess, sys, tempfile, threading, time

from benchlib import free_port, start_dovecot, wait_port

PASSWORD = "bench-Password-1"


def scram_sha256(f, user):
    """The client side of SCRAM-SHA-256 after `a AUTHENTICATE SCRAM-SHA-256`; returns the tagged line."""
    def b64(x):
        return base64.b64encode(x).decode()
    def line():
        l = f.readline()
        if not l:
            raise EOFError("connection closed")
        return l
    nonce = b64(os.urandom(18))
    first_bare = "n=%s,r=%s" % (user.replace("=", "=3D").replace(",", "=2C"), nonce)
    f.write(b64(("n,," + first_bare).encode()).encode() + b"\r\n")
    f.flush()
    l = line()
    if not l.startswith(b"+ "):
        return l
    server_first = base64.b64decode(l[2:].strip()).decode()
    attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
    if not attrs["r"].startswith(nonce):
        raise RuntimeError("server nonce does not extend ours")
    salted = hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    without_proof = "c=biws,r=" + attrs["r"]
    auth_message = ",".join([first_bare, server_first, without_proof]).encode()
    signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    f.write(b64((without_proof + ",p=" + b64(proof)).encode()).encode() + b"\r\n")
    f.flush()
    l = line()
    if not l.startswith(b"+ "):
        return l
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    expected = "v=" + b64(hmac.new(server_key, auth_message, hashlib.sha256).digest())
    if base64.b64decode(l[2:].strip()).decode() != expected:
        raise RuntimeError("wrong server signature")
    f.write(b"\r\n")
    f.flush()
    return line()


def login_once(port, user, mechanism):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    f = s.makefile("rwb")
    try:
        f.readline()
        if mechanism == "scram-sha-256":
            f.write(b"a AUTHENTICATE SCRAM-SHA-256\r\n")
            f.flush()
            if not f.readline().startswith(b"+"):
                raise RuntimeError("SCRAM-SHA-256 not offered")
            line = scram_sha256(f, user)
            while not line.startswith(b"a "):
                line = f.readline()
                if not line:
                    raise EOFError("connection closed")
        else:
            if mechanism == "plain":
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


def measure(port, users, concurrency, seconds, mechanism):
    """Logins per second with `concurrency` clients, each as its own user."""
    count, errors, lock = [0], [], threading.Lock()
    stop = time.time() + seconds

    def worker(k):
        user = users[k % len(users)]
        n = 0
        try:
            while time.time() < stop:
                login_once(port, user, mechanism)
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
    ap.add_argument("--mechanism", choices=["login", "plain", "scram-sha-256"], default="login",
                    help="LOGIN, AUTHENTICATE PLAIN (SASL-IR), or the SCRAM-SHA-256 exchange")
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
        variants = [("postern scram-sha-256", "[plugin.sasl-plain]\n[plugin.sasl-scram]\n")]
        if args.cyrus and args.mechanism != "scram-sha-256":
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
        schemes = ["SCRAM-SHA-256"] if args.mechanism == "scram-sha-256" else ["SCRAM-SHA-256", "SHA512-CRYPT"]
        for scheme in schemes:
            sub = os.path.join(work, scheme)
            os.makedirs(sub)
            os.chmod(sub, 0o755)
            passwd = os.path.join(sub, "passwd")
            open(passwd, "w").write("".join("%s:%s\n" % (u, doveadm_pw(scheme)) for u in users))
            os.chmod(passwd, 0o644)
            passdb = "passdb {\n  driver = passwd-file\n  args = scheme=%s %s\n}" % (scheme, passwd)
            ports, d, _ = start_dovecot(sub, ["imap"], PASSWORD, passdb=passdb,
                                        extra="auth_mechanisms = plain login scram-sha-256\n")
            procs.append(d)
            servers.append(("dovecot " + scheme, ports["imap"]))

        for name, port in servers:   # every server and user works before anything is timed
            for u in users:
                login_once(port, u, args.mechanism)
        print("postern binary: %s; %s; %d users; %.0f s per cell" % (postern, args.mechanism, len(users), args.seconds))
        print("%-30s" % "logins/s" + "".join("%12s" % ("c=%d" % c) for c in levels))
        for name, port in servers:
            print("%-30s" % name + "".join("%12.1f" % measure(port, users, c, args.seconds, args.mechanism) for c in levels), flush=True)
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
