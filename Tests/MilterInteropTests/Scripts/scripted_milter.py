#!/usr/bin/env python3
"""A scripted milter (Sendmail milter protocol v6) for the filter chain's tests.

    scripted_milter.py PORT NAME LOG slow DELAY_MS   waits DELAY_MS at every step it answers,
                                                      then continues; at end of message adds
                                                      the field X-Milter-NAME
    scripted_milter.py PORT NAME LOG silent          answers negotiation, CONNECT and HELO,
                                                      then never answers MAIL
    scripted_milter.py PORT NAME LOG edit            at end of message asks for every change
                                                      a milter can make (see EDITS), then
                                                      quarantines the message

PORT may be a path: the milter then listens on that Unix socket.

Every answered step is logged to LOG as one JSON line: the milter's name, the step, and when
its wait started and ended on the monotonic clock (CLOCK_MONOTONIC, shared by every process of
the machine, so two milters' lines can be compared). A line "listening" is printed once the
port is open.
"""
import json, os, socket, struct, sys, threading, time

address, name, log_path, mode = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
delay = int(sys.argv[5]) / 1000.0 if mode == "slow" else 0
log_lock = threading.Lock()

STEPS = {b"C": "connect", b"H": "helo", b"M": "mail", b"R": "rcpt", b"T": "data",
         b"L": "header", b"N": "eoh", b"B": "body", b"E": "eom"}


# Every end-of-message action, in the order the edit milter sends them.
EDITS = [
    (b"i", struct.pack(">I", 0) + b"X-Inserted\0first\0"),          # INSHEADER before the first field
    (b"m", struct.pack(">I", 1) + b"Subject\0edited subject\0"),    # CHGHEADER
    (b"m", struct.pack(">I", 1) + b"X-Remove-Me\0\0"),                # CHGHEADER with no value: delete
    (b"h", b"X-Added\0last\0"),                                       # ADDHEADER
    (b"-", b"<rcpt@remote.example>\0"),                               # DELRCPT
    (b"+", b"<added@remote.example>\0"),                              # ADDRCPT
    (b"2", b"<added-with-args@remote.example>\0NOTIFY=NEVER\0"),      # ADDRCPT_PAR
    (b"e", b"<changed@remote.example>\0"),                            # CHGFROM
    (b"b", b"Replaced "),                                              # REPLBODY, in two chunks
    (b"b", b"body.\r\n"),
    (b"q", b"held by the edit milter\0"),                             # QUARANTINE
]


def read_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def send(conn, code, data=b""):
    conn.sendall(struct.pack(">I", len(data) + 1) + code + data)


def record(step, start, end):
    with log_lock, open(log_path, "a") as f:
        f.write(json.dumps({"milter": name, "step": step, "start": start, "end": end}) + "\n")


def serve(conn):
    with conn:
        while True:
            head = read_exact(conn, 4)
            if head is None:
                return
            length = struct.unpack(">I", head)[0]
            packet = read_exact(conn, length)
            if packet is None:
                return
            code = packet[:1]
            if code == b"O":
                # Version 6, every step wanted and answered; the edit milter asks for every action
                # but the symbol list, the others for adding fields only.
                send(conn, b"O", struct.pack(">III", 6, 0xFF if mode == "edit" else 0x01, 0))
            elif code in (b"D", b"A"):
                continue
            elif code == b"Q":
                return
            elif code in STEPS:
                step = STEPS[code]
                if mode == "silent" and step == "mail":
                    # Never answer; keep the connection open until the MTA closes it.
                    while conn.recv(65536):
                        pass
                    return
                start = time.monotonic()
                time.sleep(delay)
                end = time.monotonic()
                record(step, start, end)
                if step == "eom" and mode == "edit":
                    for code_, data in EDITS:
                        send(conn, code_, data)
                elif step == "eom":
                    send(conn, b"h", b"X-Milter-" + name.encode() + b"\0" + b"seen\0")
                send(conn, b"c")
            else:
                return


if address.startswith("/"):
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address)
    # Postern's workers run as their own user (nobody in the suite): they must be able to connect.
    os.chmod(address, 0o666)
else:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", int(address)))
listener.listen(16)
print("listening", flush=True)
while True:
    c, _ = listener.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
