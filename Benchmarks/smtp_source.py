#!/usr/bin/env python3
"""SMTP reception beside Postfix on the same machine, in one run, with ratios.

Starts a throw-away Postern (smtp, queue, store-sqlite) and a throw-away Postfix (smtpd, cleanup,
qmgr, virtual delivery into Maildirs) on 127.0.0.1 under one temporary directory, both accepting
mail for example.org, and drives each with Postfix's own load generator, `smtp-source`:
messages of 1 KiB and 100 KiB at concurrency 1, 10 and 50. Reports messages per second until the
last 250 (both servers have then fsynced the message into their queue), the time until every
message is delivered into the mailboxes, and the peak resident memory of each server's
processes. Run as root (Postfix's master switches users itself). Everything stops at the end.

    sudo python3 Benchmarks/smtp_source.py [--postern .build/release/postern] [--messages 2000]
"""
import argparse, os, shutil, subprocess, tempfile, threading, time

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


def main():
    ap = argparse.ArgumentParser()
    default = ".build-release/release/postern" if os.path.exists(".build-release/release/postern") else ".build/debug/postern"
    ap.add_argument("--postern", default=default)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--concurrency", default="1,10,50")
    ap.add_argument("--sizes", default="1,100", help="message sizes in KiB")
    args = ap.parse_args()
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
