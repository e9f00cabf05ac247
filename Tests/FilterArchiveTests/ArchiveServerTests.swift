import Foundation
import PluginAPI
import PosternHost
import PosternTestSupport
import XCTest

/// filter-archive through the real binary, with Python's smtplib as the client: journals keep BCC
/// recipients and the original byte for byte, outbound copies go out as received, .eml files are
/// written, a failed write refuses the message for now, and every one of 1,000 accepted messages
/// has its journal and its file.
final class ArchiveServerTests: XCTestCase {
    static let rig = PeerRig("archive")

    override class func setUp() {
        super.setUp()
        rig.start {
            let work = rig.work.path
            FileManager.default.createFile(atPath: work + "/not-a-directory", contents: Data())
            // The workers run unprivileged: the archive directories are theirs to write, as a
            // site would make them.
            chmod(work, 0o755)
            for d in ["legal", "bulk"] {
                mkdir(work + "/" + d, 0o777)
                chmod(work + "/" + d, 0o777)
            }
            return try FilterServer("archive", plugins: """
                [plugin.filter-archive]
                journal_from = "Journal <postmaster@example.org>"
                [plugin.filter-archive.rules.journal]
                directions = ["inbound"]
                journal_to = "journal@archive.example"
                [plugin.filter-archive.rules.sent]
                directions = ["outbound"]
                sender_domains = ["example.org"]
                copy_to = "sent@archive.example"
                [plugin.filter-archive.rules.legal]
                header = "X-Legal-Hold"
                header_contains = "yes"
                directory = "\(work)/legal"
                [plugin.filter-archive.rules.broken]
                header = "X-Broken"
                header_contains = "yes"
                directory = "\(work)/not-a-directory/eml"
                [plugin.filter-archive.rules.bulk-journal]
                directions = ["internal"]
                journal_to = "bulk-journal@archive.example"
                [plugin.filter-archive.rules.bulk-files]
                directions = ["internal"]
                directory = "\(work)/bulk"
                """, listeners: [
                    ("mx", "filters = [\"archive\"]"),
                    ("out", "filters = [\"archive\"]\ndirection = \"outbound\""),
                    ("bulk", "filters = [\"archive\"]\ndirection = \"internal\""),
                ])
        }
    }

    override class func tearDown() {
        rig.tearDown()
        super.tearDown()
    }

    /// The queue entries with `recipient` pending, with their messages (only those are shown: the
    /// queue also holds the thousand-message run's).
    func entries(to recipient: String) throws -> [(summary: [String: Any], message: [UInt8])] {
        let s = try Self.rig.running()
        return try listQueue(s).filter { e in
            (e["pending"] as? [[String: Any]] ?? []).contains { $0["address"] as? String == recipient }
        }.map { e in
            let id = e["id"] as? String ?? ""
            return (e, [UInt8](Build.runBytes(Build.postern, ["queue", "show", id, "-c", s.server.configFile], cwd: s.dir.path,
                                              environment: ProcessInfo.processInfo.environment).stdout))
        }
    }

    func testInboundJournalKeepsBccRecipientsAndTheOriginal() throws {
        let s = try Self.rig.running()
        let out = try s.send("mx", from: "anna@remote.example", to: ["bob@remote.example", "hidden@remote.example"],
                             message: "From: anna@remote.example\nTo: bob@remote.example\nSubject: quarterly\nMessage-ID: <q1@remote.example>\n\nNumbers.\n")
        XCTAssertTrue(out.contains("DATA 250"), out)
        let originals = try entries(to: "hidden@remote.example")
        XCTAssertEqual(originals.count, 1)
        let journals = try entries(to: "journal@archive.example").filter { String(decoding: $0.message, as: UTF8.self).contains("<q1@remote.example>") }
        XCTAssertEqual(journals.count, 1, "one journal for the message")
        let journal = journals[0].message
        let mime = MIMEMessage(parsing: journal)
        XCTAssertEqual(mime.root.children.map(\.contentType.mimeType), ["text/plain", "message/rfc822"])
        let report = mime.root.children[0].text(in: journal)
        XCTAssertTrue(report.contains("Recipients: bob@remote.example, hidden@remote.example"), report)
        XCTAssertTrue(report.contains("Sender: anna@remote.example"), report)
        XCTAssertTrue(report.contains("Listener: mx"), report)
        let attached = mime.root.children[1]
        let original = originals[0].message
        XCTAssertEqual(Array(journal[attached.bodyOffset..<(attached.bodyOffset + attached.bodySize)]), Array(original.dropLast(2)),
                       "the attached message is the queued one, byte for byte")
        XCTAssertEqual(journals[0].summary["sender"] as? String, "", "copies come from the null sender")
    }

    func testOutboundCopyIsTheMessageAsReceived() throws {
        let s = try Self.rig.running()
        let out = try s.send("out", from: "alice@example.org", to: ["carol@remote.example"],
                             message: "From: alice@example.org\nTo: carol@remote.example\nSubject: sent copy\n\nHi Carol.\n")
        XCTAssertTrue(out.contains("DATA 250"), out)
        let original = try XCTUnwrap(try entries(to: "carol@remote.example").first).message
        let copies = try entries(to: "sent@archive.example")
        XCTAssertEqual(copies.count, 1)
        XCTAssertEqual(copies[0].message, original, "the copy is the message byte for byte")
        XCTAssertEqual(try entries(to: "journal@archive.example").filter { String(decoding: $0.message, as: UTF8.self).contains("sent copy") }.count, 0,
                       "inbound rules do not see outbound mail")
        // Mail from another domain on the outbound listener matches no rule.
        _ = try s.send("out", from: "x@other.example", to: ["dave@remote.example"], message: "Subject: not ours\n\nx\n")
        XCTAssertEqual(try entries(to: "sent@archive.example").count, 1)
    }

    func testDirectoryCopiesAndAFailedWriteRefusesForNow() throws {
        let s = try Self.rig.running()
        let out = try s.send("mx", to: ["erin@remote.example"], message: "Subject: held\nX-Legal-Hold: yes\nMessage-ID: <legal1@remote.example>\n\nKeep.\n")
        XCTAssertTrue(out.contains("DATA 250"), out)
        let files = try FileManager.default.subpathsOfDirectory(atPath: Self.rig.work.path + "/legal").filter { $0.hasSuffix(".eml") }
        XCTAssertEqual(files.count, 1)
        let text = try String(contentsOfFile: Self.rig.work.path + "/legal/" + files[0], encoding: .utf8)
        XCTAssertTrue(text.hasPrefix("X-Postern-Envelope-From: <sender@remote.example>\r\nX-Postern-Envelope-To: <erin@remote.example>\r\nReceived: "), text)
        XCTAssertTrue(text.hasSuffix("X-Legal-Hold: yes\r\nMessage-ID: <legal1@remote.example>\r\n\r\nKeep.\r\n"), text)

        let refused = try s.send("mx", to: ["frank@remote.example"], message: "Subject: cannot\nX-Broken: yes\n\nx\n")
        XCTAssertTrue(refused.contains("DATA 451 4.3.0 cannot archive the message, try again later"), refused)
        XCTAssertEqual(try entries(to: "frank@remote.example").count, 0, "not queued")
        XCTAssertEqual(try entries(to: "journal@archive.example").filter { String(decoding: $0.message, as: UTF8.self).contains("Subject: cannot") }.count, 0,
                       "and no journal of it")
    }

    /// 1,000 messages on one connection: each accepted one has exactly one journal in the queue
    /// and one .eml file, with its Message-ID.
    func testEveryOneOfAThousandAcceptedMessagesHasItsCopies() throws {
        let s = try Self.rig.running()
        let script = s.dir.write("bulk.py", """
            import smtplib, sys
            s = smtplib.SMTP("127.0.0.1", \(s.ports["bulk"]!), timeout=120)
            s.ehlo("client.test.example")
            ok = 0
            for i in range(1000):
                msg = "From: bulk@remote.example\\r\\nTo: sink@remote.example\\r\\nSubject: bulk %d\\r\\nMessage-ID: <bulk-%d@remote.example>\\r\\n\\r\\nmessage %d\\r\\n" % (i, i, i)
                s.sendmail("bulk@remote.example", ["sink@remote.example"], msg)
                ok += 1
            s.quit()
            print("SENT", ok)
            """)
        let (code, output) = Build.run(try Build.tool("python3"), [script])
        XCTAssertEqual(code, 0, output)
        XCTAssertTrue(output.contains("SENT 1000"), output)
        let summaries = try listQueue(s)
        // Distinct queue ids: the queue manager moves messages between its queues while the
        // listing reads them, so one message can be seen twice in one listing.
        func count(_ address: String) -> Int {
            Set(summaries.filter { ($0["pending"] as? [[String: Any]] ?? []).contains { $0["address"] as? String == address } }
                .compactMap { $0["id"] as? String }).count
        }
        XCTAssertEqual(count("sink@remote.example"), 1000)
        XCTAssertEqual(count("bulk-journal@archive.example"), 1000)
        var ids = Set<String>()
        for file in try FileManager.default.subpathsOfDirectory(atPath: Self.rig.work.path + "/bulk") where file.hasSuffix(".eml") {
            let text = try String(contentsOfFile: Self.rig.work.path + "/bulk/" + file, encoding: .utf8)
            if let r = text.range(of: "Message-ID: <bulk-") { ids.insert(String(text[r.upperBound...].prefix { $0 != "@" })) }
        }
        XCTAssertEqual(ids, Set((0..<1000).map(String.init)), "one file per message")
    }

    func listQueue(_ s: FilterServer) throws -> [[String: Any]] {
        let (code, output) = Build.run(Build.postern, ["queue", "list", "--json", "-c", s.server.configFile], cwd: s.dir.path)
        guard code == 0, let list = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [[String: Any]] else {
            throw SystemError.message("postern queue list: \(output)")
        }
        return list
    }
}
