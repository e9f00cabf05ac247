#!/usr/bin/env python3
"""What sender authentication costs (issue 20), measured in one run on one machine.

1. Ingest with verification on vs off. One `postern serve` with two SMTP listeners on loopback,
   `verified` (filters = ["sender-auth"], trusted_networks = [] so loopback mail is verified)
   and `plain` (no filters), the `dns` plugin pointed at a throw-away unbound that publishes, for
   bench.test, SPF `v=spf1 ip4:127.0.0.1 -all`, an RSA-2048 DKIM key and `_dmarc` p=reject.
   The messages (1 KiB and 100 KiB, From and MAIL FROM in bench.test) are DKIM-signed once with
   dkimpy (relaxed/relaxed, rsa-sha256), so every check passes: SPF, DKIM, DMARC, accepted. They
   go to a remote recipient and no smtp-client is loaded, so the queue defers each message once
   (451 4.3.5, backoff 1 h) and delivers nothing: only reception is measured. Reported: messages
   per second until the last 250, the ratio verified/plain, and the server's CPU milliseconds per
   message (master and workers, user and system).
2. DKIM signing on the way out, through the real path: a second `postern serve` (smtp-client,
   `relayhost` = a Postfix `smtp-sink` on loopback, `[[plugin.sender-auth.dkim]]` keys for
   rsa.bench.test (RSA-2048) and ed.bench.test (Ed25519), none for plain.bench.test). For each
   cell the sink is stopped (SIGSTOP: connections wait in its backlog), N messages From one of
   those domains are received, then the sink continues and the time until the sink holds all N
   is measured: queue, SMTP transport with the signer, sink. One delivered message per cell is
   checked with dkimpy. Reported: delivered messages per second, the ratio signed/unsigned and
   the server's CPU milliseconds per message.

Run as root (smtp-sink drops to nobody), with /usr/bin/python3 (dkimpy is Debian's python3-dkim):

    sudo /usr/bin/python3 Benchmarks/sender_auth.py [--postern .build/release/postern] [--messages 500]
        [--concurrency 1,10,50] [--sizes 1,100] [--skip-ingest | --skip-signing]
"""
import argparse, base64, os, shutil, signal, subprocess, sys, tempfile, time

import dkim

from benchlib import cpu_seconds, descendants, free_port, smtp_listeners, smtp_send, start_unbound, wait_port

DOMAIN = "bench.test"
RCPT = "rcpt@sink.test"


def message(from_domain, size_kib, subject="sender-auth benchmark"):
    """A plain-text message of about `size_kib` KiB, CRLF line ends."""
    head = ("Date: Mon, 7 Dec 2026 10:00:00 +0000\r\nMessage-ID: <bench-%d-%s@%s>\r\nFrom: Bench <bench@%s>\r\n"
            "To: <%s>\r\nSubject: %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
            % (size_kib, from_domain, from_domain, from_domain, RCPT, subject)).encode()
    line = b"The quick brown fox jumps over the lazy dog; sender authentication benchmark line.\r\n"
    body = line * max(1, (size_kib * 1024 - len(head)) // len(line))
    return head + body


def keygen(postern, conf, domain, selector, algorithm, out):
    """`postern admin dkim keygen`: the key's path and its TXT record's strings."""
    r = subprocess.run([postern, "admin", "dkim", "keygen", domain, selector, "--algorithm", algorithm, "--out", out, "-c", conf],
                       check=True, capture_output=True, text=True)
    # SELECTOR._domainkey.DOMAIN. IN TXT "..." "..."
    record = r.stdout.strip().splitlines()[-1]
    strings = record.split(" IN TXT ", 1)[1].strip()
    return os.path.join(out, "%s.%s.key" % (domain, selector)), strings


def zone_lines(spf_domains, dmarc_domains, keys):
    """unbound local-data: a static zone per domain, SPF for 127.0.0.1, DMARC p=reject, DKIM keys
    ({name: 'quoted strings'})."""
    lines = []
    for d in sorted(set(spf_domains) | set(dmarc_domains) | {"sink.test", "client.bench.test"}):
        lines.append('local-zone: "%s." static' % d)
        lines.append('local-data: "%s. 300 IN SOA ns.%s. hostmaster.%s. 1 3600 600 86400 60"' % (d, d, d))
    for d in spf_domains:
        lines.append("local-data: '%s. 300 IN TXT \"v=spf1 ip4:127.0.0.1 -all\"'" % d)
    for d in dmarc_domains:
        lines.append("local-data: '_dmarc.%s. 300 IN TXT \"v=DMARC1; p=reject\"'" % d)
    for name, strings in keys.items():
        lines.append("local-data: '%s. 300 IN TXT %s'" % (name, strings))
    return lines


def postern_config(data_dir, dns, listeners, extra):
    text = """data_dir = "{d}"
workers = 2
[log]
level = "warning"
[plugin.store-sqlite]
password_iterations = 4096
[plugin.smtp]
hostname = "mx.bench.example"
[plugin.dns]
nameservers = ["{dns}"]
""".format(d=data_dir, dns=dns) + extra
    return text + smtp_listeners(listeners)


def start_postern(postern, work, name, config):
    conf = os.path.join(work, name + ".toml")
    open(conf, "w").write(config)
    log = open(os.path.join(work, name + ".log"), "w")
    return conf, subprocess.Popen([postern, "serve", "-c", conf], stdout=log, stderr=subprocess.STDOUT)


def stop(process):
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def queued_with(postern, conf, needle):
    """The first queued message containing `needle`, as text, or None."""
    import json
    out = subprocess.run([postern, "queue", "list", "--json", "-c", conf], capture_output=True, text=True).stdout
    for entry in json.loads(out or "[]"):
        text = subprocess.run([postern, "queue", "show", entry["id"], "-c", conf], capture_output=True).stdout.decode(errors="replace")
        if needle in text:
            return text
    return None


def ingest(args, postern, work, dns, rsa_key):
    verified, plain = free_port(), free_port()
    extra = """[plugin.queue]
min_backoff = "1h"
max_backoff = "1h"
scan_interval = "1h"
[plugin.sender-auth]
trusted_networks = []
"""
    conf, server = start_postern(postern, work, "ingest", postern_config(
        os.path.join(work, "ingest"), dns, [("verified", verified, 'filters = ["sender-auth"]'), ("plain", plain, "filters = []")], extra))
    try:
        wait_port(verified)
        wait_port(plain)
        pem = open(rsa_key, "rb").read()
        signed = {}
        for size in args.sizes:
            m = message(DOMAIN, size)
            signed[size] = dkim.sign(m, b"s1", DOMAIN.encode(), pem, canonicalize=(b"relaxed", b"relaxed"),
                                     include_headers=[b"from", b"to", b"subject", b"date", b"message-id"]) + m
        # Warm up both listeners (DNS and key caches, the workers), and check what the filter wrote.
        for port in (verified, plain):
            smtp_send(port, signed[args.sizes[0]], 20, 2, "bounce@" + DOMAIN, [RCPT])
        text = queued_with(postern, conf, "Authentication-Results: mx.bench.example")
        results = " ".join(l.strip() for l in (text or "").replace("\r\n\t", " ").replace("\r\n ", " ").split("\r\n")
                           if l.startswith("Authentication-Results: mx.bench.example"))
        print("ingest: Authentication-Results of a verified message: %s" % (results or "NONE FOUND"))
        for want in ("spf=pass", "dkim=pass", "dmarc=pass"):
            if want not in results:
                print("  WARNING: %s missing: the verified listener does not do the whole check" % want)
        pids = lambda: descendants(server.pid)
        print("%-36s %10s %10s %7s %12s %12s %10s" % ("ingest (msg/s)", "verified", "plain", "ratio",
                                                      "ver CPU ms", "plain CPU ms", "client ms"))
        rows = []
        for size in args.sizes:
            for c in args.concurrency:
                rates, cpus, client = [], [], []
                for port in (verified, plain):
                    before = cpu_seconds(pids())
                    elapsed, codes, client_cpu = smtp_send(port, signed[size], args.messages, c, "bounce@" + DOMAIN, [RCPT])
                    cpus.append((cpu_seconds(pids()) - before) * 1000 / args.messages)
                    rates.append(args.messages / elapsed)
                    client.append(client_cpu * 1000 / args.messages)
                    if codes != {250: args.messages}:
                        print("  port %d: replies %s" % (port, codes))
                row = (size, c, rates[0], rates[1], rates[0] / rates[1], cpus[0], cpus[1], sum(client) / 2)
                rows.append(row)
                print("%-36s %10.0f %10.0f %7.2f %12.2f %12.2f %10.2f" % (("%d KiB, concurrency %d" % (size, c),) + row[2:]))
        return rows
    finally:
        stop(server)


def signing(args, postern, work, dns, keys):
    sink_port, port = free_port(), free_port()
    sink_dir = os.path.join(work, "sink")
    os.makedirs(sink_dir)
    os.chown(sink_dir, 65534, 65534)
    sink = subprocess.Popen(["/usr/sbin/smtp-sink", "-u", "nobody", "-d", sink_dir + "/m.", "127.0.0.1:%d" % sink_port, "256"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(sink_port)
    extra = """[plugin.queue]
relayhost = "[127.0.0.1]:{s}"
min_backoff = "1h"
max_backoff = "1h"
scan_interval = "1h"
[plugin.smtp-client]
hostname = "mx.bench.example"
tls = "none"
[plugin.sender-auth]
trusted_networks = []
""".format(s=sink_port)
    for domain, (path, _, _) in keys.items():
        extra += '[[plugin.sender-auth.dkim]]\ndomain = "%s"\nselector = "s1"\nkey_file = "%s"\n' % (domain, path)
    conf, server = start_postern(postern, work, "signing", postern_config(
        os.path.join(work, "signing"), dns, [("in", port, "filters = []")], extra))
    seen = set()

    def new_files():
        now = set(os.listdir(sink_dir))
        fresh = now - seen
        return fresh

    try:
        wait_port(port)
        kinds = [("unsigned", "plain." + DOMAIN)] + [("%s" % keys[d][1], d) for d in keys]
        # Warm up: a few messages of each kind through the whole path.
        for _, domain in kinds:
            smtp_send(port, message(domain, 1), 10, 2, "bounce@" + domain, [RCPT])
        deadline = time.time() + 60
        while len(new_files()) < 10 * len(kinds) and time.time() < deadline:
            time.sleep(0.05)
        seen.update(os.listdir(sink_dir))
        pids = lambda: descendants(server.pid)
        print("%-36s %10s %10s %10s %12s %12s" % ("signing, delivered (msg/s)", "kind", "msg/s", "ratio", "CPU ms/msg", "dkimpy"))
        rows = []
        for size in args.sizes:
            base = None
            for kind, domain in kinds:
                os.kill(sink.pid, signal.SIGSTOP)
                elapsed, codes, _ = smtp_send(port, message(domain, size), args.messages, 10, "bounce@" + domain, [RCPT])
                if codes != {250: args.messages}:
                    print("  load: replies %s" % codes)
                time.sleep(0.5)  # the attempts begin and wait on the stopped sink
                before = cpu_seconds(pids())
                start = time.time()
                os.kill(sink.pid, signal.SIGCONT)
                deadline = start + 600
                while len(new_files()) < args.messages and time.time() < deadline:
                    time.sleep(0.02)
                elapsed = time.time() - start
                cpu = (cpu_seconds(pids()) - before) * 1000 / args.messages
                fresh = new_files()
                seen.update(fresh)
                # One delivered message, checked by dkimpy against the published key.
                sample = open(os.path.join(sink_dir, sorted(fresh)[0]), "rb").read() if fresh else b""
                # smtp-sink's dump: LF line ends, its X-* and Received fields on top (not signed).
                sample = sample.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
                if kind == "unsigned":
                    verdict = "unsigned" if b"DKIM-Signature" not in sample else "SIGNED?"
                else:
                    verdict = "pass" if dkim.verify(sample, dnsfunc=lambda name, timeout=5: keys[domain][2].encode()) else "FAIL"
                rate = len(fresh) / elapsed
                base = base or rate
                rows.append((size, kind, rate, rate / base, cpu, verdict))
                print("%-36s %10s %10.0f %10.2f %12.2f %12s" % ("%d KiB" % size, kind, rate, rate / base, cpu, verdict))
        return rows
    finally:
        stop(server)
        os.kill(sink.pid, signal.SIGCONT)
        stop(sink)


def main():
    ap = argparse.ArgumentParser()
    default = ".build/release/postern" if os.path.exists(".build/release/postern") else ".build/debug/postern"
    ap.add_argument("--postern", default=default)
    ap.add_argument("--messages", type=int, default=500)
    ap.add_argument("--concurrency", default="1,10,50")
    ap.add_argument("--sizes", default="1,100", help="message sizes in KiB")
    ap.add_argument("--skip-ingest", action="store_true")
    ap.add_argument("--skip-signing", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    args.concurrency = [int(x) for x in args.concurrency.split(",")]
    args.sizes = [int(x) for x in args.sizes.split(",")]
    postern = os.path.abspath(args.postern)
    work = tempfile.mkdtemp(prefix="postern-sender-auth-bench-")
    os.chmod(work, 0o755)
    unbound = None
    try:
        # Keys: postern admin dkim keygen (its config only names a data directory).
        keyconf = os.path.join(work, "keygen.toml")
        open(keyconf, "w").write('data_dir = "%s/keygen"\n' % work)
        keydir = os.path.join(work, "keys")
        os.makedirs(keydir)
        rsa_key, rsa_record = keygen(postern, keyconf, DOMAIN, "s1", "rsa", keydir)
        sign_keys = {}
        records = {"s1._domainkey." + DOMAIN: rsa_record}
        for algorithm, domain in (("rsa", "rsa." + DOMAIN), ("ed25519", "ed." + DOMAIN)):
            path, record = keygen(postern, keyconf, domain, "s1", algorithm, keydir)
            records["s1._domainkey." + domain] = record
            # dkimpy's DNS answer: the record's strings joined.
            sign_keys[domain] = (path, "rsa-2048" if algorithm == "rsa" else algorithm,
                                 "".join(s for s in record.split('"')[1::2]))
        spf = [DOMAIN] + ["plain." + DOMAIN] + list(sign_keys)
        dns, unbound = start_unbound(work, zone_lines(spf, [DOMAIN], records))
        print("postern binary: %s" % postern)
        print("messages per cell: %d; client: one SMTP session per message (benchlib.smtp_send)" % args.messages)
        if not args.skip_ingest:
            ingest(args, postern, work, dns, rsa_key)
        if not args.skip_signing:
            signing(args, postern, work, dns, sign_keys)
    finally:
        if unbound:
            stop(unbound)
        if args.keep:
            print("kept: %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
