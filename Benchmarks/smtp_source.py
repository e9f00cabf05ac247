#!/usr/bin/env python3
"""SMTP reception beside Postfix on the same machine, in one run, with ratios.

Starts a throw-away Postern (smtp, queue, store-sqlite) and a throw-away Postfix (smtpd, cleanup,
qmgr, virtual delivery into Maildirs) on 127.0.0.1 under one temporary directory, both accepting
mail for example.org, and drives each with Postfix's own load generator, `smtp-source`:
messages of 1 KiB and 100 KiB at concurrency 1, 10 and 50. Reports messages per second until the
last 250 (both servers have then fsynced the message into their queue), the time until every
message is delivered into the mailboxes, and the peak resident memory of each server's
processes. Run as root (Postfix's master switches users itself). Everything stops at the end.

    sudo python3 Benchmarks/smtp_source.py [--postern .build/release/postern] [--messages 2000] [--hold 10000]

With --hold N it then opens N connections to each server, each greeted and past EHLO, holds them
all, and checks that one more client still gets its greeting and has a message accepted: how many
of the N were greeted, the time the extra client waited, and the resident memory per held
connection.
"""
import argparse, os, resource, selectors, shutil, smtplib, socket, subprocess, tempfile, threading, time

from benchlib import cpu_seconds, descendants, free_port, fsync_rate, rss, start_postfix, wait_port


class PeakMemory(threading.Thread):
    def __init__(self, pids):
        super().__init__(daemon=True)
        self.pids, self.peak, self.running = pids, 0, True

    def run(self):
        while self.running:
            self.peak = max(self.peak, rss(self.pids()))
            time.sleep(0.1)


def count_files(path):
    return sum(len(files) for _, _, files in os.walk(path))


def hold_connections(port, count, pids, wait=30):
    """Opens `count` SMTP connections, answers each greeting with EHLO, and holds them all; then
    one more client sends a message. Returns (connections greeted and past EHLO within `wait`
    seconds, the extra client's seconds to its 250 or None, bytes of resident memory per held
    connection). Non-blocking, so a server that leaves connections waiting costs no more time."""
    before = rss(pids())
    selector = selectors.DefaultSelector()
    held = []
    for _ in range(count):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        except OSError:
            s.close()
            continue
        held.append(s)
        selector.register(s, selectors.EVENT_READ, [b"", "greeting"])
    greeted = 0
    deadline = time.time() + wait
    while greeted < len(held) and time.time() < deadline:
        for key, _ in selector.select(timeout=1):
            state = key.data
            try:
                data = key.fileobj.recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                selector.unregister(key.fileobj)
                continue
            state[0] += data
            last = state[0].rstrip(b"\r\n").split(b"\r\n")[-1]
            if not state[0].endswith(b"\r\n") or last[3:4] != b" ":
                continue
            if state[1] == "greeting" and last.startswith(b"220"):
                state[0], state[1] = b"", "ehlo"
                key.fileobj.sendall(b"EHLO holder.example\r\n")
            elif state[1] == "ehlo" and last.startswith(b"250"):
                greeted += 1
                selector.unregister(key.fileobj)
            else:
                selector.unregister(key.fileobj)
    time.sleep(1)
    per_connection = (rss(pids()) - before) / max(1, len(held))
    start = time.time()
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
            c.sendmail("load@remote.example", ["bench@example.org"], b"Subject: one more\r\n\r\nwhile the others are held\r\n")
        extra = time.time() - start
    except (OSError, smtplib.SMTPException):
        extra = None
    for s in held:
        try:
            s.close()
        except OSError:
            pass
    return greeted, extra, per_connection


def main():
    ap = argparse.ArgumentParser()
    default = ".build-release/release/postern" if os.path.exists(".build-release/release/postern") else ".build/debug/postern"
    ap.add_argument("--postern", default=default)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--concurrency", default="1,10,50")
    ap.add_argument("--sizes", default="1,100", help="message sizes in KiB")
    ap.add_argument("--hold", type=int, default=0, help="connections to hold open at once after the rates (10,000 is issue 18's goal)")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    postern = os.path.abspath(args.postern)
    smtp_source = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
    work = tempfile.mkdtemp(prefix="postern-smtp-bench-")
    os.chmod(work, 0o755)
    procs = []
    postfix_dir = os.path.join(work, "postfix")
    try:
        # Postern: the MX listener, the queue and the store.
        pport = free_port()
        pconf = os.path.join(work, "postern.toml")
        open(pconf, "w").write("""data_dir = "{w}/postern"
workers = 2
[log]
level = "warning"
[plugin.store-sqlite]
password_iterations = 4096
[plugin.queue]
[plugin.smtp]
hostname = "mx.example.org"
[[listener]]
name = "mx"
address = "127.0.0.1"
port = {p}
protocol = "smtp"
max_connections = 20000
backlog = 4096
[listener.options]
max_message_size = "10M"
max_recipients = 1000
""".format(w=work, p=pport))
        subprocess.run([postern, "admin", "domain", "add", "example.org", "-c", pconf], check=True, capture_output=True)
        subprocess.run([postern, "admin", "user", "add", "bench@example.org", "--password", "pw", "-c", pconf], check=True, capture_output=True)
        pserve = subprocess.Popen([postern, "serve", "-c", pconf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(pserve)
        wait_port(pport)

        # Postfix: smtpd, the queue, virtual delivery into a Maildir.
        fport = free_port()
        postfix_master = start_postfix(postfix_dir, fport)

        servers = [("postern", pport, lambda: descendants(pserve.pid), os.path.join(work, "postern", "store")),
                   ("postfix", fport, lambda: descendants(postfix_master), os.path.join(postfix_dir, "mail"))]
        print("postern binary: %s" % postern)
        print("disk: %.0f fsyncs/s (new 1 KiB file, one thread)" % fsync_rate(os.path.join(work, "fsync-probe")))
        print("%-40s %10s %10s %7s %12s %12s %9s %9s" % ("", "postern", "postfix", "ratio", "postern MiB", "postfix MiB",
                                                         "pn CPU ms", "pf CPU ms"))
        delivered = {"postern": 0, "postfix": 0}
        for size in [int(x) for x in args.sizes.split(",")]:
            for c in [int(x) for x in args.concurrency.split(",")]:
                rates, peaks, cpus = [], [], []
                for name, port, pids, _ in servers:
                    peak = PeakMemory(pids)
                    peak.start()
                    cpu = cpu_seconds(pids())
                    start = time.time()
                    r = subprocess.run([smtp_source, "-c", "-l", str(size * 1024), "-m", str(args.messages), "-s", str(c),
                                        "-f", "load@remote.example", "-t", "bench@example.org", "127.0.0.1:%d" % port],
                                       capture_output=True, text=True)
                    elapsed = time.time() - start
                    if r.returncode != 0:
                        print("  %s: smtp-source failed: %s" % (name, r.stderr.strip()[-300:]))
                    delivered[name] += args.messages
                    rates.append(args.messages / elapsed)
                    # Server CPU per message: reception, and the deliveries done meanwhile.
                    cpus.append((cpu_seconds(pids()) - cpu) * 1000 / args.messages)
                    peak.running = False
                    peak.join()
                    peaks.append(peak.peak / 2**20)
                print("%-40s %10.0f %10.0f %7.2f %12.0f %12.0f %9.2f %9.2f" % (
                    "%d KiB, concurrency %d (msg/s)" % (size, c), rates[0], rates[1], rates[0] / rates[1], peaks[0], peaks[1],
                    cpus[0], cpus[1]))
        # Until everything accepted is in the mailbox.
        deadline = time.time() + 600
        postern_done = postfix_done = None
        t0 = time.time()
        while time.time() < deadline and (postern_done is None or postfix_done is None):
            if postern_done is None:
                out = subprocess.run([postern, "queue", "list", "-c", pconf], capture_output=True, text=True).stdout
                if out.strip().endswith("0 message(s)"):
                    postern_done = time.time() - t0
            if postfix_done is None and count_files(os.path.join(postfix_dir, "mail")) >= delivered["postfix"]:
                postfix_done = time.time() - t0
            time.sleep(0.5)
        print("%-40s %10s %10s" % ("queues empty after the last run (s)", "%.1f" % postern_done if postern_done is not None else ">600",
                                   "%.1f" % postfix_done if postfix_done is not None else ">600"))
        if args.hold:
            # Postfix as configured here keeps its default process limit (100 smtpd processes):
            # connections beyond it wait in the listen queue until one frees up.
            for name, port, pids, _ in servers:
                greeted, extra, per = hold_connections(port, args.hold, pids)
                print("%s: %d of %d held connections greeted; one more client's message accepted %s; %.1f KiB resident per held connection" % (
                    name, greeted, args.hold, "after %.3f s" % extra if extra is not None else "NOT within 30 s", per / 1024), flush=True)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        subprocess.run(["/usr/sbin/postfix", "-c", postfix_dir, "stop"], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
