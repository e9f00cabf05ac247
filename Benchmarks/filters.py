#!/usr/bin/env python3
"""What the policy filters cost at SMTP reception, measured in one run on one machine.

1. Postern's in-process filters on vs off: one Postern (smtp, queue, store-sqlite and every
   in-process filter plugin found beside the binary) with two MX listeners, one without filters
   and one running them all; Postfix's `smtp-source` drives each in turn. Reported: messages per
   second until the last 250 and the ratio filtered/unfiltered (the goal is at least 0.85).
   filter-archive is measured on its own row: each copy is one more fsynced queue file, so it
   costs what a second message costs, by design.
2. The same OpenDKIM milter (signing) behind Postern's milter client and behind Postfix's
   `smtpd_milters`, same machine, same run: messages per second and the ratio Postern/Postfix.

Run as root (Postfix's master switches users itself):

    sudo python3 Benchmarks/filters.py [--postern .build-release/release/postern] [--messages 1000]
"""
import argparse, os, shutil, subprocess, tempfile, time

from benchlib import free_port, smtp_listeners, start_postfix, wait_port

IN_PROCESS = [  # (plugin, filter name, its config section)
    ("filter-rules", "rules", "[plugin.filter-rules]\n"),
    ("filter-attachments", "attachments", "[plugin.filter-attachments]\n"),
    ("filter-dlp", "dlp", "[plugin.filter-dlp]\n[[plugin.filter-dlp.policies]]\nname = \"cards\"\ndetectors = [\"credit_card\"]\n"
                          "threshold = 3\ndirections = [\"inbound\"]\naction = \"quarantine\"\n"),
    ("filter-disclaimer", "disclaimer", "[plugin.filter-disclaimer]\n[[plugin.filter-disclaimer.profiles]]\n"
                                        "directions = [\"inbound\"]\ntext = \"This message was scanned by Postern.\"\n"),
]


def plugin_present(postern, plugin):
    stem = plugin.replace("-", "").lower()
    folder = os.path.dirname(postern)
    return any(f.lower() == "libpostern%s.so" % stem for f in os.listdir(folder))


def source(smtp_source, port, messages, size, concurrency, sender="load@remote.example"):
    start = time.time()
    r = subprocess.run([smtp_source, "-c", "-l", str(size * 1024), "-m", str(messages), "-s", str(concurrency),
                        "-f", sender, "-t", "bench@example.org", "127.0.0.1:%d" % port], capture_output=True, text=True)
    elapsed = time.time() - start
    if r.returncode != 0:
        print("  smtp-source on %d failed: %s" % (port, r.stderr.strip()[-300:]))
    return messages / elapsed


def postern_config(work, listeners, plugins):
    text = """data_dir = "{w}/postern"
workers = 2
[log]
level = "warning"
[plugin.store-sqlite]
password_iterations = 4096
[plugin.queue]
[plugin.smtp]
hostname = "mx.example.org"
""".format(w=work) + plugins
    return text + smtp_listeners(listeners)


def start_postern(postern, work, name, config):
    conf = os.path.join(work, name + ".toml")
    open(conf, "w").write(config)
    subprocess.run([postern, "admin", "domain", "add", "example.org", "-c", conf], check=True, capture_output=True)
    subprocess.run([postern, "admin", "user", "add", "bench@example.org", "--password", "pw", "-c", conf], check=True, capture_output=True)
    return subprocess.Popen([postern, "serve", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_opendkim(work):
    port = free_port()
    subprocess.run(["/usr/sbin/opendkim-genkey", "-D", work, "-d", "example.org", "-s", "bench"], check=True, capture_output=True)
    conf = os.path.join(work, "opendkim.conf")
    open(conf, "w").write("""Syslog no
Socket inet:{p}@127.0.0.1
Domain example.org
Selector bench
KeyFile {w}/bench.private
Mode s
Canonicalization relaxed/simple
InternalHosts 127.0.0.1
RequireSafeKeys false
PidFile {w}/opendkim.pid
""".format(p=port, w=work))
    proc = subprocess.Popen(["/usr/sbin/opendkim", "-f", "-x", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return proc, port


def start_postfix_with_milter(work, milter_port):
    d, port = os.path.join(work, "postfix"), free_port()
    start_postfix(d, port, "smtpd_milters = inet:127.0.0.1:%d\nmilter_default_action = tempfail\n" % milter_port)
    return d, port


def main():
    ap = argparse.ArgumentParser()
    default = ".build-release/release/postern" if os.path.exists(".build-release/release/postern") else ".build/debug/postern"
    ap.add_argument("--postern", default=default)
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--concurrency", default="1,10")
    ap.add_argument("--sizes", default="1,100", help="message sizes in KiB")
    ap.add_argument("--each", action="store_true", help="also one row per in-process filter alone")
    ap.add_argument("--no-dkim", action="store_true", help="skip the OpenDKIM comparison")
    ap.add_argument("--dkim-only", action="store_true", help="only the OpenDKIM comparison")
    args = ap.parse_args()
    postern = os.path.abspath(args.postern)
    smtp_source = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
    work = tempfile.mkdtemp(prefix="postern-filter-bench-")
    os.chmod(work, 0o755)
    procs, postfix_dir = [], None
    try:
        present = [] if args.dkim_only else [f for f in IN_PROCESS if plugin_present(postern, f[0])]
        missing = [] if args.dkim_only else [f[0] for f in IN_PROCESS if f not in present]
        have_archive = plugin_present(postern, "filter-archive") and not args.dkim_only
        plain, filtered, archived = free_port(), free_port(), free_port()
        plugins = "".join(f[2] for f in present)
        if have_archive:
            plugins += "[plugin.filter-archive.rules.all]\njournal_to = \"journal@archive.example\"\ndirections = [\"internal\"]\n"
        listeners = [("plain", plain, "filters = []"),
                     ("filtered", filtered, "filters = [%s]" % ", ".join('"%s"' % f[1] for f in present))]
        alone = {}
        if args.each:
            for f in present:
                alone[f[1]] = free_port()
                listeners.append((f[1], alone[f[1]], "filters = [\"%s\"]" % f[1]))
        if have_archive:
            listeners.append(("archived", archived, "filters = [\"archive\"]\ndirection = \"internal\""))
        procs.append(start_postern(postern, work, "filters", postern_config(work, listeners, plugins)))
        for _, port, _ in listeners:
            wait_port(port)
        sizes = [] if args.dkim_only else [int(x) for x in args.sizes.split(",")]
        print("postern binary: %s" % postern)
        print("in-process filters: %s%s" % (", ".join(f[0] for f in present) or "none",
                                             " (not built: %s)" % ", ".join(missing) if missing else ""))
        print("%-40s %10s %10s %7s" % ("", "filtered", "plain", "ratio"))
        for size in sizes:
            for c in [int(x) for x in args.concurrency.split(",")]:
                f = source(smtp_source, filtered, args.messages, size, c)
                p = source(smtp_source, plain, args.messages, size, c)
                print("%-40s %10.0f %10.0f %7.2f" % ("%d KiB, concurrency %d (msg/s)" % (size, c), f, p, f / p))
                for name, port in alone.items():
                    a = source(smtp_source, port, args.messages, size, c)
                    print("%-40s %10.0f %10.0f %7.2f" % ("  %s alone, same (msg/s)" % name, a, p, a / p))
                if have_archive:
                    a = source(smtp_source, archived, args.messages, size, c)
                    print("%-40s %10.0f %10.0f %7.2f" % ("  archive copy, same (msg/s)", a, p, a / p))
        procs[-1].terminate()
        procs[-1].wait(timeout=30)
        if args.no_dkim:
            return

        # The same OpenDKIM behind both servers.
        dkim, dkim_port = start_opendkim(work)
        procs.append(dkim)
        signed = free_port()
        pconf = postern_config(os.path.join(work, "dkim"), [("signed", signed, "filters = [\"opendkim\"]\ndirection = \"outbound\"")],
                               "[plugin.milter.milters.opendkim]\naddress = \"inet:127.0.0.1:%d\"\n" % dkim_port)
        os.makedirs(os.path.join(work, "dkim"))
        procs.append(start_postern(postern, work, "dkim", pconf))
        wait_port(signed)
        postfix_dir, fport = start_postfix_with_milter(work, dkim_port)
        print("%-40s %10s %10s %7s" % ("OpenDKIM signing milter", "postern", "postfix", "ratio"))
        for size in [int(x) for x in args.sizes.split(",")]:
            for c in [int(x) for x in args.concurrency.split(",")]:
                p = source(smtp_source, signed, args.messages, size, c, sender="bench@example.org")
                f = source(smtp_source, fport, args.messages, size, c, sender="bench@example.org")
                print("%-40s %10.0f %10.0f %7.2f" % ("%d KiB, concurrency %d (msg/s)" % (size, c), p, f, p / f))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        if postfix_dir:
            subprocess.run(["/usr/sbin/postfix", "-c", postfix_dir, "stop"], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
