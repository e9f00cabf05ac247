# Drives a running `postern serve` with Python's imaplib, as a mail client would: LOGIN, LIST,
# SELECT, APPEND, FETCH (flags, bodies, partial, BODYSTRUCTURE), STORE, SEARCH, COPY, MOVE,
# EXPUNGE, UID commands, IDLE woken by another connection, by LMTP and by `postern admin import
# mbox` in another process, STARTTLS, implicit TLS, AUTHENTICATE, delayed failures.
#
# Usage: imap_flow.py SETTINGS.json; prints one JSON object of measurements on its last line.
# Every protocol check is an assert: a failure ends the script with the reason.
import imaplib, json, re, select, smtplib, socket, ssl, subprocess, sys, time

cfg = json.load(open(sys.argv[1]))
# imaplib (3.11) does not know MOVE (RFC 6851).
imaplib.Commands.setdefault("MOVE", ("SELECTED",))
HOST = "127.0.0.1"
USER, PASSWORD = cfg["user"], cfg["password"]
out = {}

def ok(result, what):
    typ, data = result
    assert typ == "OK", "%s: %s %r" % (what, typ, data)
    return data

def connect(port=None):
    for _ in range(200):
        try:
            return imaplib.IMAP4(HOST, port or cfg["plain"])
        except OSError:
            time.sleep(0.05)
    raise SystemExit("cannot connect")

def message(n, subject=None, sender="ann@example.net", body="Hello.\r\n", extra=""):
    return ("From: Ann <%s>\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@example.net>\r\n"
            "Date: Mon, 2 Jan 2006 15:04:05 +0000\r\n%s\r\n%s" % (sender, USER, subject or "message %d" % n, n, extra, body)).encode()

MULTIPART = (b"From: ann@example.net\r\nTo: " + USER.encode() + b"\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
             b"Content-Type: multipart/mixed; boundary=\"xyz\"\r\n\r\n--xyz\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
             b"first part\r\n--xyz\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
             b"AAECAw==\r\n--xyz--\r\n")

# --- Plain listener (plaintext allowed on loopback) -------------------------------------------
m = connect()
caps = m.capabilities
assert "IMAP4REV1" in caps and "IDLE" in caps and "AUTH=PLAIN" in caps, caps
assert "LOGINDISABLED" not in caps, caps
ok(m.login(USER, PASSWORD), "login")
caps = ok(m.capability(), "capability")[0].decode().upper().split()
for c in ["UIDPLUS", "MOVE", "CONDSTORE", "QRESYNC", "ESEARCH", "SPECIAL-USE", "LIST-STATUS", "ACL", "QUOTA", "NAMESPACE"]:
    assert c in caps, (c, caps)

lines = ok(m.list(), "list")
names = {}
for l in lines:
    match = re.match(rb'\(([^)]*)\) "/" (.*)', l)
    names[match.group(2).strip(b'"').decode()] = match.group(1).decode().split()
for box, use in [("INBOX", None), ("Sent", "\\Sent"), ("Drafts", "\\Drafts"), ("Trash", "\\Trash"), ("Junk", "\\Junk"), ("Archive", "\\Archive")]:
    assert box in names, (box, names)
    assert use is None or use in names[box], (box, names[box])
ok(m.create("Work/Reports"), "create")
assert ok(m.list('""', "Work/%"), "list %") == [b'(\\HasNoChildren) "/" Work/Reports'], m.list('""', "Work/%")
assert b'(\\HasChildren) "/" Work' in ok(m.list('""', "*"), "list *")
typ, data = m.create("Work/Reports")
assert typ == "NO" and b"ALREADYEXISTS" in data[0], data

# APPEND with flags and dates; APPENDUID.
uids = []
for n, flags, date in [(1, r"(\Seen)", 1700000000), (2, None, 1600000000), (3, r"(\Flagged $Work)", 1710000000)]:
    data = ok(m.append("INBOX", flags, imaplib.Time2Internaldate(date), message(n, body="body %d line\r\n" % n)), "append")
    uids.append(int(re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1)))
assert uids == [1, 2, 3], uids
ok(m.append("INBOX", None, None, MULTIPART), "append multipart")

data = ok(m.select("INBOX"), "select")
assert data == [b"4"], data
assert m.untagged_responses.get("RECENT") == [b"4"], m.untagged_responses

# FETCH: flags, internal date, size, envelope, bodies, partial, BODYSTRUCTURE.
data = ok(m.fetch("1:3", "(FLAGS INTERNALDATE RFC822.SIZE)"), "fetch")
assert b"FLAGS (\\Seen \\Recent)" in data[0] and b'INTERNALDATE "14-Nov-2023 22:13:20 +0000"' in data[0], data
assert b"RFC822.SIZE %d" % len(message(1, body="body 1 line\r\n")) in data[0], data
assert b"FLAGS (\\Flagged \\Recent $Work)" in data[2], data
data = ok(m.fetch("2", "(ENVELOPE)"), "envelope")
assert b'ENVELOPE ("Mon, 2 Jan 2006 15:04:05 +0000" "message 2" (("Ann" NIL "ann" "example.net"))' in data[0], data
data = ok(m.fetch("2", "(BODY.PEEK[])"), "body.peek")
assert data[0][1] == message(2, body="body 2 line\r\n"), data
assert b"\\Seen" not in ok(m.fetch("2", "(FLAGS)"), "flags")[0], "PEEK must not set \\Seen"
data = ok(m.fetch("2", "(BODY[TEXT]<5.4>)"), "partial")
assert data[0][0].endswith(b"BODY[TEXT]<5> {4}") and data[0][1] == b"2 li", data
data = ok(m.fetch("2", "(BODY[TEXT]<500.10>)"), "partial beyond")
assert b'BODY[TEXT]<500> ""' in data[0] or data[0][1] == b"", data
assert b"\\Seen" in ok(m.fetch("2", "(FLAGS)"), "flags")[0], "BODY[] sets \\Seen"
data = ok(m.fetch("4", "(BODYSTRUCTURE)"), "bodystructure")
assert (b'BODYSTRUCTURE (("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 10 0 NIL NIL NIL NIL)'
        b'("application" "octet-stream" NIL NIL NIL "base64" 8 NIL NIL NIL NIL) "mixed" ("boundary" "xyz") NIL NIL NIL)') in data[0], data
data = ok(m.fetch("4", "(BODY.PEEK[2] BODY.PEEK[1.MIME] BINARY.PEEK[2])"), "parts")
flat = b"".join(x[1] if isinstance(x, tuple) else b"" for x in data)
assert b"AAECAw==" in flat and b"Content-Type: text/plain; charset=utf-8" in flat and b"\x00\x01\x02\x03" in flat, data
data = ok(m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT MESSAGE-ID)])"), "header.fields")
assert data[0][1] == b"Subject: message 1\r\nMessage-ID: <1@example.net>\r\n\r\n", data

# STORE.
data = ok(m.store("1:2", "+FLAGS", r"(\Answered)"), "store +")
assert b"\\Answered" in data[0] and b"\\Answered" in data[1], data
ok(m.store("1", "-FLAGS", r"(\Seen)"), "store -")
data = ok(m.store("3", "FLAGS.SILENT", r"(\Draft)"), "store silent")
assert data == [None], data
assert b"FLAGS (\\Draft \\Recent)" in ok(m.fetch("3", "(FLAGS)"), "flags")[0]

# SEARCH.
assert ok(m.search(None, "UNSEEN"), "search") == [b"1 3 4"], m.search(None, "UNSEEN")
assert ok(m.search(None, "OR", "SUBJECT", "parts", "NOT", "ANSWERED"), "or/not") == [b"3 4"]
assert ok(m.search(None, "SINCE", "1-Jan-2020", "BODY", "line"), "since") == [b"1 2 3"]
assert ok(m.uid("SEARCH", "FROM", "ann@example.net", "UID", "2:*"), "uid search") == [b"2 3 4"]
assert ok(m.search("UTF-8", "SUBJECT", "message"), "charset") == [b"1 2 3"]

# COPY, MOVE (COPYUID, EXPUNGE), EXPUNGE, UID commands.
data = ok(m.copy("1:2", "Work/Reports"), "copy")
assert re.search(rb"COPYUID \d+ 1:2 1:2", data[0]), data
typ, data = m.copy("1", "Nowhere")
assert typ == "NO" and b"TRYCREATE" in data[0], data
typ, data = m._simple_command("MOVE", "3", "Archive")
assert typ == "OK", data
assert m.untagged_responses.pop("EXPUNGE", None) == [b"3"], m.untagged_responses
ok(m.uid("STORE", "1", "+FLAGS", r"(\Deleted)"), "uid store")
data = ok(m.expunge(), "expunge")
assert data == [b"1"], data
data = ok(m.uid("FETCH", "1:*", "(UID FLAGS)"), "uid fetch")
assert [re.search(rb"UID (\d+)", d).group(1) for d in data] == [b"2", b"4"], data
ok(m.uid("COPY", "4", "Work/Reports"), "uid copy")
ok(m.select("Work/Reports", readonly=True), "examine")
assert ok(m.search(None, "ALL"), "search") == [b"1 2 3"]
typ, data = m.store("1", "+FLAGS", r"(\Flagged)")
assert typ == "NO", (typ, data)
data = ok(m.status("INBOX", "(MESSAGES UIDNEXT UNSEEN)"), "status")
assert data == [b'INBOX (MESSAGES 2 UIDNEXT 5 UNSEEN 1)'], data
ok(m.select("INBOX"), "select again")

# --- IDLE: woken by other connections and processes -------------------------------------------
def idle_until(conn, pattern, action, timeout=5):
    """Sends IDLE, runs `action` once idling, returns (line, seconds from the end of the action)."""
    tag = conn._new_tag()
    conn.send(tag + b" IDLE\r\n")
    assert conn.readline().startswith(b"+ idling")
    started = time.time()
    action()
    done = time.time()
    out.setdefault("action_seconds", []).append(done - started)
    conn.sock.settimeout(timeout)
    found = None
    while found is None:
        line = conn.readline()
        assert line, "connection closed while idling"
        if re.search(pattern, line):
            found = (line.strip(), time.time() - done)
    conn.send(b"DONE\r\n")
    while True:
        line = conn.readline()
        if line.startswith(tag):
            assert b" OK " in line, line
            break
    conn.sock.settimeout(None)
    return found

other = connect()
ok(other.login(USER, PASSWORD), "login 2")
line, seconds = idle_until(m, rb"^\* 3 EXISTS", lambda: ok(other.append("INBOX", None, None, message(5)), "append by other"))
out["idle_other_connection"] = seconds

def lmtp_delivery():
    l = smtplib.LMTP(HOST, cfg["lmtp"])
    l.sendmail("ann@example.net", [USER], message(6))
    l.quit()
line, seconds = idle_until(m, rb"^\* 4 EXISTS", lmtp_delivery)
out["idle_lmtp"] = seconds

def admin_import():
    started = time.time()
    r = subprocess.run([cfg["postern"], "admin", "import", "mbox", cfg["mbox"], "--user", USER, "-c", cfg["config"]],
                       capture_output=True, cwd=cfg["cwd"])
    assert r.returncode == 0, r.stderr
    out["admin_import_process_seconds"] = time.time() - started
line, seconds = idle_until(m, rb"^\* 6 EXISTS", admin_import)
out["idle_admin_import"] = seconds

ok(other.select("INBOX"), "select by other")
ok(other.store("1", "+FLAGS", r"(\Flagged)"), "flag by other")
line, seconds = idle_until(m, rb"^\* 2 FETCH \(FLAGS", lambda: ok(other.store("2", "+FLAGS", r"(\Answered)"), "flag 2 by other"))
out["idle_flags"] = seconds
def expunge_by_other():
    ok(other.store("3", "+FLAGS", r"(\Deleted)"), "delete by other")
    ok(other.expunge(), "expunge by other")
line, seconds = idle_until(m, rb"^\* 3 EXPUNGE", expunge_by_other)
out["idle_expunge"] = seconds
other.logout()

# Wrong password: answered NO after the configured delay.
bad = connect()
started = time.time()
try:
    bad.login(USER, "wrong")
    raise SystemExit("wrong password accepted")
except imaplib.IMAP4.error as e:
    assert "AUTHENTICATIONFAILED" in str(e), e
out["failure_delay"] = time.time() - started
bad.logout()

# AUTHENTICATE PLAIN (SASL-IR) and LOGIN on the plain listener (loopback allowed).
a = connect()
ok(a.authenticate("PLAIN", lambda _: ("\0%s\0%s" % (USER, PASSWORD)).encode()), "authenticate plain")
a.logout()
a = connect()
answers = iter([USER.encode(), PASSWORD.encode()])
ok(a.authenticate("LOGIN", lambda _: next(answers)), "authenticate login")
a.logout()
m.logout()

# --- STARTTLS listener (no plaintext before TLS) ----------------------------------------------
context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
s = connect(cfg["starttls"])
assert "STARTTLS" in s.capabilities and "LOGINDISABLED" in s.capabilities and "AUTH=PLAIN" not in s.capabilities, s.capabilities
try:
    s.login(USER, PASSWORD)
    raise SystemExit("plaintext login accepted before STARTTLS")
except imaplib.IMAP4.error as e:
    assert "PRIVACYREQUIRED" in str(e), e
ok(s.starttls(context), "starttls")
assert "LOGINDISABLED" not in s.capabilities and "STARTTLS" not in s.capabilities, s.capabilities
ok(s.login(USER, PASSWORD), "login after starttls")
assert ok(s.select("INBOX"), "select over tls") == [b"5"]
s.logout()

# --- Implicit TLS ------------------------------------------------------------------------------
t = imaplib.IMAP4_SSL(HOST, cfg["implicit"], ssl_context=context)
assert "AUTH=PLAIN" in t.capabilities and "STARTTLS" not in t.capabilities, t.capabilities
ok(t.authenticate("PLAIN", lambda _: ("\0%s\0%s" % (USER, PASSWORD)).encode()), "authenticate over implicit tls")
ok(t.select("Work/Reports"), "select")
assert len(ok(t.fetch("1:*", "(UID)"), "fetch over tls")) == 3
t.logout()

print(json.dumps(out))
