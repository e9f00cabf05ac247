import Foundation
import PluginAPI
import XCTest

/// The host side of the filter chain: stages go to every filter at once, a filter out of time
/// costs one timeout, and the changes of several filters merge in the documented order.
final class FilterChainTests: XCTestCase {
    /// When one call of one filter started and ended (monotonic clock), as the filter recorded it.
    struct Call: Sendable { var filter: String; var stage: String; var start: UInt64; var end: UInt64 }

    /// Waits `delay` at every stage and records its calls.
    final class SlowFilter: MailFilter, FilterTransaction, @unchecked Sendable {
        let name: String
        let delay: UInt64
        let log: NIOLockedValueBox<[Call]>
        init(_ name: String, delayMilliseconds: UInt64, log: NIOLockedValueBox<[Call]>) {
            self.name = name
            delay = delayMilliseconds * 1_000_000
            self.log = log
        }
        func makeTransaction(_ connection: FilterConnection) -> any FilterTransaction { self }
        private func wait(_ stage: String) async -> FilterVerdict {
            let start = DispatchTime.now().uptimeNanoseconds
            try? await Task.sleep(nanoseconds: delay)
            let end = DispatchTime.now().uptimeNanoseconds
            log.withLockedValue { $0.append(Call(filter: name, stage: stage, start: start, end: end)) }
            return .continue
        }
        func connect() async -> FilterVerdict { await wait("connect") }
        func helo(_ name: String) async -> FilterVerdict { await wait("helo") }
        func mailFrom(_ sender: String, parameters: [String: String]) async -> FilterVerdict { await wait("mail") }
        func rcptTo(_ recipient: String, parameters: [String: String]) async -> FilterVerdict { await wait("rcpt") }
        func headers(_ fields: [(name: String, value: String)]) async -> FilterVerdict { await wait("headers") }
        func body(_ chunk: [UInt8]) async -> FilterVerdict { await wait("body") }
        func endOfMessage() async -> (FilterVerdict, [FilterModification]) { (await wait("eom"), []) }
    }

    /// Never answers MAIL, not even when cancelled; counts the calls it gets.
    final class SilentFilter: MailFilter, FilterTransaction, @unchecked Sendable {
        let calls = NIOLockedValueBox(0)
        func makeTransaction(_ connection: FilterConnection) -> any FilterTransaction { self }
        func mailFrom(_ sender: String, parameters: [String: String]) async -> FilterVerdict {
            calls.withLockedValue { $0 += 1 }
            await withUnsafeContinuation { (_: UnsafeContinuation<Void, Never>) in }
            return .continue
        }
        func rcptTo(_ recipient: String, parameters: [String: String]) async -> FilterVerdict {
            calls.withLockedValue { $0 += 1 }
            return .continue
        }
    }

    let connection = FilterConnection(peerAddress: "192.0.2.1", listener: "mx", isSecure: false)

    func testEveryStageRunsTheFiltersConcurrently() async {
        let log = NIOLockedValueBox<[Call]>([])
        let chain = FilterChain(filters: [("a", SlowFilter("a", delayMilliseconds: 300, log: log)),
                                          ("b", SlowFilter("b", delayMilliseconds: 300, log: log))])
        let t = chain.begin(connection)
        _ = await t.run(.connect) { await $0.connect() }
        _ = await t.run(.helo) { await $0.helo("client.example") }
        _ = await t.run(.mail) { await $0.mailFrom("a@example.org", parameters: [:]) }
        _ = await t.run(.rcpt) { await $0.rcptTo("b@example.org", parameters: [:]) }
        _ = await t.run(.headers) { await $0.headers([("Subject", "x")]) }
        _ = await t.run(.body) { await $0.body(Array("x\r\n".utf8)) }
        _ = await t.endOfMessage()
        let calls = log.withLockedValue { $0 }
        let stages = ["connect", "helo", "mail", "rcpt", "headers", "body", "eom"]
        XCTAssertEqual(calls.count, 2 * stages.count)
        var previousEnd: UInt64 = 0
        for stage in stages {
            let both = calls.filter { $0.stage == stage }
            XCTAssertEqual(Set(both.map(\.filter)), ["a", "b"], stage)
            // Overlap: each filter started its call before the other one had finished its own.
            XCTAssertLessThan(both.map(\.start).max()!, both.map(\.end).min()!, "\(stage): the filters ran one after the other")
            // Stages stay in order: this one started after the last one was over.
            XCTAssertGreaterThanOrEqual(both.map(\.start).min()!, previousEnd, "\(stage) started before the stage before it ended")
            previousEnd = both.map(\.end).max()!
        }
    }

    func testFilterThatNeverAnswersCostsOneTimeoutAndTempfails() async {
        PosternMetrics.bootstrap()
        let silent = SilentFilter()
        let log = NIOLockedValueBox<[Call]>([])
        let other = SlowFilter("other", delayMilliseconds: 0, log: log)
        let chain = FilterChain(filters: [("silent-tempfail", silent), ("other", other)],
                                policy: FilterPolicy(timeout: 0.2, timeoutAction: .tempfail))
        let t = chain.begin(connection)
        let mail = await t.run(.mail) { await $0.mailFrom("a@example.org", parameters: [:]) }
        guard case .tempfail(let reply) = mail else { return XCTFail("\(mail)") }
        XCTAssertEqual(reply.code, 451)
        // Out of the session: the next stage tempfails at once without asking it again.
        let rcpt = await t.run(.rcpt) { await $0.rcptTo("b@example.org", parameters: [:]) }
        XCTAssertEqual(rcpt, mail)
        XCTAssertEqual(silent.calls.withLockedValue { $0 }, 1, "the silent filter was asked again")
        XCTAssertEqual(log.withLockedValue { $0.map(\.stage) }, ["mail", "rcpt"], "the other filter is still asked")
        XCTAssertTrue(PosternMetrics.exposition().contains(#"postern_filter_timeouts_total{filter="silent-tempfail",stage="mail"} 1"#),
                      PosternMetrics.exposition())
    }

    func testFilterThatNeverAnswersCostsOneTimeoutAndIsSkippedWhenTheSiteSaysAccept() async {
        let silent = SilentFilter()
        let chain = FilterChain(filters: [("silent-accept", silent)], policy: FilterPolicy(timeout: 0.2, timeoutAction: .accept))
        let t = chain.begin(connection)
        let mail = await t.run(.mail) { await $0.mailFrom("a@example.org", parameters: [:]) }
        XCTAssertEqual(mail, .continue)
        let rcpt = await t.run(.rcpt) { await $0.rcptTo("b@example.org", parameters: [:]) }
        XCTAssertEqual(rcpt, .continue)
        XCTAssertEqual(silent.calls.withLockedValue { $0 }, 1)
        await t.close()
    }

    /// A filter that reports progress keeps its stage alive past the timeout.
    func testProgressRestartsTheDeadline() async {
        let steps = NIOLockedValueBox(0)
        let result = await withFilterDeadline(0.3) { () -> Int in
            for _ in 0..<4 {
                try? await Task.sleep(nanoseconds: 150_000_000)
                FilterStageClock.current?.progress()
                steps.withLockedValue { $0 += 1 }
            }
            return 42
        }
        XCTAssertEqual(result, 42, "the stage was cut off although the filter reported progress")
        XCTAssertEqual(steps.withLockedValue { $0 }, 4)
    }

    /// A deadline inside a filter (a milter's own timeout) ends with the chain's: the operation it
    /// runs is cancelled, not left to run out its own, longer time.
    func testNestedDeadlinesAreCancelledWithTheOuterOne() async throws {
        let cancelled = NIOLockedValueBox(false)
        let outer = await withFilterDeadline(0.2) { () -> Int? in
            await withFilterDeadline(3600) { () -> Int in
                try? await Task.sleep(nanoseconds: 3_600_000_000_000)
                cancelled.withLockedValue { $0 = Task.isCancelled }
                return 1
            }
        }
        XCTAssertNil(outer)
        for _ in 0..<100 where !cancelled.withLockedValue({ $0 }) { try await Task.sleep(nanoseconds: 50_000_000) }
        XCTAssertTrue(cancelled.withLockedValue { $0 }, "the inner operation was not cancelled")
    }

    /// A filter that accepted a message is asked again at the next MAIL, even when that message
    /// never reached its end (refused, RSET).
    func testAcceptLastsOneMessage() async {
        final class Accepting: MailFilter, FilterTransaction, @unchecked Sendable {
            let mails = NIOLockedValueBox(0)
            func makeTransaction(_ connection: FilterConnection) -> any FilterTransaction { self }
            func mailFrom(_ sender: String, parameters: [String: String]) async -> FilterVerdict {
                mails.withLockedValue { $0 += 1 }
                return .accept
            }
        }
        let f = Accepting()
        let t = FilterChain(filters: [("accepting", f)]).begin(connection)
        _ = await t.run(.mail) { await $0.mailFrom("a@example.org", parameters: [:]) }
        _ = await t.run(.mail) { await $0.mailFrom("a@example.org", parameters: [:]) }
        XCTAssertEqual(f.mails.withLockedValue { $0 }, 2)
    }

    func testSelectingKeepsTheListenersOrderAndRefusesUnknownFilters() throws {
        let log = NIOLockedValueBox<[Call]>([])
        let chain = FilterChain(filters: [("a", SlowFilter("a", delayMilliseconds: 0, log: log)),
                                          ("b", SlowFilter("b", delayMilliseconds: 0, log: log))])
        XCTAssertEqual(try chain.selecting(["b", "a"]).filters.map(\.name), ["b", "a"])
        XCTAssertEqual(try chain.selecting([]).filters.count, 0)
        XCTAssertThrowsError(try chain.selecting(["a", "clamav"])) { error in
            XCTAssertEqual(error as? FilterChainError, .unknownFilter("clamav"))
        }
    }

    /// The first filter in chain order that files the message into a folder decides; a second,
    /// different folder is a conflict for the log, the same one is not.
    func testFileIntoGoesToTheFirstFilter() {
        let edits = MessageEdits(merging: [("sender-auth", [.fileInto(folder: "Junk")]), ("rules", [.fileInto(folder: "Spam")]),
                                           ("other", [.fileInto(folder: "Junk")])])
        XCTAssertEqual(edits.folder, "Junk")
        XCTAssertEqual(edits.conflicts, ["rules: file into Spam (filed into Junk by an earlier filter)"])
        XCTAssertNil(MessageEdits(merging: [("rules", [.addHeader(name: "X", value: "y")])]).folder)
    }

    func testEditsMergeInChainOrderAgainstTheReceivedMessage() {
        let edits = MessageEdits(merging: [
            ("first", [.changeHeader(name: "Subject", index: 1, value: "[SPAM] hi"),
                       .changeHeader(name: "X-Tag", index: 2, value: nil),
                       .addHeader(name: "X-First", value: "1"),
                       .insertHeader(index: 0, name: "DKIM-Signature", value: "v=1"),
                       .removeRecipient("Bob@example.org"),
                       .replaceBody(Array("first body".utf8))]),
            ("second", [.changeHeader(name: "subject", index: 1, value: "lost"),
                        .changeHeader(name: "X-Tag", index: 1, value: "one"),
                        .addHeader(name: "X-Second", value: "2"),
                        .insertHeader(index: 0, name: "Authentication-Results", value: "mx; none"),
                        .addRecipient("bob@example.org"),
                        .addRecipient("carol@example.org"),
                        .replaceBody(Array("second body".utf8))]),
        ])
        XCTAssertEqual(edits.conflicts, ["second: change of subject[1] (changed by first)",
                                         "second: body replacement (replaced by first)"])
        XCTAssertEqual(edits.body, Array("first body".utf8))
        // Received: Subject, X-Tag, X-Tag. Indices are those of this list, whatever the others did.
        let arranged = edits.arrange(receivedNames: ["Subject", "X-Tag", "X-Tag"])
        XCTAssertEqual(arranged, [
            .new(.init(name: "DKIM-Signature", value: "v=1")), .new(.init(name: "Authentication-Results", value: "mx; none")),
            .new(.init(name: "Subject", value: "[SPAM] hi")), .new(.init(name: "X-Tag", value: "one")),
            .new(.init(name: "X-First", value: "1")), .new(.init(name: "X-Second", value: "2")),
        ])
        XCTAssertEqual(edits.recipients(from: ["alice@example.org", "bob@example.org"]),
                       ["alice@example.org", "bob@example.org", "carol@example.org"])
    }

    /// Stamps an Authentication-Results field, in the authentication phase.
    struct StampingInspector: MessageInspector {
        var phase: FilterPhase { .authentication }
        func inspect(_ message: FilterMessage) async -> (FilterVerdict, [FilterModification]) {
            (.continue, [.insertHeader(index: 0, name: "Authentication-Results", value: "mx.example; dkim=fail header.d=example.org")])
        }
    }

    /// Quarantines what its preceding fields say failed DKIM; records what it saw.
    final class JudgingInspector: MessageInspector, @unchecked Sendable {
        let seen = NIOLockedValueBox<[(name: String, value: String)]>([])
        let fields = NIOLockedValueBox<[String]>([])
        func inspect(_ message: FilterMessage) async -> (FilterVerdict, [FilterModification]) {
            seen.withLockedValue { $0 = message.precedingFields }
            fields.withLockedValue { $0 = message.fields.map(\.name) }
            let failed = message.judgedFields.contains { $0.name == "Authentication-Results" && $0.value.contains("dkim=fail") }
            return (failed ? .quarantine(reason: "dkim=fail") : .continue, [.addHeader(name: "X-Judged", value: "yes")])
        }
    }

    /// The authentication filters finish first and the content filters judge their fields,
    /// whatever the order of the chain; the fields are not the message's own (positions of
    /// changes stay those of the message as received), and the changes come back in chain order.
    func testContentFiltersSeeTheFieldsOfTheAuthenticationPhase() async {
        let judge = JudgingInspector()
        let chain = FilterChain(filters: [("rules", InspectingFilter(judge)), ("sender-auth", InspectingFilter(StampingInspector()))])
        let t = chain.begin(connection)
        _ = await t.run(.mail) { await $0.mailFrom("a@example.org", parameters: [:]) }
        _ = await t.run(.rcpt) { await $0.rcptTo("b@example.net", parameters: [:]) }
        _ = await t.run(.headers) { await $0.headers([("From", "a@example.org"), ("Subject", "x")], raw: [" a@example.org", " x"]) }
        _ = await t.run(.body) { await $0.body(Array("hello\r\n".utf8)) }
        let (verdict, byFilter) = await t.endOfMessageByFilter()
        XCTAssertEqual(verdict, .quarantine(reason: "dkim=fail"))
        XCTAssertEqual(judge.seen.withLockedValue { $0.map(\.name) }, ["Authentication-Results"])
        XCTAssertEqual(judge.fields.withLockedValue { $0 }, ["From", "Subject"])
        XCTAssertEqual(byFilter.map(\.filter), ["rules", "sender-auth"])

        // The next message starts clean: nothing of the last one's results is left.
        _ = await t.run(.mail) { await $0.mailFrom("a@example.org", parameters: [:]) }
        let plain = FilterChain(filters: [("rules", InspectingFilter(judge))]).begin(connection)
        _ = await plain.run(.mail) { await $0.mailFrom("a@example.org", parameters: [:]) }
        _ = await plain.run(.headers) { await $0.headers([("From", "a@example.org")], raw: [" a@example.org"]) }
        let (alone, _) = await plain.endOfMessageByFilter()
        XCTAssertEqual(alone, .continue)
        XCTAssertTrue(judge.seen.withLockedValue { $0.isEmpty })
    }
}
