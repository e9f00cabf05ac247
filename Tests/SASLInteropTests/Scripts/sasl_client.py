# A small SASL client for the interop tests: SCRAM-SHA-1/-256 (and -PLUS with tls-server-end-point,
# RFC 5929, computed from the server's certificate, since Python's ssl module only offers
# tls-unique) over IMAP, SMTP and POP3, plain or under TLS.
#
#   sasl_client.py PROTO PORT TLS MECH USER PASSWORD MODE
#   PROTO imap|smtp|pop3; TLS none|implicit|starttls; MODE n|y|plus|tamper|caps
# Prints the advertised mechanisms (caps), or OK VERIFIED / OK UNVERIFIED / FAIL <reply>.
import base64, hashlib, hmac, os, socket, ssl, sys

proto, port, tls, mech, user, password, mode = sys.argv[1:8]
b64 = lambda b: base64.b64encode(b).decode()

sock = socket.create_connection(("127.0.0.1", int(port)), timeout=30)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
if tls == "implicit":
    sock = context.wrap_socket(sock, server_hostname="localhost")
f = sock.makefile("rwb")

def send(line):
    f.write(line.encode() + b"\r\n"); f.flush()

def line():
    l = f.readline()
    if not l: raise SystemExit("FAIL connection closed")
    return l.decode().rstrip("\r\n")

def smtp_reply():
    lines = [line()]
    while lines[-1][3:4] == "-": lines.append(line())
    return lines

def capabilities():
    if proto == "imap":
        send("c CAPABILITY")
        caps = []
        while True:
            l = line()
            if l.startswith("* CAPABILITY"): caps = [c[5:] for c in l.split() if c.startswith("AUTH=")]
            if l.startswith("c "): return caps
    if proto == "smtp":
        send("EHLO client.example")
        for l in smtp_reply():
            if l[4:].startswith("AUTH "): return l[9:].split()
        return []
    send("CAPA")
    caps = []
    while True:
        l = line()
        if l == ".": return caps
        if l.startswith("SASL "): caps = l.split()[1:]

# Greeting and TLS.
if proto == "smtp": smtp_reply()
else: line()
if tls == "starttls":
    if proto == "smtp":
        capabilities(); send("STARTTLS"); smtp_reply()
    else:
        send("STLS"); line()
    sock = context.wrap_socket(sock, server_hostname="localhost")
    f = sock.makefile("rwb")
caps = capabilities()
if mode == "caps":
    print(" ".join(caps)); sys.exit(0)

algorithm = hashlib.sha256 if "SHA-256" in mech else hashlib.sha1
if mode in ("plus", "tamper"):
    gs2 = "p=tls-server-end-point,,"
    # The test certificate is signed with sha256WithRSAEncryption: RFC 5929 §4.1 says SHA-256.
    data = hashlib.sha256(sock.getpeercert(binary_form=True)).digest()
    if mode == "tamper": data = bytes([data[0] ^ 1]) + data[1:]
else:
    gs2, data = mode + ",,", b""
cnonce = b64(os.urandom(18))
bare = "n=%s,r=%s" % (user.replace("=", "=3D").replace(",", "=2C"), cnonce)

def start(first):
    if proto == "imap": send("a AUTHENTICATE %s %s" % (mech, b64(first)))
    elif proto == "smtp": send("AUTH %s %s" % (mech, b64(first)))
    else: send("AUTH %s %s" % (mech, b64(first)))
    return challenge()

def challenge():
    l = smtp_reply()[-1] if proto == "smtp" else line()
    if proto == "smtp":
        if l.startswith("334 "): return base64.b64decode(l[4:])
    elif l.startswith("+ ") or l == "+":
        return base64.b64decode(l[2:])
    raise SystemExit("FAIL " + l)

def done():
    l = smtp_reply()[-1] if proto == "smtp" else line()
    ok = l.startswith("a OK") if proto == "imap" else l.startswith("235") if proto == "smtp" else l.startswith("+OK")
    if not ok: raise SystemExit("FAIL " + l)

server_first = start((gs2 + bare).encode()).decode()
attrs = dict(a.split("=", 1) for a in server_first.split(","))
assert attrs["r"].startswith(cnonce)
salted = hashlib.pbkdf2_hmac(algorithm().name, password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
client_key = hmac.new(salted, b"Client Key", algorithm).digest()
without_proof = "c=%s,r=%s" % (b64(gs2.encode() + data), attrs["r"])
auth_message = (bare + "," + server_first + "," + without_proof).encode()
signature = hmac.new(algorithm(client_key).digest(), auth_message, algorithm).digest()
proof = bytes(a ^ b for a, b in zip(client_key, signature))
send(b64((without_proof + ",p=" + b64(proof)).encode()))
final = challenge().decode()
server_key = hmac.new(salted, b"Server Key", algorithm).digest()
verified = final == "v=" + b64(hmac.new(server_key, auth_message, algorithm).digest())
send("")
done()
print("OK VERIFIED" if verified else "OK UNVERIFIED")
