"""What every benchmark here needs: free ports, waiting for a listener, the resident memory of a
server's whole process tree (Postern's master and workers, Dovecot's or Postfix's processes), and
a throw-away Dovecot."""
import os, pwd, socket, subprocess, time


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
    "imap": "service imap-login {{\n{settings}  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n"
            "  inet_listener imaps {{\n    port = 0\n  }}\n}}\n",
    "pop3": "service pop3-login {{\n{settings}  inet_listener pop3 {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n"
            "  inet_listener pop3s {{\n    port = 0\n  }}\n}}\n",
    "lmtp": "service lmtp {{\n{settings}  inet_listener lmtp {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n}}\n",
}


def start_dovecot(work, protocols, password, location=None, extra="", before_start=None, passdb=None, login_settings=""):
    """Starts Debian's Dovecot (as root; it switches to uid 65534) under `work`/dovecot with
    `protocols` (imap, pop3, lmtp) on free loopback ports, every user logging in with `password`.
    `location` defaults to Maildir++ under dovecot/mail/USER; `extra` is added to the config (a
    namespace, say); `before_start(root)` runs before the server starts (to write mail); `passdb`
    replaces the static passdb block (a passwd-file with hashed passwords, say); `login_settings`
    go into the imap-login and pop3-login service blocks (`service_count = 0`, say). Returns
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
    config += extra + "".join(_DOVECOT_LISTENERS[p].format(port=ports[p], settings=login_settings if p != "lmtp" else "")
                              for p in protocols)
    path = os.path.join(work, "dovecot.conf")
    open(path, "w").write(config)
    if before_start:
        before_start(root)
    process = subprocess.Popen(["/usr/sbin/dovecot", "-F", "-c", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for port in ports.values():
        wait_port(port)
    return ports, process, root


POSTFIX_SERVICES = """pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def start_postfix(directory, port, extra_main_cf=""):
    """A throw-away Postfix under `directory` (run as root: its master switches users): smtpd on
    127.0.0.1:`port`, the queue, virtual delivery of example.org into Maildirs under
    `directory`/mail (bench@example.org). `extra_main_cf` is appended to main.cf. Returns the
    master's pid; stop it with `postfix -c DIRECTORY stop`."""
    for sub in ("queue", "data", "mail"):
        os.makedirs(os.path.join(directory, sub))
    pf, nobody = pwd.getpwnam("postfix"), pwd.getpwnam("nobody")
    os.chown(os.path.join(directory, "data"), pf.pw_uid, pf.pw_gid)
    os.chown(os.path.join(directory, "mail"), nobody.pw_uid, nobody.pw_gid)
    open(os.path.join(directory, "vmailbox"), "w").write("bench@example.org bench/\n")
    open(os.path.join(directory, "main.cf"), "w").write("""compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mx.example.org
mydestination =
mynetworks = 127.0.0.0/8
message_size_limit = 10485760
virtual_mailbox_domains = example.org
virtual_mailbox_base = {d}/mail
virtual_mailbox_maps = texthash:{d}/vmailbox
virtual_uid_maps = static:{u}
virtual_gid_maps = static:{g}
alias_maps =
alias_database =
maillog_file = {d}/maillog
maillog_file_prefixes = {d}
smtpd_recipient_limit = 1000
biff = no
""".format(d=directory, u=nobody.pw_uid, g=nobody.pw_gid) + extra_main_cf)
    open(os.path.join(directory, "master.cf"), "w").write("127.0.0.1:%d inet n - n - - smtpd\n" % port + POSTFIX_SERVICES)
    r = subprocess.run(["/usr/sbin/postfix", "-c", directory, "start"], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("postfix start: " + (r.stderr or r.stdout or open(os.path.join(directory, "maillog")).read()[-2000:]))
    wait_port(port)
    return int(open(os.path.join(directory, "queue", "pid", "master.pid")).read().split()[0])


def cpu_seconds(pids):
    """User plus system CPU time (seconds) the given processes have used so far."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / tick


def fsync_rate(directory, count=300):
    """What the disk allows: new 1 KiB files created, written and fsynced per second from one
    thread, the physical limit of one durable message at a time."""
    os.makedirs(directory, exist_ok=True)
    start = time.time()
    for i in range(count):
        path = os.path.join(directory, "f%d" % i)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.write(fd, b"x" * 1024)
        os.fsync(fd)
        os.close(fd)
    rate = count / (time.time() - start)
    for i in range(count):
        os.unlink(os.path.join(directory, "f%d" % i))
    return rate


def smtp_listeners(listeners):
    """The [[listener]] tables of loopback SMTP listeners: (name, port, extra [listener.options] lines)."""
    text = ""
    for name, port, options in listeners:
        text += """[[listener]]
name = "{n}"
address = "127.0.0.1"
port = {p}
protocol = "smtp"
[listener.options]
max_message_size = "10M"
trust_loopback = true
{o}
""".format(n=name, p=port, o=options)
    return text


def start_unbound(work, zone_lines):
    """A throw-away unbound on 127.0.0.1 at a free port, answering only from `zone_lines`
    (`local-zone:`/`local-data:` lines, as in unbound.conf); names outside them are refused,
    never asked upstream. Returns ("127.0.0.1:PORT", the Popen)."""
    root = os.path.join(work, "unbound")
    os.makedirs(root)
    port = free_port()
    config = os.path.join(root, "unbound.conf")
    open(config, "w").write("""server:
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "{d}"
  pidfile: ""
  use-syslog: no
  logfile: "{d}/unbound.log"
  verbosity: 1
  interface: 127.0.0.1
  port: {p}
  do-ip6: no
  access-control: 127.0.0.0/8 allow
  module-config: "iterator"
  local-zone: "." refuse
{z}
remote-control:
  control-enable: no
""".format(d=root, p=port, z="\n".join("  " + line for line in zone_lines)))
    process = subprocess.Popen(["/usr/sbin/unbound", "-c", config], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return "127.0.0.1:%d" % port, process


def dot_stuffed(message):
    """`message` (CRLF line ends) as DATA sends it: leading dots doubled, ending in CRLF.CRLF."""
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    body = message.replace(b"\r\n.", b"\r\n..")
    if body.startswith(b"."):
        body = b"." + body
    return body + b".\r\n"


def smtp_send(port, messages, count, concurrency, mail_from, rcpts, helo="client.bench.test"):
    """Sends `count` messages to 127.0.0.1:`port` over `concurrency` connections at once, one SMTP
    session per message (greeting, EHLO, MAIL, RCPT, DATA, QUIT), as Postfix's smtp-source does;
    unlike smtp-source it sends bytes it is given: `messages(i)` returns the i-th message (CRLF
    line ends), or `messages` is one message for all. Returns (seconds until the last reply to
    DATA, {final reply code: count}, this process's CPU seconds meanwhile)."""
    import asyncio
    fixed = dot_stuffed(messages) if isinstance(messages, bytes) else None
    codes = {}

    async def reply(reader):
        while True:
            line = await reader.readline()
            if not line:
                raise ConnectionError("connection closed")
            if line[3:4] != b"-":
                return int(line[:3])

    async def session(data):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            steps = [None, b"EHLO %s\r\n" % helo.encode(), b"MAIL FROM:<%s>\r\n" % mail_from.encode()]
            steps += [b"RCPT TO:<%s>\r\n" % r.encode() for r in rcpts] + [b"DATA\r\n"]
            for line in steps:
                if line:
                    writer.write(line)
                code = await reply(reader)
                if code >= 400:
                    return code
            writer.write(data)
            code = await reply(reader)
            writer.write(b"QUIT\r\n")
            await reply(reader)
            return code
        finally:
            writer.close()

    async def run():
        todo = iter(range(count))

        async def worker():
            for i in todo:
                try:
                    code = await session(fixed if fixed is not None else dot_stuffed(messages(i)))
                except OSError as e:
                    code = "error: %s" % e
                codes[code] = codes.get(code, 0) + 1
        await asyncio.gather(*(worker() for _ in range(concurrency)))

    cpu, start = time.process_time(), time.time()
    asyncio.run(run())
    return time.time() - start, codes, time.process_time() - cpu
