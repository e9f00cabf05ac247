#!/usr/bin/env python3
"""Logins per second (passwords, or Kerberos tickets): Postern's auth beside Dovecot's, same machine, one run.

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

`--mechanism gssapi` measures Kerberos logins (`a AUTHENTICATE GSSAPI`, RFC 4752) instead. The
script makes a throw-away MIT realm POSTERN.TEST in its temporary directory (as the Swift fixture
Tests/KerberosTests/KerberosRealm.swift does: its own krb5.conf and kdc.conf, `kdb5_util`,
`kadmin.local`, `krb5kdc -n` on a free port of 127.0.0.1), a principal userN@POSTERN.TEST per
user and the service principal imap/localhost in a keytab, and `kinit`s every user into a
credential cache of its own, so that a login needs no password. What is measured is then the
acceptor's work: decrypting the service ticket with the keytab, and the security-layer
round-trip:

  postern  gssapi (authproxyd)  sasl-gssapi in the worker relaying every step to authproxyd,
                                which holds the keytab (Plugins/AuthKerberos), as
                                Tests/KerberosTests/KerberosLoginTests.swift configures it;
                                userN@POSTERN.TEST maps to the account userN@example.org
  dovecot  GSSAPI               Dovecot's mech_gssapi (package dovecot-gssapi, installed with
                                apt-get if missing; without it that row is skipped)

The GSSAPI client is Cyrus `imtest -m GSSAPI`, one process per login for both servers (the
machine has no Python GSSAPI module): its start-up (libsasl2, its plugins, libkrb5, reading the
credential cache, which already holds the imap/localhost ticket after the first login) is in
every login, so the GSSAPI figures are lower than the password ones for the client's sake and
only the ratio between the two servers means much. The script prints the client's CPU time per
login (the client shares the machine's cores with the servers).

Run as root (Dovecot switches to its mail user; authproxyd runs as the system user
postern-auth, created if missing); everything stops at the end (`--keep` keeps the temporary
directory: configs, Postern's, Dovecot's and the KDC's logs).

    swift build -c release --scratch-path .build-release
    sudo python3 Benchmarks/auth_logins.py --postern .build-release/release/postern [--users 50]
        [--concurrency 1,4,16] [--seconds 5] [--mechanism login|plain|scram-sha-256|gssapi] [--cyrus]
"""
import argparse, base64, functools, hashlib, hmac, os, pwd, shutil, socket, subprocess, sys, tempfile, threading, time

from benchlib import free_port, start_dovecot, wait_port

PASSWORD = "bench-Password-1"
REALM = "POSTERN.TEST"
IMTEST = "/usr/lib/cyrus/bin/imtest"
PROXY_USER = "postern-auth"          # authproxyd's user, as in KerberosLoginTests
DOVECOT_GSSAPI = "/usr/lib/dovecot/modules/auth/libmech_gssapi.so"


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


class KerberosRealm:
    """A throw-away MIT Kerberos realm under `work`/krb5, made as Tests/KerberosTests/KerberosRealm.swift
    makes it: its own krb5.conf and kdc.conf (reached through KRB5_CONFIG and KRB5_KDC_PROFILE, so
    /etc/krb5.conf is never read), a database from `kdb5_util create -s`, principals from
    `kadmin.local`, the imap/localhost key in a keytab, and `krb5kdc -n` on a free port of
    127.0.0.1 (UDP and TCP; `udp_preference_limit = 1` makes the clients use TCP)."""

    def __init__(self, work, names):
        self.dir = os.path.join(work, "krb5")
        os.makedirs(self.dir)
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.keytab = os.path.join(self.dir, "service.keytab")
        self.env = dict(os.environ, KRB5_CONFIG=self._write("krb5.conf", """[libdefaults]
  default_realm = {realm}
  dns_lookup_kdc = false
  dns_lookup_realm = false
  dns_canonicalize_hostname = false
  rdns = false
  udp_preference_limit = 1
[realms]
  {realm} = {{
    kdc = 127.0.0.1:{port}
  }}
[domain_realm]
  localhost = {realm}
""".format(realm=REALM, port=self.port)), KRB5_KDC_PROFILE=self._write("kdc.conf", """[kdcdefaults]
  kdc_ports = {port}
  kdc_tcp_ports = {port}
[realms]
  {realm} = {{
    database_name = {d}/principal
    key_stash_file = {d}/stash
    acl_file = {d}/kadm5.acl
    kdc_ports = {port}
    kdc_tcp_ports = {port}
    max_life = 10h
  }}
[logging]
  kdc = FILE:{d}/kdc.log
""".format(realm=REALM, port=self.port, d=self.dir)))
        self._write("kadm5.acl", "")
        self._run("/usr/sbin/kdb5_util", "create", "-s", "-r", REALM, "-P", "master-" + os.urandom(8).hex())
        for name in names:
            self.kadmin("addprinc -pw %s %s" % (PASSWORD, name))
        self.kadmin("addprinc -randkey imap/localhost")
        self.kadmin("ktadd -k %s imap/localhost" % self.keytab)
        self.kdc = subprocess.Popen(["/usr/sbin/krb5kdc", "-n", "-r", REALM, "-P", os.path.join(self.dir, "kdc.pid")],
                                    env=self.env, cwd=self.dir, stdout=subprocess.DEVNULL,
                                    stderr=open(os.path.join(self.dir, "kdc.stderr"), "w"))
        try:
            wait_port(self.port, timeout=20)
        except RuntimeError:
            self.kdc.kill()
            raise

    def _write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def _run(self, *argv):
        r = subprocess.run(argv, env=self.env, cwd=self.dir, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("%s failed (%d): %s%s" % (" ".join(argv), r.returncode, r.stdout, r.stderr))

    def kadmin(self, query):
        self._run("/usr/sbin/kadmin.local", "-r", REALM, "-q", query)

    def kinit(self, name):
        """`kinit name` (password on standard input) into a credential cache file of its own;
        returns the environment a client of that user runs with."""
        env = dict(self.env, KRB5CCNAME="FILE:" + os.path.join(self.dir, "cc-" + name))
        r = subprocess.run(["/usr/bin/kinit", name], input=PASSWORD + "\n", env=env, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("kinit %s failed (%d): %s%s" % (name, r.returncode, r.stdout, r.stderr))
        return env


def gssapi_login_once(port, env):
    """One GSSAPI login with Cyrus imtest, a process per login: it connects, authenticates with the
    ticket in `env`'s KRB5CCNAME (asking the KDC for the imap/localhost ticket only the first time:
    it is cached there), finds its standard input empty, sends its own LOGOUT and ends. No
    authorization identity is sent (no `-u`), so each server logs the principal in as whom it maps
    it to."""
    argv = [IMTEST, "-m", "GSSAPI", "-p", str(port), "localhost"]
    r = subprocess.run(argv, input=b"", env=env, capture_output=True, timeout=30)
    if b"Authenticated." not in r.stdout or b"OK Logout completed" not in r.stdout:
        raise RuntimeError("GSSAPI login failed: %r" % (r.stdout + r.stderr)[-600:])


def measure(login, users, concurrency, seconds):
    """Logins in `seconds` with `concurrency` clients, each as its own user; `login(user)` logs in
    once. Returns (logins, elapsed seconds)."""
    count, errors, lock = [0], [], threading.Lock()
    stop = time.time() + seconds

    def worker(k):
        user = users[k % len(users)]
        n = 0
        try:
            while time.time() < stop:
                login(user)
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
    return count[0], time.time() - started


def doveadm_pw(scheme):
    return subprocess.run(["doveadm", "pw", "-s", scheme, "-p", PASSWORD], check=True, capture_output=True, text=True).stdout.strip()


def start_postern(postern, work, i, users, sasl, plugins="", authproxyd="", env=None):
    """A Postern under `work`/postern`i` with `users` imported (password PASSWORD, so SCRAM-SHA-256
    keys), one IMAP listener, `sasl` (its [plugin.sasl-*] sections), `plugins` (a [plugins]
    section) and `authproxyd` (an [authproxyd] section) in its config. Its log is postern`i`.log.
    Returns (the Popen, the port)."""
    port = free_port()
    conf = os.path.join(work, "postern%d.toml" % i)
    open(conf, "w").write("""data_dir = "{w}/postern{i}"
first_account = false
workers = 2
[log]
level = "warning"
{plugins}[plugin.store-sqlite]
password_iterations = 4096
{sasl}[plugin.imap]
hostname = "localhost"
login_failure_delay = "0s"
max_login_failures_per_ip = 0
[[listener]]
name = "imap"
address = "127.0.0.1"
port = {port}
protocol = "imap"
[listener.options]
allow_plaintext_on_loopback = true
{authproxyd}""".format(w=work, i=i, plugins=plugins, sasl=sasl, port=port, authproxyd=authproxyd))
    subprocess.run([postern, "admin", "domain", "add", "example.org", "-c", conf], check=True, capture_output=True, env=env)
    csv = os.path.join(work, "users%d.csv" % i)
    open(csv, "w").write("email,password\n" + "".join("%s,%s\n" % (u, PASSWORD) for u in users))
    subprocess.run([postern, "admin", "user", "import", csv, "-c", conf], check=True, capture_output=True, env=env)
    log = open(os.path.join(work, "postern%d.log" % i), "w")
    p = subprocess.Popen([postern, "serve", "-c", conf], cwd=work, env=env, stdout=log, stderr=log)
    wait_port(port)
    return p, port


def ensure_system_user(name):
    """authproxyd refuses to run as root: it needs a user of its own (KerberosLoginTests makes it the same way)."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["/usr/sbin/useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True)


def wait_unix_socket(path, timeout=30):
    """authproxyd starts after the master listens: wait until its socket accepts."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(path)
            return
        except OSError:
            time.sleep(0.1)
        finally:
            s.close()
    raise RuntimeError("authproxyd does not answer on %s" % path)


def start_postern_gssapi(postern, work, i, users, realm):
    """Postern with GSSAPI through authproxyd, as KerberosLoginTests configures it: the worker's
    sasl-gssapi relays to authproxyd, whose auth-kerberos backend holds the keytab (a copy owned by
    authproxyd's user, mode 0600, which the plugin insists on) and maps userN@POSTERN.TEST to the
    account userN@example.org. The master and authproxyd read the realm's krb5.conf through
    KRB5_CONFIG."""
    ensure_system_user(PROXY_USER)
    keytab = os.path.join(work, "postern-service.keytab")
    shutil.copy(realm.keytab, keytab)
    pw = pwd.getpwnam(PROXY_USER)
    os.chown(keytab, pw.pw_uid, pw.pw_gid)
    os.chmod(keytab, 0o600)
    sock = os.path.join(work, "postern%d" % i, "authproxyd", "authproxyd.sock")
    p, port = start_postern(
        postern, work, i, users,
        sasl='[plugin.sasl-gssapi]\nsocket = "%s"\n' % sock,
        plugins='[plugins]\nload = ["sasl-gssapi", "sasl-plain"]\n',
        authproxyd='[authproxyd]\nuser = "%s"\n[authproxyd.backend.auth-kerberos]\nkeytab = "%s"\n'
                   'realms = { "%s" = "example.org" }\n' % (PROXY_USER, keytab, REALM),
        env=dict(os.environ, KRB5_CONFIG=realm.env["KRB5_CONFIG"]))
    wait_unix_socket(sock)
    return p, port


def doveadm_pw(scheme):
    return subprocess.run(["doveadm", "pw", "-s", scheme, "-p", PASSWORD], check=True, capture_output=True, text=True).stdout.strip()


def start_dovecot_passwd(work, users, scheme):
    """Dovecot with the users in a passwd-file of `scheme` hashes. Returns (the Popen, the port)."""
    sub = os.path.join(work, scheme)
    os.makedirs(sub)
    os.chmod(sub, 0o755)
    passwd = os.path.join(sub, "passwd")
    open(passwd, "w").write("".join("%s:%s\n" % (u, doveadm_pw(scheme)) for u in users))
    os.chmod(passwd, 0o644)
    passdb = "passdb {\n  driver = passwd-file\n  args = scheme=%s %s\n}" % (scheme, passwd)
    ports, d, _ = start_dovecot(sub, ["imap"], PASSWORD, passdb=passdb,
                                extra="auth_mechanisms = plain login scram-sha-256\n")
    return d, ports["imap"]


def have_dovecot_gssapi():
    """Dovecot's GSSAPI mechanism is a package of its own; install it if missing. False (and why)
    if that fails, so that only the Dovecot GSSAPI row is skipped."""
    if os.path.exists(DOVECOT_GSSAPI):
        return True
    r = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "dovecot-gssapi"],
                       capture_output=True, text=True)
    if r.returncode != 0 or not os.path.exists(DOVECOT_GSSAPI):
        print("dovecot GSSAPI skipped: `apt-get install dovecot-gssapi` failed (%d): %s"
              % (r.returncode, (r.stdout + r.stderr).strip()[-400:]), file=sys.stderr)
        return False
    return True


def start_dovecot_gssapi(work, realm):
    """Dovecot with GSSAPI: its auth process (user dovecot) reads a copy of the keytab and the
    realm's krb5.conf (Dovecot clears its children's environment, hence import_environment).
    The principal userN@POSTERN.TEST logs in under that name (the default auth_username_format
    %Lu lower-cases it); GSSAPI still asks the passdb, where a static one with nopassword=y
    accepts everyone (the ticket is the proof), and the static userdb of start_dovecot gives the
    mail user. Returns (the Popen, the port)."""
    sub = os.path.join(work, "GSSAPI")
    os.makedirs(sub)
    os.chmod(sub, 0o755)
    keytab = os.path.join(sub, "dovecot", "dovecot.keytab")
    internal = pwd.getpwnam(subprocess.run(["doveconf", "-h", "default_internal_user"], capture_output=True,
                                           text=True, check=True).stdout.strip())

    def install_keytab(root):
        shutil.copy(realm.keytab, keytab)
        os.chown(keytab, internal.pw_uid, internal.pw_gid)
        os.chmod(keytab, 0o600)

    extra = ("auth_mechanisms = plain gssapi\nauth_gssapi_hostname = localhost\nauth_krb5_keytab = %s\n"
             "import_environment = TZ KRB5_CONFIG=%s\n" % (keytab, realm.env["KRB5_CONFIG"]))
    ports, d, _ = start_dovecot(sub, ["imap"], PASSWORD, extra=extra, before_start=install_keytab,
                                passdb="passdb {\n  driver = static\n  args = nopassword=y\n}")
    return d, ports["imap"]


def main():
    ap = argparse.ArgumentParser()
    default = ".build/release/postern" if os.path.exists(".build/release/postern") else ".build/debug/postern"
    ap.add_argument("--postern", default=default)
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--concurrency", default="1,4,16")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--mechanism", choices=["login", "plain", "scram-sha-256", "gssapi"], default="login",
                    help="LOGIN, AUTHENTICATE PLAIN (SASL-IR), the SCRAM-SHA-256 exchange, or GSSAPI (Kerberos, imtest)")
    ap.add_argument("--cyrus", action="store_true", help="also the sasl-cyrus bridge over a sasldb2 (login/plain)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (configs, logs) at the end")
    args = ap.parse_args()
    postern = os.path.abspath(args.postern)
    levels = [int(x) for x in args.concurrency.split(",")]
    users = ["user%d@example.org" % k for k in range(args.users)]
    work = tempfile.mkdtemp(prefix="postern-auth-bench-")
    os.chmod(work, 0o755)
    procs, realm = [], None
    try:
        servers = []   # (row name, login(user))
        if args.mechanism == "gssapi":
            # Each user's principal is the local part of its account; its ticket is in its own cache.
            realm = KerberosRealm(work, [u.split("@")[0] for u in users])
            envs = {u: realm.kinit(u.split("@")[0]) for u in users}
            p, port = start_postern_gssapi(postern, work, 0, users, realm)
            procs.append(p)
            # The same client for both: Postern logs userN@POSTERN.TEST in as userN@example.org (its
            # realm map), Dovecot as userN@postern.test.
            servers.append(("postern gssapi (authproxyd)", lambda u, port=port: gssapi_login_once(port, envs[u])))
            if have_dovecot_gssapi():
                d, port = start_dovecot_gssapi(work, realm)
                procs.append(d)
                servers.append(("dovecot GSSAPI", lambda u, port=port: gssapi_login_once(port, envs[u])))
        else:
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
                p, port = start_postern(postern, work, i, users, sasl)
                procs.append(p)
                servers.append((name, functools.partial(login_once, port, mechanism=args.mechanism)))
            # Dovecot: the same users in a passwd-file, once per scheme.
            for scheme in ["SCRAM-SHA-256"] if args.mechanism == "scram-sha-256" else ["SCRAM-SHA-256", "SHA512-CRYPT"]:
                d, port = start_dovecot_passwd(work, users, scheme)
                procs.append(d)
                servers.append(("dovecot " + scheme, functools.partial(login_once, port, mechanism=args.mechanism)))

        for name, login in servers:   # every server and user works before anything is timed
            for u in users:
                login(u)
        print("postern binary: %s; %s; %d users; %.0f s per cell" % (postern, args.mechanism, len(users), args.seconds))
        if args.mechanism == "gssapi":
            print("client: Cyrus imtest -m GSSAPI, one process per login (for both servers)")
        print("%-30s" % "logins/s" + "".join("%12s" % ("c=%d" % c) for c in levels))
        notes = []
        for name, login in servers:
            cells, logins = "", 0
            before = os.times()   # children's CPU: the imtest processes, for GSSAPI
            for c in levels:
                n, elapsed = measure(login, users, c, args.seconds)
                cells += "%12.1f" % (n / elapsed)
                logins += n
            after = os.times()
            print("%-30s" % name + cells, flush=True)
            client = after.children_user + after.children_system - before.children_user - before.children_system
            if client > 0 and logins:
                notes.append("%s: client CPU %.1f ms per login" % (name, 1000 * client / logins))
        for note in notes:
            print(note)
    finally:
        if realm:
            procs.append(realm.kdc)
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        if args.keep:
            print("kept %s" % work, file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
