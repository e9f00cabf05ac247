"""What every benchmark here needs: free ports, waiting for a listener, the resident memory of a
server's whole process tree (Postern's master and workers, Dovecot's or Postfix's processes), and
a throw-away Dovecot."""
import os, socket, subprocess, time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("nothing listens on %d" % port)


def descendants(root):
    """`root` and every process below it."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(open("/proc/%s/stat" % d).read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    out, frontier = [root], [root]
    while frontier:
        frontier = [c for p in frontier for c in children.get(p, [])]
        out += frontier
    return out


def rss(pids):
    """Resident memory (bytes) of the given processes together."""
    total = 0
    for pid in pids:
        try:
            for line in open("/proc/%d/status" % pid):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


# One listener per protocol; the TLS twins are switched off.
_DOVECOT_LISTENERS = {
    "imap": "service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n"
            "  inet_listener imaps {{\n    port = 0\n  }}\n}}\n",
    "pop3": "service pop3-login {{\n  inet_listener pop3 {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n"
            "  inet_listener pop3s {{\n    port = 0\n  }}\n}}\n",
    "lmtp": "service lmtp {{\n  inet_listener lmtp {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n}}\n",
}


def start_dovecot(work, protocols, password, location=None, extra="", before_start=None, passdb=None):
    """Starts Debian's Dovecot (as root; it switches to uid 65534) under `work`/dovecot with
    `protocols` (imap, pop3, lmtp) on free loopback ports, every user logging in with `password`.
    `location` defaults to Maildir++ under dovecot/mail/USER; `extra` is added to the config (a
    namespace, say); `before_start(root)` runs before the server starts (to write mail); `passdb`
    replaces the static passdb block (a passwd-file with hashed passwords, say). Returns
    ({protocol: port}, the Popen, the root folder)."""
    root = os.path.join(work, "dovecot")
    for d in ("run", "state", "mail"):
        os.makedirs(os.path.join(root, d))
    os.chown(os.path.join(root, "mail"), 65534, 65534)
    ports = {p: free_port() for p in protocols}
    config = """protocols = {protocols}
listen = 127.0.0.1
base_dir = {r}/run
state_dir = {r}/state
log_path = {r}/dovecot.log
ssl = no
disable_plaintext_auth = no
mail_location = {location}
first_valid_uid = 1
default_process_limit = 2000
default_client_limit = 4000
mail_max_userip_connections = 100000
{passdb}
userdb {{
  driver = static
  args = uid=65534 gid=65534 home={r}/mail/%u
}}
""".format(protocols=" ".join(protocols), r=root,
           passdb=passdb or "passdb {\n  driver = static\n  args = password=%s\n}" % password,
           location=location or "maildir:%s/mail/%%u:LAYOUT=maildir++" % root)
    config += extra + "".join(_DOVECOT_LISTENERS[p].format(port=ports[p]) for p in protocols)
    path = os.path.join(work, "dovecot.conf")
    open(path, "w").write(config)
    if before_start:
        before_start(root)
    process = subprocess.Popen(["/usr/sbin/dovecot", "-F", "-c", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for port in ports.values():
        wait_port(port)
    return ports, process, root
