# Malformed input against a running `postern serve`: 1,000 seeded random commands, an
# unterminated literal, literals over the limits, 1,000 nested parentheses, an over-long line and
# NUL bytes. Each gets BAD or NO; meanwhile another session keeps answering NOOP promptly.
#
# Last, a client that pipelines 300,000 commands without reading the answers: the worker's memory
# must stay bounded (it stops reading once input piles up) and every answer must still come.
#
# Usage: malformed.py PORT USER PASSWORD SEED WORKER-PID; prints a JSON object of measurements last.
import json, random, socket, sys, threading, time

PORT, USER, PASSWORD, SEED, WORKER = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
out = {}

class Conn:
    def __init__(self):
        self.s = socket.create_connection(("127.0.0.1", PORT))
        self.s.settimeout(20)
        self.buf = b""
        assert self.line().startswith(b"* OK ")
    def send(self, data):
        self.s.sendall(data)
    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("closed; buffered: %r" % self.buf[:200])
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line
    def until(self, tag):
        lines = []
        while True:
            l = self.line()
            lines.append(l)
            if l.startswith(tag + b" "):
                return lines
    def command(self, text):
        tag = text.split(b" ", 1)[0]
        self.send(text + b"\r\n")
        return self.until(tag)

def noop_latency(c, n):
    started = time.time()
    assert c.command(b"n%d NOOP" % n)[-1] == b"n%d OK NOOP completed." % n
    return time.time() - started

watcher = Conn()
assert watcher.command(b"w LOGIN %s %s" % (USER.encode(), PASSWORD.encode()))[-1].startswith(b"w OK")
victim = Conn()
assert victim.command(b"v LOGIN %s %s" % (USER.encode(), PASSWORD.encode()))[-1].startswith(b"v OK")
assert victim.command(b"v2 SELECT INBOX")[-1].startswith(b"v2 OK")

# 1,000 random commands: names the parser knows with random arguments, unknown names, garbage.
# No literal headers, and none of the commands that change the exchange (LOGOUT, IDLE, ...).
rng = random.Random(SEED)
names = [b"FETCH", b"UID FETCH", b"STORE", b"SEARCH", b"UID SEARCH", b"COPY", b"MOVE", b"LIST", b"LSUB", b"STATUS", b"SELECT",
         b"EXAMINE", b"CREATE", b"DELETE", b"RENAME", b"SUBSCRIBE", b"GETACL", b"MYRIGHTS", b"GETQUOTAROOT", b"ENABLE", b"NOOP",
         b"CHECK", b"EXPUNGE", b"UID EXPUNGE", b"ID", b"NAMESPACE", b"CAPABILITY", b"XYZZY", b"FETCH1", b""]
words = [b"1", b"*", b"1:*", b"0", b"4294967296", b"(", b")", b"((", b"))", b"\"", b"\"x\"", b"[", b"]", b"<", b">", b"BODY[",
         b"BODY[1.2.3.HEADER.FIELDS (a b)]<0.10>", b"FLAGS", b"+FLAGS", b"(\\Seen", b"\\Recent", b"NIL", b"INBOX", b"%", b"~",
         b"ALL", b"OR", b"NOT", b"SINCE", b"1-Feb-1994", b"31-Feb-1994", b"CHARSET", b"RETURN", b"(MIN", b"MODSEQ", b"$", b"-1",
         b"\\", b"\x7f", b"\xff\xfe", b"UTF-8", b"ENVELOPE", b"RFC822.SIZE"]
answered = {b"OK": 0, b"NO": 0, b"BAD": 0}
started = time.time()
for i in range(1000):
    parts = [rng.choice(names)] + [rng.choice(words) for _ in range(rng.randrange(0, 8))]
    if rng.random() < 0.2:
        parts.append(bytes(rng.randrange(0x21, 0x7f) for _ in range(rng.randrange(1, 40))).replace(b"{", b"(").replace(b"}", b")"))
    line = b" ".join(p for p in parts if p)
    tag = b"r%d" % i
    reply = victim.command(tag + b" " + line)[-1]
    status = reply.split(b" ")[1]
    assert status in answered, reply
    answered[status] += 1
    if i % 100 == 0:
        out.setdefault("noop_during_random", []).append(noop_latency(watcher, i))
out["random"] = {k.decode(): v for k, v in answered.items()}
out["random_seconds"] = time.time() - started
assert victim.command(b"v3 NOOP")[-1] == b"v3 OK NOOP completed."

# A literal over the APPEND limit: NO [TOOBIG], no continuation; the next line is a command.
reply = victim.command(b"t1 APPEND INBOX {999999999}")
assert reply[-1].startswith(b"t1 NO [TOOBIG]"), reply
# A string literal over its limit: BAD.
reply = victim.command(b"t2 LIST \"\" {99999999}")
assert reply[-1].startswith(b"t2 BAD Literal too large"), reply
# 1,000 nested parentheses in SEARCH.
reply = victim.command(b"t3 SEARCH " + b"(" * 1000 + b"ALL" + b")" * 1000)
assert reply[-1].startswith(b"t3 BAD"), reply
# An over-long line, and NUL bytes.
reply = victim.command(b"t4 SEARCH SUBJECT " + b"x" * 200000)
assert reply[-1].startswith(b"t4 BAD") and b"too long" in reply[-1], reply
reply = victim.command(b"t5 SELECT IN\x00BOX")
assert reply[-1].startswith(b"t5 BAD"), reply
assert victim.command(b"t6 NOOP")[-1] == b"t6 OK NOOP completed."

# An unterminated literal: the server waits for the rest; other sessions are not held up.
stalled = Conn()
stalled.send(b"u1 LOGIN {10}\r\n")
assert stalled.line() == b"+ Ready for literal data"
stalled.send(b"abc")
out["noop_while_literal_unterminated"] = noop_latency(watcher, 9999)
stalled.s.close()

def rss_kib(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

flood = Conn()
assert flood.command(b"f LOGIN %s %s" % (USER.encode(), PASSWORD.encode()))[-1].startswith(b"f OK")
before = rss_kib(WORKER)
COUNT = 300000
payload = b"".join(b"p%d NOOP\r\n" % i for i in range(COUNT))
sender = threading.Thread(target=lambda: flood.s.sendall(payload))
sender.start()
time.sleep(3)
out["flood_rss_growth_kib"] = rss_kib(WORKER) - before
out["flood_input_bytes"] = len(payload)
out["noop_during_flood"] = noop_latency(watcher, 77777)
answered = 0
while answered < COUNT:
    if flood.line().startswith(b"p"):
        answered += 1
sender.join()
out["flood_answered"] = answered
print(json.dumps(out))
