# COMPRESS=DEFLATE (RFC 4978) against a running `postern serve`, with Python's zlib as the
# client's raw DEFLATE: APPEND a 1 MB message and a small one, FETCH them back, refuse a second
# COMPRESS. Usage: compress.py PORT USER PASSWORD; prints a JSON object last.
import json, socket, sys, zlib

PORT, USER, PASSWORD = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3].encode()
s = socket.create_connection(("127.0.0.1", PORT))
s.settimeout(20)
compressed = False
comp = zlib.compressobj(wbits=-15)
decomp = zlib.decompressobj(wbits=-15)
buffer = b""
wire = {"sent": 0, "received": 0}

def send(data):
    if compressed:
        data = comp.compress(data) + comp.flush(zlib.Z_SYNC_FLUSH)
    wire["sent"] += len(data)
    s.sendall(data)

def fill():
    global buffer
    chunk = s.recv(65536)
    if not chunk:
        raise EOFError("closed")
    wire["received"] += len(chunk)
    buffer += decomp.decompress(chunk) if compressed else chunk

def line():
    """One logical line, literals inlined."""
    global buffer
    out = b""
    while True:
        while b"\r\n" not in buffer:
            fill()
        l, buffer = buffer.split(b"\r\n", 1)
        out += l
        if l.endswith(b"}") and b"{" in l:
            n = int(l[l.rindex(b"{") + 1:-1])
            while len(buffer) < n:
                fill()
            out += b"\r\n" + buffer[:n]
            buffer = buffer[n:]
            continue
        return out

def until(tag):
    lines = []
    while True:
        l = line()
        lines.append(l)
        if l.startswith(tag + b" "):
            return lines

assert line().startswith(b"* OK")
send(b"a LOGIN %s %s\r\n" % (USER, PASSWORD))
assert until(b"a")[-1].startswith(b"a OK")
send(b"b CAPABILITY\r\n")
caps = until(b"b")
assert b"COMPRESS=DEFLATE" in caps[0], caps
send(b"c COMPRESS DEFLATE\r\n")
assert until(b"c") == [b"c OK DEFLATE active."]
compressed = True

big = b"Subject: big\r\n\r\n" + b"".join(b"line %06d of a long and repetitive message body\r\n" % i for i in range(20000))
small = b"Subject: small\r\n\r\nhello\r\n"
before = dict(wire)
send(b"d APPEND INBOX {%d+}\r\n" % len(big) + big + b"\r\n")
assert until(b"d")[-1].startswith(b"d OK [APPENDUID"), "append big"
send(b"e APPEND INBOX {%d+}\r\n" % len(small) + small + b"\r\n")
assert until(b"e")[-1].startswith(b"e OK [APPENDUID"), "append small"
send(b"f SELECT INBOX\r\n")
assert b"* 2 EXISTS" in until(b"f")
send(b"g FETCH 1:2 BODY.PEEK[]\r\n")
r = until(b"g")
assert r[0] == b"* 1 FETCH (BODY[] {%d}\r\n" % len(big) + big + b")", r[0][:200]
assert r[1] == b"* 2 FETCH (BODY[] {%d}\r\n" % len(small) + small + b")", r[1]
assert r[-1].startswith(b"g OK")
sent = wire["sent"] - before["sent"]
received = wire["received"] - before["received"]
send(b"h COMPRESS DEFLATE\r\n")
assert until(b"h")[-1].startswith(b"h NO [COMPRESSIONACTIVE]")
send(b"i LOGOUT\r\n")
assert until(b"i")[-1].startswith(b"i OK")
print(json.dumps({"payload_bytes": 2 * (len(big) + len(small)), "wire_sent": sent, "wire_received": received}))
