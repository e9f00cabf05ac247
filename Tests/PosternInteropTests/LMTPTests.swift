import Foundation
import PosternTestSupport
import PosternHost
import XCTest

/// LMTP delivery into the embedded store, driven by a raw Python LMTP client (Python's smtplib
/// reads one reply after DATA, LMTP sends one per recipient).
final class LMTPInteropTests: XCTestCase {
    static let client = """
        import json, socket, sys, time

        def connect(target):
            if target.startswith("unix:"):
                s = socket.socket(socket.AF_UNIX)
                s.connect(target[5:])
            else:
                host, port = target.rsplit(":", 1)
                s = socket.create_connection((host, int(port)))
            s.settimeout(20)
            return s

        class Session:
            def __init__(self, target):
                self.f = connect(target).makefile("rwb")
                self.greeting = self.reply()
                self.lhlo = self.command("LHLO test.example")
            def reply(self):
                lines = []
                while True:
                    line = self.f.readline()
                    if not line:
                        raise EOFError("connection closed")
                    lines.append(line.decode().rstrip("\\r\\n"))
                    if line[3:4] == b" ":
                        return lines
            def command(self, line):
                self.f.write(line.encode() + b"\\r\\n")
                self.f.flush()
                return self.reply()
            def deliver(self, sender, recipients, message):
                out = {"mail": self.command("MAIL FROM:<%s>" % sender)[-1], "rcpt": [], "data": []}
                accepted = []
                for r in recipients:
                    reply = self.command("RCPT TO:<%s>" % r)[-1]
                    out["rcpt"].append(reply)
                    if reply.startswith("250"):
                        accepted.append(r)
                if not accepted:
                    out["data"] = [self.command("DATA")[-1]]
                    self.command("RSET")
                    return out
                out["go"] = self.command("DATA")[-1]
                body = message.replace(b"\\r\\n", b"\\n").replace(b"\\n", b"\\r\\n")
                stuffed = b"".join((b"." + l if l.startswith(b".") else l) for l in body.splitlines(keepends=True))
                self.f.write(stuffed + (b"" if stuffed.endswith(b"\\r\\n") else b"\\r\\n") + b".\\r\\n")
                self.f.flush()
                for r in accepted:
                    out["data"].append([r, self.reply()[-1]])
                return out

        plan = json.load(open(sys.argv[2]))
        results = []
        session = None
        for job in plan:
            message = open(job["file"], "rb").read() if "file" in job else job["message"].encode()
            for attempt in range(1200):
                try:
                    if session is None:
                        session = Session(sys.argv[1])
                    break
                except (OSError, EOFError):
                    session = None
                    time.sleep(0.05)
            try:
                results.append(session.deliver(job["from"], job["to"], message))
            except (OSError, EOFError) as e:
                results.append({"error": str(e)})
                session = None
        print(json.dumps(results))
        """

    func admin(_ server: ServerProcess, _ args: [String]) -> (Int32, String) {
        Build.run(Build.postern, ["admin"] + args + ["-c", server.configFile], cwd: server.dir.path)
    }

    func lmtpConfig(port: Int, socket: String? = nil) -> String {
        """
        data_dir = "./var"
        workers = 1
        [plugin.store-sqlite]
        [[listener]]
        name = "lmtp"
        address = "127.0.0.1"
        port = \(port)
        protocol = "lmtp"
        [listener.options]
        max_message_size = "2M"
        \(socket.map { "[[listener]]\nname = \"lmtp-unix\"\npath = \"\($0)\"\nprotocol = \"lmtp\"\n" } ?? "")
        """
    }

    func runClient(_ dir: TempDir, target: String, plan: [[String: Any]]) throws -> [[String: Any]] {
        let script = dir.write("lmtp_client.py", Self.client)
        let planFile = dir.path + "/plan-\(UUID().uuidString.prefix(6)).json"
        try JSONSerialization.data(withJSONObject: plan).write(to: URL(fileURLWithPath: planFile))
        let (code, output) = Build.run(try Build.tool("python3"), [script, target, planFile])
        guard code == 0, let line = output.split(separator: "\n").last,
              let results = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [[String: Any]] else {
            throw SystemError.message("client failed: \(output)")
        }
        return results
    }

    func testPerRecipientRepliesOverTCPAndUnixSocket() throws {
        let dir = TempDir("lmtp")
        let port = freePort()
        let socketPath = dir.path + "/lmtp.sock"
        let server = try ServerProcess.start(dir, lmtpConfig(port: port, socket: socketPath))
        defer { server.stop() }
        XCTAssertEqual(admin(server, ["domain", "add", "example.org"]).0, 0)
        for u in ["alice", "bob", "carol", "dave"] {
            XCTAssertEqual(admin(server, ["user", "add", "\(u)@example.org", "--password", "pw-\(u)"]).0, 0)
        }
        XCTAssertEqual(admin(server, ["quota", "set", "carol@example.org", "--storage", "100"]).0, 0)
        XCTAssertEqual(admin(server, ["user", "suspend", "dave@example.org"]).0, 0)

        let message = "From: sender@remote.example\r\nTo: alice@example.org\r\nMessage-ID: <one@test>\r\nSubject: hi\r\n\r\nline one\r\n.starts with a dot\r\n"
        let results = try runClient(dir, target: "127.0.0.1:\(port)", plan: [
            ["from": "sender@remote.example", "message": message,
             "to": ["alice@example.org", "bob+lists@EXAMPLE.org", "nobody@example.org", "dave@example.org", "x@elsewhere.example", "carol@example.org"]],
        ])
        let r = results[0]
        XCTAssertEqual(r["mail"] as? String, "250 2.1.0 sender ok")
        // The same named refusals (RecipientRefusal) as the SMTP server gives.
        XCTAssertEqual(r["rcpt"] as? [String], ["250 2.1.5 recipient ok", "250 2.1.5 recipient ok",
                                                "550 5.1.1 <nobody@example.org>: no such user here",
                                                "550 5.2.1 <dave@example.org>: mailbox disabled",
                                                "550 5.1.2 <x@elsewhere.example>: not a local domain", "250 2.1.5 recipient ok"])
        XCTAssertEqual(r["go"] as? String, "354 send the message, end with <CRLF>.<CRLF>")
        let data = (r["data"] as? [[String]]) ?? []
        XCTAssertEqual(data, [["alice@example.org", "250 2.0.0 delivered to alice@example.org"],
                              ["bob+lists@EXAMPLE.org", "250 2.0.0 delivered to bob@example.org"],
                              ["carol@example.org", "452 4.2.2 mailbox full"]])
        // Byte for byte what was sent (dot-unstuffed), in alice's and bob's INBOX.
        XCTAssertEqual(admin(server, ["message", "get", "alice@example.org", "1"]).1, message)
        XCTAssertEqual(admin(server, ["message", "get", "bob@example.org", "1"]).1, message)
        XCTAssertTrue(admin(server, ["message", "list", "carol@example.org"]).1.isEmpty)

        // The same over the Unix socket, with pipelined-looking back-to-back transactions.
        let overUnix = try runClient(dir, target: "unix:\(socketPath)", plan: [
            ["from": "", "message": "Message-ID: <two@test>\r\n\r\nbounce\r\n", "to": ["alice@example.org"]],
            ["from": "a@remote.example", "message": "Message-ID: <three@test>\r\n\r\nx\r\n", "to": ["bob@example.org"]],
        ])
        XCTAssertEqual((overUnix[0]["data"] as? [[String]])?.first?.last, "250 2.0.0 delivered to alice@example.org")
        XCTAssertEqual((overUnix[1]["data"] as? [[String]])?.first?.last, "250 2.0.0 delivered to bob@example.org")
        XCTAssertEqual(admin(server, ["message", "list", "alice@example.org"]).1,
                       "1\t\(message.utf8.count)\t-\t<one@test>\n2\t34\t-\t<two@test>\n")
        let check = admin(server, ["check"])
        XCTAssertEqual(check.0, 0, check.1)
        XCTAssertTrue(check.1.hasSuffix("checked 4 messages, 3 blobs: ok\n"), check.1)
    }

    /// Without a store the listener answers 421 and closes (it used to write before the
    /// connection was active, and the client heard nothing).
    func testNoStoreMeansNoService() throws {
        let dir = TempDir("lmtp-nostore")
        let port = freePort()
        let server = try ServerProcess.start(dir, "data_dir = \"./var\"\nworkers = 1\n[[listener]]\nname = \"lmtp\"\naddress = \"127.0.0.1\"\nport = \(port)\nprotocol = \"lmtp\"\n")
        defer { server.stop() }
        let c = try LineClient(port: port)
        XCTAssertEqual(try c.readLine(), "421 4.3.0 no message store configured")
    }

    /// A first start on an empty data directory with several workers: each opens the new store at
    /// the same moment, and all of them must come up (the schema is created by one at a time).
    func testFirstStartWithSeveralWorkersOnAnEmptyStore() throws {
        for round in 0..<3 {
            let dir = TempDir("lmtp-first-start-\(round)")
            let port = freePort()
            let server = try ServerProcess.start(dir, "data_dir = \"./var\"\nworkers = 4\n[plugin.store-sqlite]\n[[listener]]\nname = \"lmtp\"\naddress = \"127.0.0.1\"\nport = \(port)\nprotocol = \"lmtp\"\n")
            defer { server.stop() }
            var ready = 0
            for _ in 0..<200 {
                ready = (try? server.status())?.workers.filter { $0.state == "ready" }.count ?? 0
                if ready == 4 { break }
                usleep(50_000)
            }
            XCTAssertEqual(ready, 4, server.log)
            XCTAssertFalse(server.log.contains("already exists"), server.log)
        }
    }

    func testOversizeMessageAndProtocolErrors() throws {
        let dir = TempDir("lmtp-errors")
        let port = freePort()
        let server = try ServerProcess.start(dir, lmtpConfig(port: port))
        defer { server.stop() }
        XCTAssertEqual(admin(server, ["domain", "add", "example.org"]).0, 0)
        XCTAssertEqual(admin(server, ["user", "add", "alice@example.org", "--password", "pw"]).0, 0)
        let c = try LineClient(port: port)
        XCTAssertTrue(try c.readLine().hasPrefix("220 "))
        XCTAssertEqual(try c.command("MAIL FROM:<a@b.example>"), "503 5.5.1 LHLO first")
        XCTAssertEqual(try c.command("EHLO x"), "500 5.5.1 this is LMTP: use LHLO")
        try c.send("LHLO x")
        var lines: [String] = []
        repeat { lines.append(try c.readLine()) } while lines.last?.dropFirst(3).first == "-"
        XCTAssertEqual(lines.last, "250 SIZE 2097152")
        XCTAssertTrue(lines.contains("250-PIPELINING"))
        XCTAssertEqual(try c.command("RCPT TO:<alice@example.org>"), "503 5.5.1 MAIL first")
        XCTAssertEqual(try c.command("MAIL FROM:<a@b.example> SIZE=99999999"), "552 5.3.4 message too big for this server")
        XCTAssertEqual(try c.command("MAIL FROM:a@b.example"), "501 5.5.4 syntax error: expected FROM:<address>")
        XCTAssertEqual(try c.command("MAIL FROM:<a@b.example>"), "250 2.1.0 sender ok")
        XCTAssertEqual(try c.command("DATA"), "503 5.5.1 no valid recipients")
        XCTAssertEqual(try c.command("RCPT TO:<alice@example.org>"), "250 2.1.5 recipient ok")
        XCTAssertTrue(try c.command("DATA").hasPrefix("354 "))
        let line = String(repeating: "x", count: 1000) + "\r\n"
        for _ in 0..<2200 { try c.send(String(line.dropLast(2))) }
        XCTAssertEqual(try c.command("."), "552 5.3.4 message exceeds 2097152 bytes")
        XCTAssertEqual(try c.command("NOOP"), "250 2.0.0 ok", "the session goes on after an oversize message")
        XCTAssertEqual(try c.command("BOGUS"), "500 5.5.1 command not recognized")
        XCTAssertEqual(try c.command("QUIT"), "221 2.0.0 bye")
        XCTAssertTrue(admin(server, ["message", "list", "alice@example.org"]).1.isEmpty)
    }

    /// The acceptance test of the issue: SIGKILL of the delivering worker, again and again, during
    /// 200 deliveries. Every recipient that got 250 has the message after restart, none has it
    /// twice, and the store passes its integrity check.
    func testKilledWorkerLosesNoAcknowledgedDelivery() throws {
        let dir = TempDir("lmtp-kill")
        let port = freePort()
        let server = try ServerProcess.start(dir, lmtpConfig(port: port))
        defer { server.stop() }
        let users = (1...5).map { "u\($0)@example.org" }
        XCTAssertEqual(admin(server, ["domain", "add", "example.org"]).0, 0)
        for u in users { XCTAssertEqual(admin(server, ["user", "add", u, "--password", "pw"]).0, 0) }
        let body = String(repeating: "All work and no play makes Jack a dull boy.\r\n", count: 400)
        var plan: [[String: Any]] = []
        for i in 0..<200 {
            plan.append(["from": "load@remote.example", "to": (0..<3).map { users[(i + $0) % users.count] },
                         "message": "Message-ID: <m\(i)@test>\r\nSubject: \(i)\r\n\r\n\(body)"])
        }
        let killer = DispatchGroup()
        let lock = NSLock()
        var stop = false, kills = 0
        // Six kills at random moments, each once the previous replacement serves: the master's
        // crash-loop backoff (50 ms doubling) keeps the whole run to seconds.
        DispatchQueue.global().async(group: killer) {
            var done = 0
            while done < 6 {
                usleep(useconds_t(Int.random(in: 100_000...300_000)))
                lock.lock(); let finished = stop; lock.unlock()
                if finished { break }
                guard let status = try? server.status(), let worker = status.workers.first(where: { $0.state == "ready" }) else { continue }
                if kill(worker.pid, SIGKILL) == 0 {
                    done += 1
                    lock.lock(); kills = done; lock.unlock()
                }
            }
        }
        let results = try runClient(dir, target: "127.0.0.1:\(port)", plan: plan)
        lock.lock(); stop = true; lock.unlock()
        killer.wait()
        XCTAssertEqual(results.count, 200)

        var acknowledged = 0, interrupted = 0
        var expected: [String: Set<Int>] = [:]
        for (i, r) in results.enumerated() {
            if r["error"] != nil { interrupted += 1 }
            for pair in (r["data"] as? [[String]]) ?? [] where pair.count == 2 && pair[1].hasPrefix("250 ") {
                expected[pair[0], default: []].insert(i)
                acknowledged += 1
            }
        }
        // Wait for the worker to be back before reading the store through admin.
        for _ in 0..<200 where (try? server.status())?.workers.first?.state != "ready" { usleep(50_000) }
        var duplicates = 0, missing = 0, unacknowledgedButStored = 0
        for u in users {
            let listing = admin(server, ["message", "list", u]).1
            var seen: [Int: Int] = [:]
            for line in listing.split(separator: "\n") {
                let id = line.split(separator: "\t").last.map(String.init) ?? ""
                if let n = Int(id.dropFirst(2).dropLast(6)) { seen[n, default: 0] += 1 }
            }
            duplicates += seen.values.filter { $0 > 1 }.count
            missing += expected[u, default: []].filter { seen[$0] == nil }.count
            unacknowledgedButStored += seen.keys.filter { !expected[u, default: []].contains($0) }.count
        }
        XCTAssertEqual(missing, 0, "every 250 is on disk")
        XCTAssertEqual(duplicates, 0, "no recipient has a message twice")
        XCTAssertEqual(kills, 6, "the worker was killed during the run")
        XCTAssertGreaterThan(acknowledged, 300, "most deliveries went through")
        let check = admin(server, ["check"])
        XCTAssertEqual(check.0, 0, check.1)
        print("FIGURES lmtp-kill: 200 transactions x 3 recipients, \(kills) SIGKILLs, \(acknowledged) recipients acknowledged, \(interrupted) transactions cut, 0 lost, \(duplicates) duplicates, \(unacknowledgedButStored) stored without a 250 (the client would retry those)")
    }
}
