import Foundation
import PosternHost
import PosternTestSupport
import XCTest

/// Two Posterns on loopback, one unbound: `forwarder.test` (A) signs its users' mail with DKIM
/// and seals what its alias forwards with ARC; `b.test` (B) verifies both. A's smtp transport
/// finds B through the MX of b.test. Keys are made with `postern admin dkim keygen`, and dkimpy
/// checks what B received, as a receiver elsewhere would.
final class ForwardingTests: XCTestCase {
    struct Site {
        let dir: TempDir
        let server: ServerProcess
        let ports: [String: Int]
    }

    nonisolated(unsafe) static var dns: UnboundServer?
    nonisolated(unsafe) static var forwarder: Site?
    nonisolated(unsafe) static var receiver: Site?
    nonisolated(unsafe) static var records: [String: String] = [:]
    nonisolated(unsafe) static var setupError: (any Error)?
    static let origin = TempDir("sender-auth-origin")

    /// The zones: both sites' SPF allow 127.0.0.1, so does origin.test (the outside sender);
    /// each publishes DMARC p=reject; DKIM and ARC keys from the records made in setUp.
    static func zones(_ records: [String: String]) -> String {
        var lines: [String] = []
        for zone in ["origin.test", "forwarder.test", "b.test", "test.example"] {
            lines.append(#"local-zone: "\#(zone)." static"#)
            lines.append(#"local-data: "\#(zone). 300 IN SOA ns.\#(zone). hostmaster.\#(zone). 1 3600 600 86400 60""#)
        }
        for domain in ["origin.test", "forwarder.test", "b.test"] {
            lines.append(#"local-data: '\#(domain). 300 IN TXT "v=spf1 ip4:127.0.0.1 -all"'"#)
            lines.append(#"local-data: '_dmarc.\#(domain). 300 IN TXT "v=DMARC1; p=reject"'"#)
        }
        lines.append(#"local-data: "b.test. 300 IN MX 10 mx.b.test.""#)
        lines.append(#"local-data: "mx.b.test. 300 IN A 127.0.0.1""#)
        for (name, record) in records.sorted(by: { $0.key < $1.key }) {
            let strings = stride(from: 0, to: record.count, by: 255).map { start -> String in
                let from = record.index(record.startIndex, offsetBy: start)
                return String(record[from..<(record.index(from, offsetBy: 255, limitedBy: record.endIndex) ?? record.endIndex)])
            }
            lines.append("local-data: '\(name). 300 IN TXT " + strings.map { "\"\($0)\"" }.joined(separator: " ") + "'")
        }
        return lines.map { "  " + $0 }.joined(separator: "\n")
    }

    /// A key made by the binary, as an administrator would: its record for the zone.
    static func keygen(_ dir: TempDir, domain: String, selector: String, algorithm: String = "rsa") throws -> String {
        let config = dir.write("keygen.toml", "data_dir = \"./var\"\n")
        let (code, output) = Build.run(Build.postern, ["admin", "dkim", "keygen", domain, selector, "--algorithm", algorithm,
                                                       "--json", "-c", config], cwd: dir.path)
        guard code == 0, let object = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any],
              let record = object["record"] as? String else {
            throw SystemError.message("postern admin dkim keygen \(domain) \(selector): \(output)")
        }
        return record
    }

    static func start(_ dir: TempDir, _ config: String, listeners: [(name: String, options: String)],
                      setup: [[String]]) throws -> Site {
        var text = config
        var ports: [String: Int] = [:]
        for listener in listeners {
            let port = freePort()
            ports[listener.name] = port
            text += """

                [[listener]]
                name = "\(listener.name)"
                address = "127.0.0.1"
                port = \(port)
                protocol = "smtp"
                [listener.options]
                \(listener.options)
                """
        }
        let server = try ServerProcess.start(dir, text)
        for args in setup {
            let (code, output) = Build.run(Build.postern, ["admin"] + args + ["-c", server.configFile], cwd: dir.path)
            guard code == 0 else { throw SystemError.message("postern admin \(args): \(output)") }
        }
        return Site(dir: dir, server: server, ports: ports)
    }

    override class func setUp() {
        super.setUp()
        do {
            let a = TempDir("sender-auth-forwarder"), b = TempDir("sender-auth-receiver")
            records["s1._domainkey.forwarder.test"] = try keygen(a, domain: "forwarder.test", selector: "s1")
            records["arc._domainkey.forwarder.test"] = try keygen(a, domain: "forwarder.test", selector: "arc")
            records["s1._domainkey.origin.test"] = try keygen(origin, domain: "origin.test", selector: "s1")
            let dns = try UnboundServer(zones: zones(records))
            self.dns = dns
            let receiver = try start(b, """
                data_dir = "./var"
                workers = 1
                [plugin.store-sqlite]
                [plugin.queue]
                [plugin.dns]
                nameservers = ["\(dns.address)"]
                [plugin.smtp]
                hostname = "mx.b.test"
                [plugin.sender-auth]
                trusted_networks = []
                """, listeners: [("mx", "filters = [\"sender-auth\"]")],
                setup: [["domain", "add", "b.test"], ["user", "add", "bob@b.test", "--password", "bob-pw"]])
            self.receiver = receiver
            forwarder = try start(a, """
                data_dir = "./var"
                workers = 1
                [plugin.store-sqlite]
                [plugin.sasl-plain]
                [plugin.queue]
                min_backoff = "1s"
                max_backoff = "2s"
                [plugin.dns]
                nameservers = ["\(dns.address)"]
                [plugin.smtp-client]
                hostname = "mx.forwarder.test"
                port = \(receiver.ports["mx"]!)
                [plugin.smtp]
                hostname = "mx.forwarder.test"
                [plugin.sender-auth]
                authserv_id = "mx.forwarder.test"
                trusted_networks = []
                [[plugin.sender-auth.dkim]]
                domain = "forwarder.test"
                selector = "s1"
                key_file = "dkim/forwarder.test.s1.key"
                [plugin.sender-auth.arc]
                domain = "forwarder.test"
                selector = "arc"
                key_file = "dkim/forwarder.test.arc.key"
                """, listeners: [("mx", "filters = [\"sender-auth\"]"),
                                 ("submission", "mode = \"submission\"\nallow_plaintext_auth_on_loopback = true\ndirection = \"outbound\"\nfilters = [\"sender-auth\"]")],
                setup: [["domain", "add", "forwarder.test"], ["user", "add", "alice@forwarder.test", "--password", "alice-pw"],
                        ["alias", "add", "list@forwarder.test", "bob@b.test"]])
        } catch {
            setupError = error
        }
    }

    override class func tearDown() {
        forwarder?.server.stop()
        receiver?.server.stop()
        dns?.stop()
        super.tearDown()
    }

    func sites() throws -> (forwarder: Site, receiver: Site) {
        if let e = Self.setupError { throw e }
        return (try XCTUnwrap(Self.forwarder), try XCTUnwrap(Self.receiver))
    }

    /// Sends with smtplib (logged in as alice when `login`); the reply to DATA.
    func send(_ site: Site, _ listener: String, from: String, to: String, message: [UInt8], login: Bool = false) throws -> String {
        let file = site.dir.write("message-\(UUID().uuidString.prefix(6)).eml", message)
        let script = site.dir.write("send.py", """
            import smtplib, sys
            s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=60)
            s.ehlo("client.test.example")
            if sys.argv[5] == "1":
                s.login("alice@forwarder.test", "alice-pw")
            try:
                s.sendmail(sys.argv[2], [sys.argv[3]], open(sys.argv[4], "rb").read())
                print("DATA 250")
            except smtplib.SMTPException as e:
                print("refused", e)
            s.quit()
            """)
        return Build.run(try Build.tool("python3"), [script, "\(site.ports[listener]!)", from, to, file, login ? "1" : "0"]).output
    }

    /// The stored message of bob@b.test whose text holds `marker`, waiting for it to arrive.
    func delivered(_ site: Site, containing marker: String) throws -> String? {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let list = Build.run(Build.postern, ["admin", "message", "list", "bob@b.test", "-c", site.server.configFile], cwd: site.dir.path).output
            for line in list.split(separator: "\n") {
                guard let uid = line.split(separator: "\t").first else { continue }
                let text = Build.run(Build.postern, ["admin", "message", "get", "bob@b.test", String(uid), "-c", site.server.configFile],
                                     cwd: site.dir.path).output
                if text.contains(marker) { return text }
            }
            usleep(300_000)
        }
        return nil
    }

    /// dkimpy's verdicts on a message: DKIM (the first signature) and the ARC chain's cv.
    func dkimpy(_ message: String) throws -> (dkim: Bool, arc: String) {
        let keys = Self.records.map { "\"\($0.key).\": \"\($0.value)\"" }.joined(separator: ", ")
        let script = Self.origin.write("verify.py", """
            import sys, dkim
            keys = {\(keys)}
            def dns(name, timeout=5):
                value = keys.get(name.decode())
                return value.encode() if value else None
            data = open(sys.argv[1], "rb").read()
            ok = dkim.verify(data, dnsfunc=dns)
            cv, results, reason = dkim.arc_verify(data, dnsfunc=dns)
            print("dkim=%s arc=%s %s" % ("pass" if ok else "fail", cv.decode() if isinstance(cv, bytes) else cv, reason))
            """)
        let file = Self.origin.write("check-\(UUID().uuidString.prefix(6)).eml", message)
        guard FileManager.default.fileExists(atPath: "/usr/bin/python3") else { throw SystemError.message("/usr/bin/python3 (python3-dkim) missing") }
        let output = Build.run("/usr/bin/python3", [script, file]).output
        return (output.contains("dkim=pass"), output.split(separator: " ").first { $0.hasPrefix("arc=") }.map { String($0.dropFirst(4)) } ?? output)
    }

    static func message(from: String, to: String, subject: String, body: String) -> [UInt8] {
        Array("""
            Date: Mon, 7 Dec 2026 10:00:00 +0000\r
            Message-ID: <\(UUID().uuidString)@client.test.example>\r
            From: \(from)\r
            To: \(to)\r
            Subject: \(subject)\r
            MIME-Version: 1.0\r
            Content-Type: text/plain; charset=utf-8\r
            \r
            \(body)\r

            """.utf8)
    }

    func unfolded(_ text: String) -> String {
        text.replacingOccurrences(of: "\r\n\t", with: " ").replacingOccurrences(of: "\r\n ", with: " ")
    }

    /// alice's mail leaves A signed for forwarder.test; B and dkimpy find the signature good.
    func testOutboundMailIsSignedAndVerifiesAtTheNextHop() throws {
        let (a, b) = try sites()
        let marker = "signed-\(UUID().uuidString)"
        let output = try send(a, "submission", from: "alice@forwarder.test", to: "bob@b.test",
                              message: Self.message(from: "Alice <alice@forwarder.test>", to: "bob@b.test", subject: "signed", body: marker), login: true)
        XCTAssertTrue(output.contains("DATA 250"), output)
        let text = try XCTUnwrap(try delivered(b, containing: marker), "not delivered to B: \(b.server.log)\n\(a.server.log)")
        let flat = unfolded(text)
        XCTAssertTrue(flat.contains("DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=forwarder.test; s=s1;"), text)
        XCTAssertTrue(flat.contains("dkim=pass header.d=forwarder.test header.s=s1"), text)
        XCTAssertTrue(flat.contains("dmarc=pass header.from=forwarder.test"), text)
        XCTAssertFalse(text.contains("ARC-Seal"), "mail of our own users is not sealed: \(text)")
        XCTAssertTrue(try dkimpy(text).dkim, text)
    }

    /// Mail from outside to A's alias is verified at A, sealed on its way to B, and B (and
    /// dkimpy) find the chain good: arc=pass.
    func testForwardedMailIsSealedAndTheChainVerifiesAtTheNextHop() throws {
        let (a, b) = try sites()
        let marker = "forwarded-\(UUID().uuidString)"
        var message = Self.message(from: "Olga <olga@origin.test>", to: "list@forwarder.test", subject: "to the list", body: marker)
        let sign = Self.origin.write("sign.py", """
            import sys, dkim
            data = open(sys.argv[1], "rb").read()
            key = open(sys.argv[2], "rb").read()
            sys.stdout.buffer.write(dkim.sign(data, b"s1", b"origin.test", key, include_headers=[b"from", b"to", b"subject", b"date"]) + data)
            """)
        let unsigned = Self.origin.write("unsigned.eml", message)
        let signed = Build.runBytes("/usr/bin/python3", [sign, unsigned, Self.origin.path + "/var/dkim/origin.test.s1.key"], cwd: nil,
                                    environment: ProcessInfo.processInfo.environment)
        message = [UInt8](signed.stdout)
        XCTAssertTrue(String(decoding: message, as: UTF8.self).hasPrefix("DKIM-Signature:"), String(decoding: message, as: UTF8.self))
        let output = try send(a, "mx", from: "olga@origin.test", to: "list@forwarder.test", message: message)
        XCTAssertTrue(output.contains("DATA 250"), output)
        let text = try XCTUnwrap(try delivered(b, containing: marker), "not delivered to B: \(b.server.log)\n\(a.server.log)")
        let flat = unfolded(text)
        XCTAssertTrue(flat.contains("ARC-Seal: i=1; a=rsa-sha256;"), text)
        XCTAssertTrue(flat.contains("cv=none; d=forwarder.test; s=arc;"), text)
        XCTAssertTrue(flat.contains("ARC-Authentication-Results: i=1; mx.forwarder.test;"), text)
        // A's own results, copied into the set: what A found when the message came in.
        XCTAssertTrue(flat.contains("dkim=pass header.d=origin.test"), text)
        let results = try XCTUnwrap(flat.components(separatedBy: "\r\n").first { $0.hasPrefix("Authentication-Results: mx.b.test;") }, text)
        XCTAssertTrue(results.contains("arc=pass"), results)
        XCTAssertTrue(results.contains("dkim=pass header.d=origin.test"), results)
        XCTAssertTrue(results.contains("dmarc=pass header.from=origin.test"), results)
        XCTAssertEqual(try dkimpy(text).arc, "pass", text)
    }
}
