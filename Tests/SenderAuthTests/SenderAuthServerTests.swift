import Foundation
import PosternHost
import PluginCredentials
import PosternTestSupport
import XCTest
@testable import PosternSenderAuthCore

/// The `sender-auth` filter through the real binary: a throw-away unbound publishes the SPF,
/// DKIM and DMARC records of the domains below, Python's smtplib sends from 127.0.0.1 messages
/// signed here, and the queue shows what was kept, held or refused with which
/// Authentication-Results. One server and one unbound for the class.
final class SenderAuthServerTests: XCTestCase {
    nonisolated(unsafe) static var dns: UnboundServer?
    nonisolated(unsafe) static var server: FilterServer?
    nonisolated(unsafe) static var keys: [String: DKIMSigningKey] = [:]
    nonisolated(unsafe) static var setupError: (any Error)?
    static let keyDirectory = TempDir("sender-auth-keys")

    /// A DMARC case: who signs, what the envelope says, what is published, and what must happen.
    struct Case {
        enum Outcome: Equatable { case accepted, held, refused }
        var name: String
        var from: String
        var mailFrom: String
        /// The DKIM signing domain and key (`rsa` or `ed25519`), or none.
        var signer: (domain: String, key: String)?
        /// Breaks the signature after signing (a changed body).
        var tamper = false
        /// The DMARC result Authentication-Results must show.
        var dmarc: String
        var outcome: Outcome
        var extraFields = ""
    }

    /// Every case domain is its own registrable domain (`caseN.test`: `.test` is not in the
    /// Public Suffix List, so its default rule makes `caseN.test` the organisational domain).
    static let cases: [Case] = [
        Case(name: "SPF aligned", from: "case1.test", mailFrom: "bounce@case1.test", signer: nil, dmarc: "pass", outcome: .accepted),
        Case(name: "DKIM aligned, SPF fails", from: "case2.test", mailFrom: "x@case2.test", signer: ("case2.test", "rsa"), dmarc: "pass", outcome: .accepted),
        Case(name: "both aligned", from: "case3.test", mailFrom: "x@case3.test", signer: ("case3.test", "rsa"), dmarc: "pass", outcome: .accepted),
        Case(name: "nothing aligned, p=reject", from: "case4.test", mailFrom: "x@other.test", signer: nil, dmarc: "fail", outcome: .refused),
        Case(name: "nothing aligned, p=quarantine", from: "case5.test", mailFrom: "x@other.test", signer: nil, dmarc: "fail", outcome: .held),
        Case(name: "nothing aligned, p=none", from: "case6.test", mailFrom: "x@other.test", signer: nil, dmarc: "fail", outcome: .accepted),
        Case(name: "no DMARC record", from: "case7.test", mailFrom: "x@other.test", signer: nil, dmarc: "none", outcome: .accepted),
        Case(name: "relaxed SPF: envelope in a subdomain", from: "case8.test", mailFrom: "x@bounce.case8.test", signer: nil, dmarc: "pass", outcome: .accepted),
        Case(name: "strict SPF: envelope in a subdomain", from: "case9.test", mailFrom: "x@bounce.case9.test", signer: nil, dmarc: "fail", outcome: .refused),
        Case(name: "relaxed DKIM: d= the parent, record at the organisational domain", from: "sub.case10.test", mailFrom: "x@other.test",
             signer: ("case10.test", "rsa"), dmarc: "pass", outcome: .accepted),
        Case(name: "strict DKIM: d= the parent", from: "sub.case11.test", mailFrom: "x@other.test", signer: ("case11.test", "rsa"), dmarc: "fail", outcome: .refused),
        Case(name: "sp=none for a subdomain", from: "sub.case12.test", mailFrom: "x@other.test", signer: nil, dmarc: "fail", outcome: .accepted),
        Case(name: "sp=reject, p=none, subdomain", from: "sub.case13.test", mailFrom: "x@other.test", signer: nil, dmarc: "fail", outcome: .refused),
        Case(name: "sp=none does not cover the organisational domain", from: "case14.test", mailFrom: "x@other.test", signer: nil, dmarc: "fail", outcome: .refused),
        Case(name: "pct=0, p=reject: quarantine instead", from: "case15.test", mailFrom: "x@other.test", signer: nil, dmarc: "fail", outcome: .held),
        Case(name: "pct=0, p=quarantine: nothing", from: "case16.test", mailFrom: "x@other.test", signer: nil, dmarc: "fail", outcome: .accepted),
        Case(name: "pct=100, p=quarantine", from: "case17.test", mailFrom: "x@other.test", signer: nil, dmarc: "fail", outcome: .held),
        Case(name: "DKIM passes for another domain", from: "case18.test", mailFrom: "x@other.test", signer: ("other.test", "rsa"), dmarc: "fail", outcome: .refused),
        Case(name: "aligned DKIM broken in transit", from: "case19.test", mailFrom: "x@other.test", signer: ("case19.test", "rsa"), tamper: true,
             dmarc: "fail", outcome: .refused),
        Case(name: "two DMARC records: none", from: "case20.test", mailFrom: "x@other.test", signer: nil, dmarc: "none", outcome: .accepted),
        Case(name: "record without v=DMARC1 first: none", from: "case21.test", mailFrom: "x@other.test", signer: nil, dmarc: "none", outcome: .accepted),
        Case(name: "DMARC lookup fails: temperror, accepted", from: "x.servfail.test", mailFrom: "x@other.test", signer: nil, dmarc: "temperror", outcome: .accepted),
        Case(name: "subdomain without a record falls back to the organisational p=", from: "sub.case23.test", mailFrom: "x@other.test",
             signer: nil, dmarc: "fail", outcome: .held),
        Case(name: "From domain in capitals", from: "CASE24.TEST", mailFrom: "x@case24.test", signer: nil, dmarc: "pass", outcome: .accepted),
        Case(name: "SPF softfail does not align", from: "case25.test", mailFrom: "x@case25.test", signer: nil, dmarc: "fail", outcome: .refused),
        Case(name: "Ed25519 DKIM aligned", from: "case26.test", mailFrom: "x@other.test", signer: ("case26.test", "ed25519"), dmarc: "pass", outcome: .accepted),
        Case(name: "SPF fails, DKIM aligned: pass", from: "case27.test", mailFrom: "x@case27.test", signer: ("case27.test", "ed25519"), dmarc: "pass", outcome: .accepted),
        Case(name: "p=reject but DKIM and SPF both aligned in a subdomain", from: "a.b.case28.test", mailFrom: "x@case28.test",
             signer: ("b.case28.test", "rsa"), dmarc: "pass", outcome: .accepted),
        Case(name: "quarantine with rua: still held", from: "case29.test", mailFrom: "x@other.test", signer: nil, dmarc: "fail", outcome: .held),
        Case(name: "uppercase tags and spaces in the record", from: "case30.test", mailFrom: "x@other.test", signer: nil, dmarc: "fail", outcome: .refused),
        Case(name: "unknown tags are ignored", from: "case31.test", mailFrom: "x@case31.test", signer: nil, dmarc: "pass", outcome: .accepted),
    ]

    /// SPF: case1, case8 (and its bounce subdomain), case9, case24, case28, case31 allow
    /// 127.0.0.1; other.test allows it too (unaligned for everyone); case2, case3, case27 refuse
    /// it; case25 soft-fails it.
    static func zones(keys: [String: [String]]) -> String {
        var lines: [String] = []
        func zone(_ name: String) {
            lines.append(#"local-zone: "\#(name)." static"#)
            lines.append(#"local-data: "\#(name). 300 IN SOA ns.\#(name). hostmaster.\#(name). 1 3600 600 86400 60""#)
        }
        func txt(_ name: String, _ strings: [String]) {
            lines.append("local-data: '\(name). 300 IN TXT " + strings.map { "\"\($0)\"" }.joined(separator: " ") + "'")
        }
        zone("other.test")
        // The HELO name of the test client: no SPF record (an answer, not a time-out upstream).
        zone("test.example")
        txt("other.test", ["v=spf1 ip4:127.0.0.1 -all"])
        for n in 1...31 { zone("case\(n).test") }
        for name in ["case1.test", "case8.test", "bounce.case8.test", "bounce.case9.test", "case9.test", "case24.test", "case28.test", "case31.test"] {
            txt(name, ["v=spf1 ip4:127.0.0.1 -all"])
        }
        for name in ["case2.test", "case3.test", "case27.test"] { txt(name, ["v=spf1 -all"]) }
        txt("case25.test", ["v=spf1 ~all"])
        let dmarc: [String: String] = [
            "case1.test": "v=DMARC1; p=reject", "case2.test": "v=DMARC1; p=reject", "case3.test": "v=DMARC1; p=reject",
            "case4.test": "v=DMARC1; p=reject", "case5.test": "v=DMARC1; p=quarantine", "case6.test": "v=DMARC1; p=none",
            "case8.test": "v=DMARC1; p=reject", "case9.test": "v=DMARC1; p=reject; aspf=s",
            "case10.test": "v=DMARC1; p=reject", "case11.test": "v=DMARC1; p=reject; adkim=s",
            "case12.test": "v=DMARC1; p=reject; sp=none", "case13.test": "v=DMARC1; p=none; sp=reject",
            "case14.test": "v=DMARC1; p=reject; sp=none", "case15.test": "v=DMARC1; p=reject; pct=0",
            "case16.test": "v=DMARC1; p=quarantine; pct=0", "case17.test": "v=DMARC1; p=quarantine; pct=100",
            "case18.test": "v=DMARC1; p=reject", "case19.test": "v=DMARC1; p=reject",
            "case21.test": "p=reject; v=DMARC1", "case23.test": "v=DMARC1; p=quarantine",
            "case24.test": "v=DMARC1; p=reject", "case25.test": "v=DMARC1; p=reject",
            "case26.test": "v=DMARC1; p=reject", "case27.test": "v=DMARC1; p=reject", "case28.test": "v=DMARC1; p=reject",
            "case29.test": "v=DMARC1; p=quarantine; rua=mailto:dmarc@case29.test",
            "case30.test": "v=DMARC1 ;  p = reject ; ADKIM=r", "case31.test": "v=DMARC1; p=reject; future=1; xthing=y",
        ]
        for (domain, record) in dmarc.sorted(by: { $0.key < $1.key }) { txt("_dmarc." + domain, [record]) }
        txt("_dmarc.case20.test", ["v=DMARC1; p=reject"])
        txt("_dmarc.case20.test", ["v=DMARC1; p=none"])
        for (name, strings) in keys.sorted(by: { $0.key < $1.key }) { txt(name, strings) }
        return lines.map { "  " + $0 }.joined(separator: "\n")
    }

    /// The listener `mx` enforces DMARC and records SPF; `strict` refuses SPF fail at RCPT; `out`
    /// takes authenticated mail (not verified). The rules filter scores `dkim=fail`.
    static let plugins = """
        [plugin.sender-auth]
        trusted_networks = []
        [plugin.sender-auth.listeners.strict]
        spf = "reject"
        [plugin.sender-auth.listeners.junk]
        dmarc = "junk"
        [plugin.filter-rules]
        trusted_networks = []
        [[plugin.filter-rules.sets]]
        name = "auth"
        tag = 5.0
        [[plugin.filter-rules.sets.rules]]
        name = "DKIM_FAIL"
        score = 6.0
        header = "Authentication-Results"
        pattern = 'dkim=fail'
        """

    override class func setUp() {
        super.setUp()
        do {
            var records: [String: [String]] = [:]
            var signingDomains = Set(cases.compactMap { $0.signer.map { "\($0.key):\($0.domain)" } })
            signingDomains.insert("rsa:case19.test")
            for entry in signingDomains.sorted() {
                let parts = entry.split(separator: ":").map(String.init)
                let algorithm: DKIMKeyGeneration.Algorithm = parts[0] == "rsa" ? .rsa : .ed25519
                let path = keyDirectory.path + "/\(parts[1]).\(parts[0]).pem"
                let result = try DKIMSigningKey.generate(domain: parts[1], selector: "s1", algorithm: algorithm, path: path)
                records["s1._domainkey.\(parts[1])"] = result.strings
                keys[entry] = try DKIMSigningKey.load(path: path)
            }
            let dns = try UnboundServer(zones: zones(keys: records))
            self.dns = dns
            server = try FilterServer("sender-auth", plugins: """
                [plugin.dns]
                nameservers = ["\(dns.address)"]
                \(plugins)
                """, listeners: [("mx", "filters = [\"sender-auth\", \"rules\"]"), ("strict", "filters = [\"sender-auth\"]"), ("junk", "filters = [\"sender-auth\"]"),
                                 ("out", "mode = \"submission\"\nallow_plaintext_auth_on_loopback = true\nfilters = [\"sender-auth\"]\ndirection = \"outbound\"")])
        } catch {
            setupError = error
        }
    }

    override class func tearDown() {
        server?.stop()
        dns?.stop()
        super.tearDown()
    }

    func running() throws -> FilterServer {
        if let e = Self.setupError { throw e }
        return try XCTUnwrap(Self.server)
    }

    static func message(from: String, subject: String, body: String, extraFields: String = "") -> [UInt8] {
        Array("""
            Date: Mon, 7 Dec 2026 10:00:00 +0000\r
            Message-ID: <\(UUID().uuidString)@client.test.example>\r
            From: Sender <sender@\(from)>\r
            To: rcpt@a.example\r
            Subject: \(subject)\r
            \(extraFields)MIME-Version: 1.0\r
            Content-Type: text/plain; charset=utf-8\r
            \r
            \(body)\r

            """.utf8)
    }

    static func signed(_ message: [UInt8], domain: String, key: String) throws -> [UInt8] {
        let signer = DKIMSigner(domain: domain, selector: "s1", key: try XCTUnwrap(keys["\(key):\(domain)"]))
        var field = try signer.signatureField(for: message, now: Date())
        if !field.hasSuffix("\r\n") { field += "\r\n" }
        return Array(field.utf8) + message
    }

    /// The Authentication-Results Postern wrote (the field right under its Received), unfolded.
    static func results(in message: String) -> String? {
        let unfolded = message.replacingOccurrences(of: "\r\n\t", with: " ").replacingOccurrences(of: "\r\n ", with: " ")
        return unfolded.components(separatedBy: "\r\n").first { $0.hasPrefix("Authentication-Results: mx.test.example;") }
    }

    func testDMARCDispositionsEndToEnd() throws {
        let s = try running()
        var failures: [String] = []
        var sent: [(c: Case, marker: String, output: String)] = []
        for c in Self.cases {
            let marker = "dmarc-\(UUID().uuidString)"
            var message = Self.message(from: c.from, subject: c.name, body: marker, extraFields: c.extraFields)
            if let signer = c.signer { message = try Self.signed(message, domain: signer.domain, key: signer.key) }
            if c.tamper { message += Array("tampered\r\n".utf8) }
            sent.append((c, marker, try s.send("mx", from: c.mailFrom, to: ["rcpt@a.example"], message: message)))
        }
        // The queue read once for all the cases.
        let entries = try s.queuedEntries()
        for (c, marker, output) in sent {
            let entry = entries.first { String(decoding: $0.message, as: UTF8.self).contains(marker) }
            let outcome: Case.Outcome
            if output.contains("DATA 550") && entry == nil {
                outcome = .refused
            } else if output.contains("DATA 250"), let entry {
                outcome = entry.summary["holdReason"] is String ? .held : .accepted
                let text = String(decoding: entry.message, as: UTF8.self)
                let results = Self.results(in: text) ?? "(none)"
                if !results.contains("dmarc=\(c.dmarc)") { failures.append("\(c.name): expected dmarc=\(c.dmarc) in \(results)") }
            } else {
                failures.append("\(c.name): unexpected \(output)")
                continue
            }
            if outcome != c.outcome { failures.append("\(c.name): \(outcome), expected \(c.outcome): \(output)") }
        }
        XCTAssertEqual(failures, [], failures.joined(separator: "\n"))
        XCTAssertGreaterThanOrEqual(Self.cases.count, 30)
    }

    func testResultsFieldsForgedOnesRemovedAndRulesSeeThem() throws {
        let s = try running()
        let marker = "forged-\(UUID().uuidString)"
        var message = Self.message(from: "case19.test", subject: "forged", body: marker,
                                   extraFields: "Authentication-Results: mx.test.example; dkim=pass header.d=case19.test\r\n"
                                       + "Authentication-Results: elsewhere.example; spf=pass\r\n")
        message = try Self.signed(message, domain: "case19.test", key: "rsa")
        message += Array("tampered\r\n".utf8)
        let output = try s.send("mx", from: "x@other.test", to: ["rcpt@a.example"], message: message)
        XCTAssertTrue(output.contains("DATA 550 5.7.1"), output)
        XCTAssertNil(try s.queuedEntry(containing: marker))

        // A message that passes, with a forged field claiming our authserv-id: only ours is left.
        let passing = "pass-\(UUID().uuidString)"
        var good = Self.message(from: "case3.test", subject: "good", body: passing,
                                extraFields: "Authentication-Results: mx.test.example; dmarc=pass (forged)\r\n"
                                    + "Authentication-Results: elsewhere.example; spf=pass\r\n")
        good = try Self.signed(good, domain: "case3.test", key: "rsa")
        XCTAssertTrue(try s.send("mx", from: "x@case3.test", to: ["rcpt@a.example"], message: good).contains("DATA 250"))
        let text = String(decoding: try XCTUnwrap(try s.queuedEntry(containing: passing)).message, as: UTF8.self)
        XCTAssertFalse(text.contains("(forged)"), text)
        XCTAssertTrue(text.contains("Authentication-Results: elsewhere.example; spf=pass\r\n"), text)
        let results = try XCTUnwrap(Self.results(in: text), text)
        XCTAssertTrue(results.contains("spf=fail smtp.mailfrom=x@case3.test"), results)
        XCTAssertTrue(results.contains("dkim=pass header.d=case3.test header.s=s1"), results)
        XCTAssertTrue(results.contains("dmarc=pass header.from=case3.test"), results)
        XCTAssertTrue(text.contains("Received-SPF: fail"), text)
        XCTAssertTrue(text.contains("X-Spam-Status: No"), text)

        // DKIM broken, DMARC only p=none: kept, and the rules filter scored the failure.
        let scored = "scored-\(UUID().uuidString)"
        var broken = Self.message(from: "case6.test", subject: "broken", body: scored)
        broken = try Self.signed(broken, domain: "case19.test", key: "rsa")
        broken += Array("tampered\r\n".utf8)
        XCTAssertTrue(try s.send("mx", from: "x@other.test", to: ["rcpt@a.example"], message: broken).contains("DATA 250"))
        let scoredText = String(decoding: try XCTUnwrap(try s.queuedEntry(containing: scored)).message, as: UTF8.self)
        XCTAssertTrue(scoredText.contains("tests=DKIM_FAIL"), scoredText)
        XCTAssertTrue(try XCTUnwrap(Self.results(in: scoredText)).contains("dkim=fail reason=\"body hash did not verify\""), scoredText)
    }

    func testSPFFailRefusedAtRCPTWhereTheListenerSaysSo() throws {
        let s = try running()
        let marker = "spf-\(UUID().uuidString)"
        let message = Self.message(from: "case2.test", subject: "spf", body: marker)
        let strict = try s.send("strict", from: "x@case2.test", to: ["rcpt@a.example"], message: message)
        XCTAssertTrue(strict.contains("RCPT 550 5.7.23"), strict)
        XCTAssertNil(try s.queuedEntry(containing: marker))
        // A null sender is checked by its HELO name (client.test.example: no SPF record, none).
        let bounce = "bounce-\(UUID().uuidString)"
        let output = try s.send("strict", from: "", to: ["rcpt@a.example"], message: Self.message(from: "case7.test", subject: "dsn", body: bounce))
        XCTAssertTrue(output.contains("DATA 250"), output)
        let text = String(decoding: try XCTUnwrap(try s.queuedEntry(containing: bounce)).message, as: UTF8.self)
        let results = try XCTUnwrap(Self.results(in: text), text)
        XCTAssertTrue(results.contains("spf=none reason=\"no SPF record at client.test.example\" smtp.helo=client.test.example"), results)
        XCTAssertTrue(text.contains("Received-SPF: none"), text)
    }

    func testAuthenticatedMailIsNotVerified() throws {
        let s = try running()
        let marker = "auth-\(UUID().uuidString)"
        let output = try s.send("out", from: "alice@example.org", to: ["someone@case4.test"],
                                message: Self.message(from: "case4.test", subject: "out", body: marker), login: true)
        XCTAssertTrue(output.contains("DATA 250"), output)
        let text = String(decoding: try XCTUnwrap(try s.queuedEntry(containing: marker)).message, as: UTF8.self)
        XCTAssertNil(Self.results(in: text), text)
        XCTAssertFalse(text.contains("Received-SPF"), text)
    }

    /// A `junk` listener files p=quarantine failures into the recipient's Junk mailbox (the
    /// account's special-use \\Junk, made with it) and still refuses p=reject ones.
    func testJunkListenerFilesQuarantinedMailIntoJunk() throws {
        let s = try running()
        let marker = "junk-\(UUID().uuidString)"
        let output = try s.send("junk", from: "x@other.test", to: ["alice@example.org"],
                                message: Self.message(from: "case5.test", subject: "junk", body: marker))
        XCTAssertTrue(output.contains("DATA 250"), output)
        /// The texts of the messages in one of alice's mailboxes.
        func messages(_ mailbox: String) -> [String] {
            let list = Build.run(Build.postern, ["admin", "message", "list", "alice@example.org", "--mailbox", mailbox,
                                                 "-c", s.server.configFile], cwd: s.dir.path).output
            var texts: [String] = []
            for line in list.split(separator: "\n") {
                guard let uid = line.split(separator: "\t").first.map(String.init), Int(uid) != nil else { continue }
                let arguments = ["admin", "message", "get", "alice@example.org", uid, "--mailbox", mailbox, "-c", s.server.configFile]
                texts.append(Build.run(Build.postern, arguments, cwd: s.dir.path).output)
            }
            return texts
        }
        let deadline = Date().addingTimeInterval(30)
        while !messages("Junk").contains(where: { $0.contains(marker) }) && Date() < deadline { usleep(300_000) }
        XCTAssertTrue(messages("Junk").contains { $0.contains(marker) }, s.server.log)
        XCTAssertFalse(messages("INBOX").contains { $0.contains(marker) })
        let refused = try s.send("junk", from: "x@other.test", to: ["alice@example.org"],
                                 message: Self.message(from: "case4.test", subject: "refused", body: "r-\(marker)"))
        XCTAssertTrue(refused.contains("DATA 550 5.7.1"), refused)
    }
}
