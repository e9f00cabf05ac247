import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import PluginAPI
import PluginCredentials
@testable import PosternAdminCore
import PosternTestSupport
import XCTest

/// The admin plugin's parts without a server: who sees what, request bodies, CSV, rate limits,
/// sessions and tokens.
final class AdminPartsTests: XCTestCase {
    func account(_ name: String, _ level: String) -> AccountInfo {
        AccountInfo(name: name, enabled: true, adminLevel: level, quotaBytes: nil, quotaMessages: nil, bytesUsed: 0, messagesUsed: 0,
                    partition: "/", created: 0)
    }

    func testADomainAdministratorSeesTheirDomainsOnly() {
        let boss = Principal.of(account("boss@A.example", "domain-admin"), delegated: ["C.example"], via: "token:x")
        XCTAssertEqual(boss.role, .domainAdmin)
        XCTAssertEqual(boss.domains, ["a.example", "c.example"])
        XCTAssertTrue(boss.sees(domain: "A.EXAMPLE"))
        XCTAssertTrue(boss.sees(address: "x@c.example"))
        XCTAssertTrue(boss.sees(address: "@a.example"), "the catch-all of their domain")
        XCTAssertFalse(boss.sees(domain: "b.example"))
        XCTAssertFalse(boss.sees(address: "bob@b.example"))
        XCTAssertFalse(boss.sees(address: "a.example"), "no @: not an address of theirs")
        XCTAssertFalse(boss.sees(address: "x@"))
        // A subdomain or a look-alike is another domain.
        XCTAssertFalse(boss.sees(address: "x@sub.a.example"))
        XCTAssertFalse(boss.sees(address: "x@a.example.evil"))

        let site = Principal.of(account("root@a.example", "site-admin"), delegated: ["ignored.example"], via: "session:y")
        XCTAssertTrue(site.sees(domain: "anything.example"))
        XCTAssertEqual(site.domains, [], "site administrators are not limited to domains")
        let user = Principal.of(account("alice@a.example", "user"), delegated: ["a.example"], via: "session:z")
        XCTAssertFalse(user.sees(domain: "a.example"))
        XCTAssertEqual(Principal.of(account("odd@a.example", "superuser"), delegated: [], via: "t").role, .user, "an unknown level is no level")
    }

    func testQueuedMessagesAreSeenThroughTheirSenderOrRecipients() {
        let boss = Principal.of(account("boss@a.example", "domain-admin"), delegated: [], via: "t")
        func entry(_ sender: String, _ recipients: [String]) -> QueueSummary {
            let json = """
                {"id": "Q1", "queue": "deferred", "sender": "\(sender)", "size": 10, "arrival": 0, "attempts": 1,
                 "pending": [\(recipients.map { "{\"address\": \"\($0)\"}" }.joined(separator: ","))]}
                """
            return try! JSONDecoder().decode(QueueSummary.self, from: Data(json.utf8))
        }
        XCTAssertEqual(boss.view(of: entry("x@a.example", ["y@b.example"]))?.pending.map(\.address), ["y@b.example"], "their sender: all of it")
        XCTAssertEqual(boss.view(of: entry("x@b.example", ["y@b.example", "z@a.example"]))?.pending.map(\.address), ["z@a.example"],
                       "another domain's sender: only their own recipients")
        XCTAssertNil(boss.view(of: entry("x@b.example", ["y@b.example"])))
        XCTAssertNil(boss.view(of: entry("", ["y@c.example"])), "a bounce to another domain")
        let user = Principal.of(account("alice@a.example", "user"), delegated: [], via: "t")
        XCTAssertNil(user.view(of: entry("alice@a.example", ["y@a.example"])))
    }

    func testRequestBodiesAreCheckedFieldByField() throws {
        func body(_ text: String) throws -> JSONBody { try JSONBody(ByteBuffer(string: text)) }
        let b = try body(#"{"name": "x@a.example", "quotaBytes": null, "quotaMessages": 5, "enabled": false, "targets": ["a", "b"]}"#)
        XCTAssertEqual(try b.string("name"), "x@a.example")
        XCTAssertTrue(b.has("quotaBytes"))
        XCTAssertTrue(b.isNull("quotaBytes"))
        XCTAssertNil(try b.int("quotaBytes"))
        XCTAssertEqual(try b.int("quotaMessages"), 5)
        XCTAssertEqual(try b.bool("enabled"), false)
        XCTAssertEqual(try b.strings("targets"), ["a", "b"])
        XCTAssertFalse(b.has("password"))
        XCTAssertThrowsError(try b.string("password", required: true)) { XCTAssertEqual($0 as? APIError, .badRequest("'password' is required")) }
        XCTAssertThrowsError(try b.int("name"))
        XCTAssertThrowsError(try b.bool("quotaMessages"), "a number is not a boolean")
        XCTAssertThrowsError(try body(#"{"n": true}"#).int("n"), "a boolean is not a number")
        XCTAssertThrowsError(try body(#"{"n": 1.5}"#).int("n"))
        XCTAssertThrowsError(try body(#"{"n": -1}"#).int("n"))
        XCTAssertThrowsError(try body(#"{"n": 1e300}"#).int("n"))
        XCTAssertThrowsError(try body(#"{"t": ["a", 1]}"#).strings("t"))
        XCTAssertEqual(try body("").fields.count, 0, "no body is an empty object")
        for malformed in ["{", "[]", "\"text\"", "{\"a\": }", "{\"a\" 1}", "nul"] {
            XCTAssertThrowsError(try body(malformed), malformed) { XCTAssertEqual($0 as? APIError, .badRequest("the body must be a JSON object")) }
        }
        XCTAssertThrowsError(try JSONBody(ByteBuffer(bytes: [0xFF, 0xFE, 0x7B])))
    }

    func testCSVFieldsAreQuotedAndFormulasDefused() {
        XCTAssertEqual(AdminAPI.csvLine(["a", "b c", ""]), "a,b c,\r\n")
        XCTAssertEqual(AdminAPI.csvLine(["x,y", "say \"hi\"", "two\nlines"]), "\"x,y\",\"say \"\"hi\"\"\",\"two\nlines\"\r\n")
        XCTAssertEqual(AdminAPI.csvLine(["=cmd()", "+1", "-2", "@SUM(A1)"]), "\"'=cmd()\",\"'+1\",\"'-2\",\"'@SUM(A1)\"\r\n")
    }

    func testTheRateLimiterRefillsOverTime() {
        let limiter = RequestRateLimiter(rate: 2, burst: 3)
        XCTAssertEqual((0..<5).map { _ in limiter.allows("10.0.0.1", now: 100) }, [true, true, true, false, false])
        XCTAssertTrue(limiter.allows("10.0.0.2", now: 100), "another address has its own bucket")
        XCTAssertTrue(limiter.allows("10.0.0.1", now: 100.5), "one more after half a second at 2/s")
        XCTAssertFalse(limiter.allows("10.0.0.1", now: 100.5))
        XCTAssertEqual((0..<4).map { _ in limiter.allows("10.0.0.1", now: 200) }, [true, true, true, false], "refilled to the burst, no more")
    }

    func testSessionsTimeOutAndTokensAreKeptAsHashes() throws {
        let dir = TempDir("admin-db")
        let db = try AdminDatabase(path: dir.path + "/admin.sqlite", idleTimeout: 300, absoluteTimeout: 3000)
        let (token, session) = try db.createSession(user: "boss@a.example", clientAddress: "127.0.0.1", now: 1000)
        XCTAssertEqual(try db.session(token: token, now: 1030)?.user, "boss@a.example")
        XCTAssertEqual(try db.session(token: token, now: 1290)?.csrf, session.csrf, "within the idle timeout of its creation")
        XCTAssertNotNil(try db.session(token: token, now: 1580), "used at 1290: the idle clock moved (a use 60 s or more after the last)")
        XCTAssertNil(try db.session(token: token, now: 1881), "idle for more than five minutes")
        XCTAssertNil(try db.session(token: token, now: 1882), "and gone")
        let (second, _) = try db.createSession(user: "boss@a.example", clientAddress: "127.0.0.1", now: 2000)
        for t in stride(from: 2250.0, through: 4750, by: 250) { XCTAssertNotNil(try db.session(token: second, now: t)) }
        XCTAssertNil(try db.session(token: second, now: 5001), "past the absolute timeout however busy")
        XCTAssertNil(try db.session(token: "made-up", now: 2000))

        let (secret, created) = try db.createToken(user: "boss@a.example", name: "backup script", lifetime: 100, now: 5000)
        XCTAssertTrue(secret.hasPrefix("pat_" + created.id + "_"))
        XCTAssertEqual(try db.token(secret: secret, now: 5050)?.id, created.id)
        XCTAssertNil(try db.token(secret: secret, now: 5100), "expired")
        XCTAssertNil(try db.token(secret: secret + "x", now: 5050))
        XCTAssertFalse(try db.deleteToken(id: created.id, user: "someone@else.example"), "only one's own tokens")
        XCTAssertTrue(try db.deleteToken(id: created.id, user: "boss@a.example"))
        // Neither the cookie's token nor the bearer secret is in the file.
        let file = try Data(contentsOf: URL(fileURLWithPath: dir.path + "/admin.sqlite"))
            + ((try? Data(contentsOf: URL(fileURLWithPath: dir.path + "/admin.sqlite-wal"))) ?? Data())
        for s in [token, second, secret] { XCTAssertNil(file.range(of: Data(s.utf8)), s) }
    }

    func testTheAuditLogIsFilteredByDomain() throws {
        let dir = TempDir("admin-audit")
        let db = try AdminDatabase(path: dir.path + "/admin.sqlite", idleTimeout: 60, absoluteTimeout: 600)
        let site = Principal(name: "root@a.example", role: .siteAdmin, domains: [], via: "t")
        try db.audit(actor: site, action: "domain.create", target: "a.example", domain: "a.example", client: "1.2.3.4", now: 1)
        try db.audit(actor: site, action: "domain.create", target: "b.example", domain: "B.example", client: "1.2.3.4", now: 2)
        try db.audit(actor: site, action: "token.create", target: "t1", domain: nil, client: "1.2.3.4", now: 3)
        XCTAssertEqual(try db.auditLog(domains: nil, before: nil, limit: 10).map(\.target), ["t1", "b.example", "a.example"], "newest first")
        XCTAssertEqual(try db.auditLog(domains: ["b.example"], before: nil, limit: 10).map(\.target), ["b.example"])
        XCTAssertEqual(try db.auditLog(domains: [], before: nil, limit: 10).count, 0)
        let newest = try db.auditLog(domains: nil, before: nil, limit: 1)
        XCTAssertEqual(try db.auditLog(domains: nil, before: newest[0].id, limit: 10).map(\.target), ["b.example", "a.example"], "paged by id")
        let first = try XCTUnwrap(db.auditLog(domains: ["a.example"], before: nil, limit: 1).first)
        XCTAssertEqual(first.actor, "root@a.example")
        XCTAssertEqual(first.role, "site-admin")
        XCTAssertEqual(first.client, "1.2.3.4")
        XCTAssertEqual(first.time, 1)
    }

    func testTheOpenAPIDocumentIsWhatItsGeneratorWrites() throws {
        let (status, stdout, stderr) = Build.runSeparately("/usr/bin/python3", [Build.packageRoot + "/Plugins/Admin/openapi.py"])
        XCTAssertEqual(status, 0, stderr)
        let committed = try String(contentsOfFile: Build.packageRoot + "/Plugins/Admin/Core/Resources/openapi.json", encoding: .utf8)
        XCTAssertEqual(stdout, committed, "run python3 Plugins/Admin/openapi.py > Plugins/Admin/Core/Resources/openapi.json")
    }

    func testTheOpenAPIDocumentIsWholeAndNamesEveryIdentifier() throws {
        let doc = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Build.packageRoot + "/Plugins/Admin/Core/Resources/openapi.json"))) as! [String: Any]
        XCTAssertEqual(doc["openapi"] as? String, "3.1.0")
        let kinds: Set<String> = ["domain", "user", "alias", "mailbox", "acl-identifier", "queue-id", "queue-action", "token-id", "job-id"]
        for (path, methods) in doc["paths"] as! [String: [String: Any]] {
            XCTAssertTrue(path.hasPrefix("/api/v1/"), path)
            for (method, op) in methods {
                let op = op as! [String: Any]
                XCTAssertNotNil(["open", "anyone", "administrators", "site"].firstIndex(of: op["x-postern-access"] as? String ?? ""), "\(method) \(path)")
                let params = (op["parameters"] as? [[String: Any]] ?? []).filter { $0["in"] as? String == "path" }
                XCTAssertEqual(Set(params.map { "{\($0["name"] as! String)}" }),
                               Set(path.split(separator: "/").filter { $0.hasPrefix("{") }.map(String.init)), "\(method) \(path)")
                for p in params { XCTAssertTrue(kinds.contains(p["x-postern-identifier"] as? String ?? ""), "\(method) \(path) \(p)") }
            }
        }
    }

    func testTheEventLogKeepsEachLineWholeAndReadsByTime() throws {
        let dir = TempDir("events")
        let log = MailEventLog(dataDirectory: dir.path)
        let day = Int64(1_796_601_600)   // 2026-12-07 00:00 UTC
        log.record(MailEvent(time: day + 10, kind: .received, listener: "mx", sender: "a@x.example", recipients: ["b@y.example"], size: 100))
        log.record(MailEvent(time: day - 10, kind: .delivered, recipient: "b@y.example"))
        // A line that would pass 4 KiB is cut: its recipient list first.
        let many = (0..<500).map { "recipient\($0)@y.example" }
        log.record(MailEvent(time: day + 20, kind: .received, sender: "a@x.example", recipients: many))
        let file = dir.path + "/events/2026-12-07.jsonl"
        let lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 2)
        XCTAssertTrue(lines.allSatisfy { $0.utf8.count < 4000 })
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.path + "/events/2026-12-06.jsonl"))
        // A torn line (a crash mid-write) is skipped; the rest reads.
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: file))
        handle.seekToEndOfFile()
        handle.write(Data("{\"kind\":\"recei".utf8))
        try handle.close()
        let events = log.events(from: day - 100, to: day + 100)
        XCTAssertEqual(events.map(\.kind), [.delivered, .received, .received], "oldest first, across the two days")
        XCTAssertGreaterThan(events[2].recipients?.count ?? 0, 10)
        XCTAssertLessThan(events[2].recipients?.count ?? 0, 500)
        XCTAssertEqual(log.events(from: day, to: day + 15).count, 1, "to is exclusive, from inclusive")
        XCTAssertEqual(log.events(from: day + 1000, to: day + 2000), [])
        // What an event costs the SMTP path (a figure to read, not a limit).
        let started = Date()
        for i in 0..<20_000 {
            log.record(MailEvent(time: day + 30, kind: .received, listener: "mx", queueID: "Q\(i)", sender: "a@x.example",
                                 recipients: ["b@y.example"], size: 1000, client: "192.0.2.1"))
        }
        print("FIGURES event log: \(String(format: "%.1f", Date().timeIntervalSince(started) / 20_000 * 1e6)) µs per event (this build)")
    }

    func testAReportCountsWhatItsReaderMaySee() {
        let t = Int64(1_796_601_600)
        let events = [
            MailEvent(time: t + 100, kind: .received, listener: "mx", queueID: "Q1", sender: "x@remote.example", recipients: ["a1@a.example", "b1@b.example"]),
            MailEvent(time: t + 200, kind: .received, listener: "submission", queueID: "Q2", sender: "a1@a.example", recipients: ["z@remote.example"]),
            MailEvent(time: t + 300, kind: .rejected, listener: "mx", sender: "spam@remote.example", recipient: "b2@b.example", stage: "RCPT",
                      reason: "550 5.1.1 <b2@b.example>: no such user"),
            MailEvent(time: t + 400, kind: .rejected, listener: "mx", sender: "spam@remote.example", recipient: "a9@a.example", stage: "RCPT",
                      reason: "550 5.1.1 <a9@a.example>: no such user"),
            MailEvent(time: t + 3700, kind: .delivered, queueID: "Q1", sender: "x@remote.example", recipient: "a1@a.example"),
            MailEvent(time: t + 3700, kind: .delivered, queueID: "Q1", sender: "x@remote.example", recipient: "b1@b.example"),
            MailEvent(time: t + 3800, kind: .deferred, queueID: "Q2", sender: "a1@a.example", recipient: "z@remote.example", reason: "451 4.4.1 no answer"),
            MailEvent(time: t + 3900, kind: .quarantined, listener: "mx", queueID: "Q3", sender: "v@remote.example", recipients: ["b1@b.example"], reason: "clamav: Eicar"),
        ]
        let site = Principal(name: "root@a.example", role: .siteAdmin, domains: [], via: "t")
        let all = MailReport(events: events, from: t, to: t + 7200, bucketSeconds: 3600, principal: site, domain: nil)
        XCTAssertEqual(all.totals, MailReport.Counts(received: 2, quarantined: 1, rejected: 2, delivered: 2, deferred: 1, bounced: 0))
        XCTAssertEqual(all.buckets.map(\.start), [t, t + 3600])
        XCTAssertEqual(all.buckets.map(\.counts.received), [2, 0])
        XCTAssertEqual(all.buckets.map(\.counts.delivered), [0, 2])
        XCTAssertEqual(all.listeners["mx"]?.rejected, 2)
        XCTAssertEqual(all.rejectionReasons, [MailReport.Ranked(name: "550 5.1.1 <...>: no such user", count: 2)], "one reason, whatever the address")
        XCTAssertEqual(all.topDestinations.map(\.name), ["a.example", "b.example"])
        XCTAssertEqual(all.quarantineReasons.map(\.name), ["clamav: Eicar"])

        let boss = Principal(name: "boss@a.example", role: .domainAdmin, domains: ["a.example"], via: "t")
        let mine = MailReport(events: events, from: t, to: t + 7200, bucketSeconds: 3600, principal: boss, domain: nil)
        XCTAssertEqual(mine.totals, MailReport.Counts(received: 2, quarantined: 0, rejected: 1, delivered: 1, deferred: 1, bounced: 0))
        XCTAssertEqual(mine.topRecipients.map(\.name).sorted(), ["a1@a.example", "z@remote.example"], "not b1@b.example: another domain's recipient")
        XCTAssertEqual(mine.topDestinations.map(\.name), ["a.example"])
        XCTAssertEqual(mine.rejectionReasons.first?.count, 1)
        let user = Principal(name: "a1@a.example", role: .user, domains: [], via: "t")
        XCTAssertEqual(MailReport(events: events, from: t, to: t + 7200, bucketSeconds: 3600, principal: user, domain: nil).totals, MailReport.Counts())
        let onlyB = MailReport(events: events, from: t, to: t + 7200, bucketSeconds: 86_400, principal: site, domain: "b.example")
        XCTAssertEqual(onlyB.totals.received, 1)
        XCTAssertEqual(onlyB.buckets.count, 1)
    }

    func testTheChartIsWellFormedSVG() throws {
        let t = Int64(1_796_601_600)
        let report = MailReport(events: [MailEvent(time: t + 5, kind: .received, sender: "a@x.example", recipients: ["b@y.example"])],
                                from: t, to: t + 86_400, bucketSeconds: 3600, principal: Principal(name: "r", role: .siteAdmin, domains: [], via: "t"), domain: nil)
        let svg = ReportChart.svg(report)
        let parser = XMLParser(data: Data(svg.utf8))
        XCTAssertTrue(parser.parse(), "\(parser.parserError.map { "\($0)" } ?? "") in \(svg)")
        XCTAssertTrue(svg.contains("2026-12-07 00:00") && svg.contains("2026-12-07 23:00"), svg)
        XCTAssertEqual(svg.components(separatedBy: "<polyline").count - 1, 6)
    }

    // MARK: Several nodes

    func testAPrincipalCrossesToANodeWithItsRoleAndDomains() throws {
        let boss = Principal.of(account("boss@a.example", "domain-admin"), delegated: ["C.example"], via: "session:x")
        let there = try XCTUnwrap(Principal(forwarded: boss.forwarded, via: "console:c1"))
        XCTAssertEqual(there.name, "boss@a.example")
        XCTAssertEqual(there.role, .domainAdmin)
        XCTAssertEqual(there.domains, ["a.example", "c.example"])
        XCTAssertEqual(there.via, "console:c1")
        // Domains only bind a domain administrator; garbage is refused, not guessed at.
        let site = try XCTUnwrap(Principal(forwarded: Data(#"{"name":"r@a.example","role":"site-admin","domains":["x"]}"#.utf8).base64EncodedString(), via: "c"))
        XCTAssertEqual(site.domains, [])
        for bad in ["", "not base64!", Data("{}".utf8).base64EncodedString(), Data(#"{"name":"","role":"site-admin","domains":[]}"#.utf8).base64EncodedString(),
                    Data(#"{"name":"x","role":"root","domains":[]}"#.utf8).base64EncodedString()] {
            XCTAssertNil(Principal(forwarded: bad, via: "c"), bad)
        }
    }

    func testNodeCertificatesCarryTheirRole() throws {
        let authority = try NodeCertificates.makeAuthority(siteName: "test")
        let console = try NodeCertificates.issue(name: "c1", role: .console, hosts: [], authority: authority)
        let node = try NodeCertificates.issue(name: "mx1", role: .node, hosts: ["mx1.example.org", "192.0.2.1", "::1"], authority: authority)
        func der(_ pem: String) throws -> [UInt8] { try NIOSSLCertificate(bytes: Array(pem.utf8), format: .pem).toDERBytes() }
        XCTAssertEqual(NodeCertificates.identity(der: try der(console.certificate))?.role, .console)
        XCTAssertEqual(NodeCertificates.identity(der: try der(node.certificate))?.name, "mx1")
        XCTAssertEqual(NodeCertificates.identity(der: try der(node.certificate))?.role, .node)
        XCTAssertNil(NodeCertificates.identity(der: try der(authority.certificate)), "the CA itself is no node")
        XCTAssertNil(NodeCertificates.identity(der: [0x30, 0x03, 0x02, 0x01, 0x01]))
        XCTAssertEqual(try NodeCertificates.describe(pem: node.certificate).hosts, ["mx1.example.org", "192.0.2.1", "::1"])
        let other = try NodeCertificates.makeAuthority(siteName: "other")
        XCTAssertThrowsError(try NodeCertificates.issue(name: "x", role: .node, hosts: ["x"],
                                                        authority: .init(certificate: authority.certificate, key: other.key)))
    }

    func testTheNodeListIsCheckedWithTheConfig() throws {
        func settings(_ nodes: [[String: String]], local: String = "c1") throws -> NodeSettings {
            var values = NodeSettings.fields.reduce(into: [String: ConfigValue]()) { $0[$1.name] = $1.defaultValue }
            values["node_name"] = .string(local)
            values["node"] = .array(nodes.map { .table($0.mapValues { ConfigValue.string($0) }) })
            return try NodeSettings(ConfigSection(values), dataDirectory: "/var/lib/postern")
        }
        let good = try settings([["name": "mx1", "url": "https://mx1.example.org:9444"], ["name": "mx2", "url": "https://[::1]:9444/"]])
        XCTAssertEqual(good.nodes.map(\.host), ["mx1.example.org", "::1"])
        XCTAssertEqual(good.nodes.map(\.port), [9444, 9444])
        XCTAssertEqual(good.certificate, "/var/lib/postern/admin/ca/issued/console.pem")
        for bad in [[["name": "mx1", "url": "http://mx1.example.org:9444"]], [["name": "mx1", "url": "https://mx1.example.org/api"]],
                    [["name": "c1", "url": "https://c1:9444"]], [["name": "a", "url": "https://a:1"], ["name": "a", "url": "https://b:1"]],
                    [["name": "a"]]] {
            XCTAssertThrowsError(try settings(bad), "\(bad)")
        }
    }

    func testReportsOfSeveralNodesAddUp() {
        let site = Principal(name: "r", role: .siteAdmin, domains: [], via: "t")
        func event(_ kind: MailEvent.Kind, _ time: Int64, _ sender: String, listener: String) -> MailEvent {
            MailEvent(time: time, kind: kind, listener: listener, sender: sender, recipients: ["x@far.example"])
        }
        let one = MailReport(events: [event(.received, 3600, "a@a.example", listener: "mx"), event(.received, 7300, "b@a.example", listener: "mx")],
                             from: 0, to: 3 * 3600, bucketSeconds: 3600, principal: site, domain: nil)
        let two = MailReport(events: [event(.received, 3700, "a@a.example", listener: "submission")],
                             from: 0, to: 3 * 3600, bucketSeconds: 3600, principal: site, domain: nil)
        let sum = MailReport.combine([("n1", one), ("n2", two)], missing: [.init(name: "n3", included: false, error: "down")],
                                     from: 0, to: 3 * 3600, bucketSeconds: 3600, top: 10)
        XCTAssertEqual(sum.totals.received, 3)
        XCTAssertEqual(sum.buckets.map(\.counts.received), [0, 2, 1])
        XCTAssertEqual(sum.listeners.keys.sorted(), ["n1/mx", "n2/submission"])
        XCTAssertEqual(sum.topSenders, [.init(name: "a@a.example", count: 2), .init(name: "b@a.example", count: 1)])
        XCTAssertEqual(sum.nodes?.map(\.name), ["n1", "n2", "n3"])
        XCTAssertEqual(sum.nodes?.map(\.included), [true, true, false])
    }

    // MARK: Alerts

    func alertSettings(_ values: [String: ConfigValue]) -> AlertSettings {
        var all = AlertSettings.fields.reduce(into: [String: ConfigValue]()) { $0[$1.name] = $1.defaultValue }
        for (k, v) in values { all[k] = v }
        return AlertSettings(ConfigSection(all), hostName: "mx.example")
    }

    func testAlertThresholds() {
        let s = alertSettings(["alert_queue_size": .integer(10), "alert_deferred_percent": .integer(50), "alert_min_attempts": .integer(4),
                               "alert_worker_restarts": .integer(3), "alert_disk_free_percent": .integer(10)])
        XCTAssertEqual(s.sender, "postmaster@mx.example")
        XCTAssertEqual(s.window, 3600)
        func kinds(_ o: NodeObservation) -> [String] { AlertRules.evaluate(o, s, node: "n").map(\.kind) }
        XCTAssertEqual(kinds(NodeObservation(queued: 10, delivered: 1, deferred: 1, workerRestarts: 2, diskFreePercent: 10, masterRunning: true)), [],
                       "every value at its threshold: no alert")
        XCTAssertEqual(kinds(NodeObservation(queued: 11, delivered: 1, deferred: 3, workerRestarts: 3, diskFreePercent: 9.9, masterRunning: false)),
                       ["queue-size", "deferred-ratio", "worker-restarts", "disk-space", "master-down"])
        XCTAssertEqual(kinds(NodeObservation(queued: nil, deferred: 3, workerRestarts: nil, diskFreePercent: nil, masterRunning: nil)), [],
                       "three attempts are under alert_min_attempts; what was not measured raises nothing")
        let off = alertSettings(["alert_queue_size": .integer(0), "alert_deferred_percent": .integer(0), "alert_worker_restarts": .integer(0),
                                 "alert_disk_free_percent": .integer(0)])
        XCTAssertEqual(AlertRules.evaluate(NodeObservation(queued: 1_000_000, deferred: 100, workerRestarts: 100, diskFreePercent: 0), off, node: "n").count, 0)
    }

    func testAlertsStartOnceAndEnd() {
        var state = AlertState()
        var step = state.next(holding: [("queue-size", "q 11")], now: 100)
        XCTAssertEqual(step.started.map(\.kind), ["queue-size"])
        state = step.state
        step = state.next(holding: [("queue-size", "q 12"), ("disk-space", "d")], now: 160)
        XCTAssertEqual(step.started.map(\.kind), ["disk-space"], "an alert that holds on is not started again")
        XCTAssertEqual(step.state.active.first { $0.kind == "queue-size" }?.since, 100)
        XCTAssertEqual(step.state.active.first { $0.kind == "queue-size" }?.message, "q 12", "its message says what holds now")
        state = step.state
        step = state.next(holding: [("disk-space", "d")], now: 220)
        XCTAssertEqual(step.ended.map(\.kind), ["queue-size"])
        XCTAssertEqual(step.state.history.first { $0.kind == "queue-size" }?.ended, 220)
        XCTAssertNil(step.state.history.first { $0.kind == "disk-space" }?.ended)

        var restarts = AlertState()
        XCTAssertEqual(restarts.restarts(count: 5, now: 0, window: 100), 0)
        XCTAssertEqual(restarts.restarts(count: 7, now: 50, window: 100), 2)
        XCTAssertEqual(restarts.restarts(count: 8, now: 120, window: 100), 1, "the restarts before the window are forgotten")
        XCTAssertEqual(restarts.restarts(count: 0, now: 130, window: 100), 0, "the master restarted: its count starts over")
    }

    func testReportsCountWhatEachFilterStopped() {
        let site = Principal(name: "r", role: .siteAdmin, domains: [], via: "t")
        let events = [
            MailEvent(time: 10, kind: .rejected, sender: "a@x.example", recipient: "b@y.example", stage: "DATA", reason: "550 virus", filter: "clamav"),
            MailEvent(time: 11, kind: .quarantined, sender: "a@x.example", recipients: ["b@y.example"], reason: "spam 12", filter: "rules"),
            MailEvent(time: 12, kind: .rejected, sender: "a@x.example", recipient: "c@y.example", stage: "RCPT", reason: "550 no such user"),
            MailEvent(time: 13, kind: .received, sender: "a@x.example", recipients: ["b@y.example"]),
        ]
        let report = MailReport(events: events, from: 0, to: 3600, bucketSeconds: 3600, principal: site, domain: nil)
        XCTAssertEqual(report.filters?["clamav"]?.rejected, 1)
        XCTAssertEqual(report.filters?["rules"]?.quarantined, 1)
        XCTAssertEqual(report.filters?.count, 2, "a refusal no filter made is nobody's")
        let sum = MailReport.combine([("n1", report), ("n2", report)], missing: [], from: 0, to: 3600, bucketSeconds: 3600, top: 10)
        XCTAssertEqual(sum.filters?["clamav"]?.rejected, 2)
    }

    func testTheEventLogKeepsItsRetention() throws {
        let dir = TempDir("event-retention")
        let log = MailEventLog(dataDirectory: dir.path)
        let day: Int64 = 86_400
        for d in [0, 1, 2, 3] as [Int64] { log.record(MailEvent(time: 20_000 * day + d * day + 5, kind: .received)) }
        FileManager.default.createFile(atPath: dir.path + "/events/notes.jsonl", contents: Data())
        XCTAssertEqual(log.removeDays(before: 20_002 * day + 100), ["2024-10-04.jsonl", "2024-10-05.jsonl"])
        XCTAssertEqual(log.events(from: 0, to: 30_000 * day).count, 2, "the days from the cut-off on stay")
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.path + "/events/notes.jsonl"), "not a day file: left alone")
    }
}
