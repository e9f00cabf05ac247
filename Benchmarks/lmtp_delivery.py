#!/usr/bin/env python3
"""LMTP delivery beside Dovecot on the same machine, in one run, with ratios.

Starts a throw-away Postern (store-sqlite + lmtp) and a throw-away Dovecot (dovecot-lmtpd, Maildir)
on 127.0.0.1, both on free ports under one temporary directory, and measures:
  1. single-recipient deliveries of a 1 KiB message at each concurrency (messages per second, and
     each server's CPU milliseconds per message: its whole process tree, user and system);
  2. one 1 MiB message to many recipients in one transaction (seconds, and disk growth: Postern
     stores one copy, Dovecot one per mailbox).
Run as root (Dovecot switches to its mail user itself). Everything stops at the end.

    python3 Benchmarks/lmtp_delivery.py [--postern .build/release/postern] [--messages 2000]
"""
import argparse, os, shutil, socket, subprocess, sys, tempfile, threading, time

from benchlib import cpu_seconds, descendants, free_port, fsync_rate, start_dovecot, wait_port


def du(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


class LMTP:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.f = self.sock.makefile("rwb")
        self.reply()
        self.cmd("LHLO bench.example")

    def reply(self):
        while True:
            line = self.f.readline()
            if not line:
                raise EOFError("closed")
            if line[3:4] == b" ":
                return line.decode().strip()

    def cmd(self, line):
        self.f.write(line.encode() + b"\r\n")
        self.f.flush()
        return self.reply()

    def deliver(self, recipients, message):
        assert self.cmd("MAIL FROM:<bench@remote.example>").startswith("250")
        for r in recipients:
            assert self.cmd("RCPT TO:<%s>" % r).startswith("250"), r
        assert self.cmd("DATA").startswith("354")
        self.f.write(message + b".\r\n")
        self.f.flush()
        replies = [self.reply() for _ in recipients]
        bad = [r for r in replies if not r.startswith("250")]
        if bad:
            raise RuntimeError(bad[0])

    def close(self):
        try:
            self.cmd("QUIT")
        except Exception:
            pass
        self.sock.close()


def throughput(port, users, count, concurrency, message):
    done = [0]
    lock = threading.Lock()

    def worker(i):
        c = LMTP(port)
        n = 0
        while True:
            with lock:
                if done[0] >= count:
                    break
                done[0] += 1
                k = done[0]
            # Each message different (a Message-ID of its own), as real mail is: identical bytes
            # would let Postern's single-instance store skip the write.
            c.deliver([users[k % len(users)]], b"Message-ID: <%d.%f@bench>\r\n" % (k, start) + message)
            n += 1
        c.close()

    start = time.time()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    return count / (time.time() - start)


def main():
    ap = argparse.ArgumentParser()
    default = ".build/release/postern" if os.path.exists(".build/release/postern") else ".build/debug/postern"
    ap.add_argument("--postern", default=default)
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--concurrency", default="1,4,16")
    args = ap.parse_args()
    postern = os.path.abspath(args.postern)
    work = tempfile.mkdtemp(prefix="postern-bench-")
    os.chmod(work, 0o755)
    procs = []
    try:
        users = ["u%d@example.org" % i for i in range(args.users)]
        # Postern
        pport = free_port()
        pconf = os.path.join(work, "postern.toml")
        open(pconf, "w").write(
            'data_dir = "%s/postern"\nworkers = 2\n[log]\nlevel = "warning"\n[plugin.store-sqlite]\n'
            '[[listener]]\nname = "lmtp"\naddress = "127.0.0.1"\nport = %d\nprotocol = "lmtp"\n' % (work, pport))
        subprocess.run([postern, "admin", "domain", "add", "example.org", "-c", pconf], check=True, capture_output=True)
        csv = os.path.join(work, "users.csv")
        open(csv, "w").write("email,password\n" + "".join("%s,pw\n" % u for u in users))
        subprocess.run([postern, "admin", "user", "import", csv, "-c", pconf], check=True, capture_output=True)
        pserve = subprocess.Popen([postern, "serve", "-c", pconf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(pserve)
        wait_port(pport)
        # Dovecot
        ports, dserve, root = start_dovecot(work, ["lmtp"], "x")
        procs.append(dserve)
        dport = ports["lmtp"]

        small = (b"From: bench@remote.example\r\nSubject: bench\r\n\r\n" + b"x" * 1000 + b"\r\n")
        big = (b"From: bench@remote.example\r\nSubject: big\r\n\r\n" + (b"y" * 998 + b"\r\n") * 1048)
        print("postern binary: %s" % postern)
        print("disk: %.0f fsyncs/s (new 1 KiB file, one thread)" % fsync_rate(os.path.join(work, "fsync-probe")))
        print("%-44s %12s %12s %8s" % ("", "postern", "dovecot", "ratio"))

        def measured(port, pids, c):
            """Messages per second, and the server's CPU milliseconds per message (its whole
            process tree, user and system)."""
            cpu = cpu_seconds(pids())
            rate = throughput(port, users, args.messages, c, small)
            return rate, (cpu_seconds(pids()) - cpu) * 1000 / args.messages
        for c in [int(x) for x in args.concurrency.split(",")]:
            p, pc = measured(pport, lambda: descendants(pserve.pid), c)
            d, dc = measured(dport, lambda: descendants(dserve.pid), c)
            print("%-44s %12.0f %12.0f %8.2f" % ("1 KiB, 1 rcpt, concurrency %d (msg/s)" % c, p, d, p / d))
            print("%-44s %12.2f %12.2f %8.2f" % ("  server CPU ms per message", pc, dc, dc / pc if pc else float("nan")), flush=True)
        results = {}
        for name, port, path in (("postern", pport, os.path.join(work, "postern", "store")),
                                 ("dovecot", dport, os.path.join(root, "mail"))):
            before = du(path)
            c = LMTP(port)
            start = time.time()
            c.deliver(users, big)
            results[name] = (time.time() - start, du(path) - before)
            c.close()
        (pt, pb), (dt, db) = results["postern"], results["dovecot"]
        print("%-44s %12.2f %12.2f %8.2f" % ("1 MiB to %d rcpts in one transaction (s)" % len(users), pt, dt, dt / pt))
        print("%-44s %12.1f %12.1f %8.1f" % ("  disk growth (MiB)", pb / 2**20, db / 2**20, db / max(pb, 1)))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        subprocess.run(["/usr/bin/doveadm", "-c", os.path.join(work, "dovecot.conf"), "stop"], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
