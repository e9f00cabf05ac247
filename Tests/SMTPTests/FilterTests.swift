import PosternTestSupport
import Foundation
import PluginAPI
import XCTest
@testable import PosternSMTPCore
@testable import PosternSASLPlainCore
@testable import PosternSASLLoginCore
@testable import PosternTableFileCore

/// The milter-style filter stages and their verdicts, and header changes before the queue.
final class SMTPFilterTests: XCTestCase {
    func harness(_ filter: TestFilter) -> SMTPHarness {
        let h = SMTPHarness()
        h.filters = [("test", filter)]
        return h
    }

    func send(_ h: SMTPHarness, _ body: String...) async -> String {
        _ = await h.each(["MAIL FROM:<a@remote.example>", "RCPT TO:<alice@example.org>", "DATA"])
        return await h.send(bytes: Array((body.map { $0 + "\r\n" }.joined() + ".\r\n").utf8)).trimmedLastLine
    }

    func testStagesRunInProtocolOrder() async {
        let f = TestFilter()
        let h = harness(f)
        await h.ready()
        let reply = await send(h, "Subject: x", "", "body")
        XCTAssertEqual(reply, "250 2.0.0 ok: queued as Q1")
        // RSET after a finished message has nothing to abort; in a transaction it aborts it.
        _ = await h.send("RSET")
        _ = await h.send("MAIL FROM:<a@remote.example>", "RSET")
        XCTAssertEqual(f.calls, ["connect", "helo", "mail", "rcpt:alice@example.org", "headers", "body", "eom", "mail", "abort"])
        XCTAssertEqual(f.seenHeaders.map(\.name), ["Received", "Subject"])
        XCTAssertEqual(f.seenHeaders.last?.value, "x")
        XCTAssertEqual(String(decoding: f.seenBody, as: UTF8.self), "body\r\n")
    }

    func testVerdictsAtEachStage() async {
        let connect = TestFilter()
        connect.verdicts["connect"] = .reject(MailReply(550, "5.7.1", "not you"))
        let refused = await harness(connect).start()
        XCTAssertEqual(refused, "550 5.7.1 not you\r\n")
        let busy = TestFilter()
        busy.verdicts["connect"] = .tempfail(MailReply(451, "4.7.1", "later"))
        let later = await harness(busy).start()
        XCTAssertEqual(later, "421 4.7.0 mx.example.org later\r\n<CLOSE>\r\n")

        let f = TestFilter()
        f.verdicts["mail"] = .tempfail(MailReply(250, nil, "a filter that says 250 for tempfail"))
        f.verdicts["rcpt:bob@example.org"] = .reject(MailReply(550, "5.7.1", "bob does not want it"))
        let h = harness(f)
        await h.ready()
        let mail = await h.send("MAIL FROM:<a@remote.example>")
        XCTAssertEqual(mail, "451 4.7.1 a filter that says 250 for tempfail\r\n")
        f.verdicts["mail"] = nil
        let replies = await h.each(["MAIL FROM:<a@remote.example>", "RCPT TO:<bob@example.org>", "RCPT TO:<alice@example.org>"])
        XCTAssertEqual(replies, ["250 2.1.0 sender ok", "550 5.7.1 bob does not want it", "250 2.1.5 recipient ok"])
        _ = await h.send("RSET")

        f.verdicts["eom"] = .reject(MailReply(554, "5.7.1", "virus found"))
        let rejected = await send(h, "x")
        XCTAssertEqual(rejected, "554 5.7.1 virus found")
        f.verdicts["eom"] = .discard
        let discarded = await send(h, "x")
        XCTAssertEqual(discarded, "250 2.0.0 ok: discarded")
        f.verdicts["eom"] = nil
        f.verdicts["body"] = .tempfail(MailReply(451, "4.7.1", "scanner busy"))
        let deferred = await send(h, "Subject: s", "", "x")
        XCTAssertEqual(deferred, "451 4.7.1 scanner busy")
        f.verdicts["body"] = nil
        f.verdicts["headers"] = .quarantine(reason: "suspicious")
        let held = await send(h, "x")
        XCTAssertEqual(held, "250 2.0.0 ok: queued as Q1")
        XCTAssertEqual(h.queue.entries.count, 1)
        XCTAssertEqual(h.queue.entries.first?.holdReason, "suspicious", "quarantined into the hold queue")
        XCTAssertEqual(h.spoolFiles, [])
    }

    func testModificationsAreAppliedBeforeQueueing() async throws {
        let f = TestFilter()
        f.modifications = [
            .addHeader(name: "X-Scanned", value: "yes"),
            .changeHeader(name: "subject", index: 1, value: "[SPAM] hello"),
            .changeHeader(name: "X-Remove", index: 2, value: nil),
            .addRecipient("bob@example.org"),
            .removeRecipient("ALICE@example.org"),
        ]
        let h = harness(f)
        await h.ready()
        let reply = await send(h, "Subject: hello", "X-Remove: one", "X-Remove: two", "X-Keep: folded", " value", "", "body", "line")
        XCTAssertEqual(reply, "250 2.0.0 ok: queued as Q1")
        let entry = try XCTUnwrap(h.queue.entries.first)
        XCTAssertEqual(entry.envelope.recipients.map(\.address), ["bob@example.org"])
        XCTAssertTrue(entry.text.hasSuffix("+0000\r\nSubject: [SPAM] hello\r\nX-Remove: one\r\nX-Keep: folded\r\n value\r\nX-Scanned: yes\r\n\r\nbody\r\nline\r\n"),
                      entry.text)
        // A replaced body, and removing every recipient discards the message.
        f.modifications = [.replaceBody(Array("new body\r\n".utf8))]
        _ = await send(h, "Subject: a", "", "old")
        XCTAssertTrue(h.queue.entries[1].text.hasSuffix("Subject: a\r\n\r\nnew body\r\n"))
        f.modifications = [.removeRecipient("alice@example.org")]
        let gone = await send(h, "x")
        XCTAssertEqual(gone, "250 2.0.0 ok: discarded")
        XCTAssertEqual(h.queue.entries.count, 2)
        XCTAssertEqual(h.spoolFiles, [])
    }

    /// A filter's further message (an archive copy) is queued before the message, with its own
    /// envelope, when the message is accepted or quarantined; never when refused or discarded.
    func testAddedMessagesAreQueuedFirstAndOnlyWithAnAcceptedMessage() async throws {
        let archive = TestFilter(), other = TestFilter()
        archive.modifications = [.addMessage(sender: "", recipients: ["journal@example.org"], content: Array("Subject: copy\r\n\r\nc\r\n".utf8))]
        let h = SMTPHarness()
        h.filters = [("archive", archive), ("other", other)]
        await h.ready()
        let accepted = await send(h, "Subject: one", "", "body")
        XCTAssertEqual(accepted, "250 2.0.0 ok: queued as Q2")
        XCTAssertEqual(h.queue.entries.map { $0.envelope.recipients.map(\.address) }, [["journal@example.org"], ["alice@example.org"]])
        XCTAssertEqual(h.queue.entries[0].envelope.sender, "")
        XCTAssertEqual(h.queue.entries[0].text, "Subject: copy\r\n\r\nc\r\n")

        other.verdicts["eom"] = .reject(MailReply(550, "5.7.1", "no"))
        let refused = await send(h, "Subject: two", "", "body")
        XCTAssertEqual(refused, "550 5.7.1 no")
        other.verdicts["eom"] = .tempfail(MailReply(451, "4.7.1", "later"))
        _ = await send(h, "Subject: three", "", "body")
        other.verdicts["eom"] = .discard
        _ = await send(h, "Subject: four", "", "body")
        XCTAssertEqual(h.queue.entries.count, 2, "no copy of a refused or discarded message")

        other.verdicts["eom"] = .quarantine(reason: "held")
        _ = await send(h, "Subject: five", "", "body")
        XCTAssertEqual(h.queue.entries.count, 4)
        XCTAssertNil(h.queue.entries[2].holdReason, "the copy of a quarantined message is queued")
        XCTAssertEqual(h.queue.entries[3].holdReason, "held")

        // A copy the queue refuses refuses the message: no accepted message lacks its copy.
        other.verdicts["eom"] = nil
        h.queue.failing = true
        let failed = await send(h, "Subject: six", "", "body")
        XCTAssertEqual(failed, "451 4.3.0 temporary queue failure, try again later")
        XCTAssertEqual(h.spoolFiles, [])
    }
}
