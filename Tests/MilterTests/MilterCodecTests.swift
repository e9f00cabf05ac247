import Foundation
import PluginAPI
import XCTest
@testable import PosternMilterCore

/// The milter wire codec and conversation as pure functions over bytes: exact packets out,
/// fixtures in (whole and byte by byte), and every malformed or out-of-place input refused.
final class MilterCodecTests: XCTestCase {
    /// A packet as a milter would send it: length, command octet, data.
    func packet(_ code: Character, _ data: [UInt8] = []) -> [UInt8] {
        MilterWire.uint32(UInt32(data.count + 1)) + [code.asciiValue!] + data
    }

    func cstr(_ s: String) -> [UInt8] { Array(s.utf8) + [0] }

    /// A conversation after the milter answered option negotiation with these flags and actions.
    func ready(actions: MilterActions = .all, flags: MilterProtocolFlags = [], lists: [UInt8] = []) throws -> MilterConversation {
        var c = MilterConversation()
        _ = c.negotiate()
        let reply = packet("O", MilterWire.uint32(6) + MilterWire.uint32(actions.rawValue) + MilterWire.uint32(flags.rawValue) + lists)
        XCTAssertEqual(try c.receive(reply), [.negotiated])
        return c
    }

    /// Feeds `bytes` whole to one conversation and one octet at a time to a copy: same events.
    func feedBothWays(_ c: inout MilterConversation, _ bytes: [UInt8]) throws -> [MilterEvent] {
        var copy = c
        let whole = try c.receive(bytes)
        var single: [MilterEvent] = []
        for b in bytes { single += try copy.receive([b]) }
        XCTAssertEqual(whole, single, "chunking changed the events")
        return whole
    }

    // MARK: Commands

    func testCommandsEncodeToExactBytes() {
        var c = MilterConversation()
        XCTAssertEqual(c.negotiate(), [0, 0, 0, 13, 0x4F, 0, 0, 0, 6, 0, 0, 0x01, 0xFF] + MilterWire.uint32(MilterProtocolFlags.offered.rawValue))
        XCTAssertEqual(MilterCommand.connect(hostname: "mail.example", family: .inet, port: 25, address: "192.0.2.1").encoded(),
                       [0, 0, 0, 27, 0x43] + cstr("mail.example") + [0x34, 0, 25] + cstr("192.0.2.1"))
        XCTAssertEqual(MilterCommand.connect(hostname: "local", family: .unknown, port: 0, address: "").encoded(),
                       [0, 0, 0, 8, 0x43] + cstr("local") + [0x55])
        XCTAssertEqual(MilterCommand.macros(.mail, [("i", "Q1"), ("{auth_authen}", "alice")]).encoded(),
                       [0, 0, 0, 27, 0x44, 0x4D] + cstr("i") + cstr("Q1") + cstr("{auth_authen}") + cstr("alice"))
        XCTAssertEqual(MilterCommand.mail(["<a@example.org>", "SIZE=10"]).encoded(),
                       [0, 0, 0, 25, 0x4D] + cstr("<a@example.org>") + cstr("SIZE=10"))
        XCTAssertEqual(MilterCommand.header(name: "Subject", value: "hi").encoded(), [0, 0, 0, 12, 0x4C] + cstr("Subject") + cstr("hi"))
        XCTAssertEqual(MilterCommand.body(Array("x\r\n".utf8)).encoded(), [0, 0, 0, 4, 0x42, 0x78, 13, 10])
        XCTAssertEqual(MilterCommand.endOfMessage.encoded(), [0, 0, 0, 1, 0x45])
        XCTAssertEqual(MilterCommand.abort.encoded(), [0, 0, 0, 1, 0x41])
        XCTAssertEqual(MilterCommand.quit.encoded(), [0, 0, 0, 1, 0x51])
        XCTAssertEqual(MilterCommand.data.encoded(), [0, 0, 0, 1, 0x54])
        XCTAssertEqual(MilterCommand.endOfHeaders.encoded(), [0, 0, 0, 1, 0x4E])
        // A NUL inside a string would end it early on the other side: it is dropped.
        XCTAssertEqual(MilterCommand.helo("a\u{0}b").encoded(), [0, 0, 0, 4, 0x48, 0x61, 0x62, 0])
    }

    // MARK: Negotiation

    func testNegotiationWithSymbolListsWholeAndByteByByte() throws {
        var c = MilterConversation()
        _ = c.negotiate()
        let lists = MilterWire.uint32(2) + cstr("{auth_authen} i") + MilterWire.uint32(0) + cstr("j {daemon_name}")
        let reply = packet("O", MilterWire.uint32(6) + MilterWire.uint32(0x21) + MilterWire.uint32(0x8_0080) + lists)
        XCTAssertEqual(try feedBothWays(&c, reply), [.negotiated])
        XCTAssertEqual(c.actions, [.addHeaders, .quarantine])
        XCTAssertEqual(c.flags, [.noReplyHeader, .noReplyBody])
        XCTAssertEqual(c.macroLists, [.mail: ["{auth_authen}", "i"], .connect: ["j", "{daemon_name}"]])
        // Only the macros the milter named go out, before the step.
        let (bytes, awaits) = c.send(.mail(["<a@example.org>"]), macros: [("i", "Q1"), ("{mail_mailer}", "esmtp"), ("{auth_authen}", "alice")])
        XCTAssertTrue(awaits)
        XCTAssertEqual(bytes, MilterCommand.macros(.mail, [("i", "Q1"), ("{auth_authen}", "alice")]).encoded() + MilterCommand.mail(["<a@example.org>"]).encoded())
    }

    func testNegotiationRefusals() {
        func negotiate(_ data: [UInt8]) -> (any Error)? {
            var c = MilterConversation()
            _ = c.negotiate()
            do { _ = try c.receive(packet("O", data)); return nil } catch { return error }
        }
        XCTAssertEqual(negotiate(MilterWire.uint32(6) + MilterWire.uint32(0x200) + MilterWire.uint32(0)) as? MilterProtocolError,
                       .negotiation("milter wants actions 0x200 not offered"))
        XCTAssertEqual(negotiate(MilterWire.uint32(6) + MilterWire.uint32(0) + MilterWire.uint32(0x800)) as? MilterProtocolError,
                       .negotiation("milter wants protocol flags 0x800 not offered"))
        XCTAssertEqual(negotiate(MilterWire.uint32(1) + MilterWire.uint32(0) + MilterWire.uint32(0)) as? MilterProtocolError,
                       .negotiation("version 1"))
        XCTAssertEqual(negotiate(MilterWire.uint32(6) + MilterWire.uint32(0)) as? MilterProtocolError, .wire(.malformed("short integer")))
        XCTAssertEqual(negotiate(MilterWire.uint32(6) + MilterWire.uint32(0) + MilterWire.uint32(0) + MilterWire.uint32(9) + cstr("i")) as? MilterProtocolError,
                       .wire(.malformed("macro stage 9")))
        XCTAssertEqual(negotiate(MilterWire.uint32(6) + MilterWire.uint32(0) + MilterWire.uint32(0) + MilterWire.uint32(1) + Array("i".utf8)) as? MilterProtocolError,
                       .wire(.malformed("string without NUL")))
        // The body-size bits ask for larger chunks, which 65535 satisfies: accepted, not kept.
        var c = MilterConversation()
        _ = c.negotiate()
        XCTAssertEqual(try c.receive(packet("O", MilterWire.uint32(6) + MilterWire.uint32(0) + MilterWire.uint32(0x1000_0010))), [.negotiated])
        XCTAssertEqual(c.flags, [.noBody])
        // Anything else first is a violation.
        var early = MilterConversation()
        _ = early.negotiate()
        XCTAssertThrowsError(try early.receive(packet("c")))
    }

    // MARK: Steps

    func testStepsTheMilterSkipsOrLeavesUnansweredAreNotAwaited() throws {
        var c = try ready(flags: [.noConnect, .noHelo, .noReplyMail, .noReplyHeader, .headerLeadingSpace, .skip])
        XCTAssertEqual(c.send(.connect(hostname: "h", family: .inet, port: 1, address: "192.0.2.1"), macros: [("j", "mx")]).bytes, [])
        XCTAssertEqual(c.send(.helo("client")).bytes, [])
        let mail = c.send(.mail(["<a@example.org>"]))
        XCTAssertFalse(mail.awaitsAnswer)
        let header = c.send(.header(name: "Subject", value: " hi\n\tthere"))
        XCTAssertEqual(header.bytes, MilterCommand.header(name: "Subject", value: " hi\n\tthere").encoded(), "leading space negotiated")
        XCTAssertFalse(header.awaitsAnswer)
        XCTAssertTrue(c.send(.endOfHeaders).awaitsAnswer)
        XCTAssertEqual(try c.receive(packet("c")), [.answer(MilterAnswer(verdict: .continue))])
        XCTAssertTrue(c.send(.body(Array("part one".utf8))).awaitsAnswer)
        XCTAssertEqual(try c.receive(packet("s")), [.answer(MilterAnswer(verdict: .skip))])
        XCTAssertEqual(c.send(.body(Array("part two".utf8))).bytes, [], "no body after SKIP")
        XCTAssertEqual(c.send(.abort).bytes, MilterCommand.abort.encoded())
        XCTAssertFalse(c.bodySkipped, "a new message gets its body again")
    }

    func testHeaderValuesLoseTheirLeadingSpaceUnlessNegotiated() throws {
        var c = try ready(flags: [.noReplyHeader])
        XCTAssertEqual(c.send(.header(name: "Subject", value: " \thi\n there")).bytes,
                       MilterCommand.header(name: "Subject", value: "hi\n there").encoded(), "folds are kept")
    }

    func testEndOfMessageCollectsEveryActionInOrder() throws {
        var c = try ready()
        _ = c.send(.endOfMessage)
        let answer = packet("p") + packet("h", cstr("X-Scanned") + cstr("yes")) + packet("i", MilterWire.uint32(0) + cstr("DKIM-Signature") + cstr("v=1"))
            + packet("m", MilterWire.uint32(2) + cstr("X-Tag") + cstr("")) + packet("+", cstr("<bob@example.org>"))
            + packet("2", cstr("<carol@example.org>") + cstr("NOTIFY=NEVER")) + packet("-", cstr("<alice@example.org>"))
            + packet("e", cstr("<bounce@example.org>")) + packet("b", Array("new ".utf8)) + packet("b", Array("body".utf8))
            + packet("q", cstr("held for review")) + packet("y", cstr("550 5.7.1 Blocked by policy"))
        let events = try feedBothWays(&c, answer)
        XCTAssertEqual(events.first, .progress)
        guard case .answer(let a) = events.last, events.count == 2 else { return XCTFail("\(events)") }
        XCTAssertEqual(a.verdict, .reject(reply: "550 5.7.1 Blocked by policy"))
        XCTAssertEqual(a.modifications, [
            .addHeader(name: "X-Scanned", value: "yes"), .insertHeader(index: 0, name: "DKIM-Signature", value: "v=1"),
            .changeHeader(index: 2, name: "X-Tag", value: ""), .addRecipient("<bob@example.org>", arguments: nil),
            .addRecipient("<carol@example.org>", arguments: "NOTIFY=NEVER"), .deleteRecipient("<alice@example.org>"),
            .changeFrom("<bounce@example.org>", arguments: nil), .replaceBody(Array("new ".utf8)), .replaceBody(Array("body".utf8)),
            .quarantine(reason: "held for review"),
        ])
        let (verdict, changes) = MilterVerdictMapping.endOfMessage(a, leadingSpace: false)
        XCTAssertEqual(verdict, .reject(MailReply(550, "5.7.1", "Blocked by policy")), "a refusal outranks the quarantine")
        XCTAssertEqual(changes, [
            .addHeader(name: "X-Scanned", value: "yes"), .insertHeader(index: 0, name: "DKIM-Signature", value: "v=1"),
            .changeHeader(name: "X-Tag", index: 2, value: nil), .addRecipient("bob@example.org"), .addRecipient("carol@example.org"),
            .removeRecipient("alice@example.org"), .changeSender("bounce@example.org"), .replaceBody(Array("new body".utf8)),
        ])
        let held = MilterVerdictMapping.endOfMessage(MilterAnswer(verdict: .continue, modifications: [.quarantine(reason: "spam")]), leadingSpace: false)
        XCTAssertEqual(held.0, .quarantine(reason: "spam"))
    }

    func testVerdictsAndReplyTexts() {
        XCTAssertEqual(MilterVerdictMapping.verdict(.reject(reply: nil)), .reject(MailReply(550, "5.7.1", "Command rejected")))
        XCTAssertEqual(MilterVerdictMapping.verdict(.tempfail(reply: nil)), .tempfail(MailReply(451, "4.7.1", "Service unavailable - try again later")))
        XCTAssertEqual(MilterVerdictMapping.verdict(.tempfail(reply: "452 too busy")), .tempfail(MailReply(452, nil, "too busy")))
        XCTAssertEqual(MilterVerdictMapping.reply("554-5.7.1 first line\r\n554 5.7.1 second line"), MailReply(554, "5.7.1", "first line second line"))
        XCTAssertEqual(MilterVerdictMapping.verdict(.discard), .discard)
        XCTAssertEqual(MilterVerdictMapping.verdict(.accept), .accept)
    }

    // MARK: Malformed and out of place

    func testMalformedPacketsAreRefused() throws {
        func error(_ bytes: [UInt8], actions: MilterActions = .all, step: MilterStep = .endOfMessage) throws -> MilterProtocolError? {
            var c = try ready(actions: actions)
            _ = c.send(step)
            do {
                _ = try c.receive(bytes)
                return nil
            } catch let e as MilterProtocolError {
                // After a violation nothing more is taken.
                XCTAssertThrowsError(try c.receive(packet("c")))
                return e
            }
        }
        XCTAssertEqual(try error([0, 0, 0, 0]), .wire(.badLength(0)))
        XCTAssertEqual(try error([0xFF, 0, 0, 0]), .wire(.badLength(0xFF00_0000)))
        XCTAssertEqual(try error(packet("Z")), .wire(.unknownReply(0x5A)))
        XCTAssertEqual(try error(packet("c", [1])), .wire(.malformed("trailing data after 'c'")))
        XCTAssertEqual(try error(packet("h", cstr("X-A"))), .wire(.malformed("string without NUL")))
        XCTAssertEqual(try error(packet("h", cstr("X-A") + cstr("1") + [7])), .wire(.malformed("trailing data after 'h'")))
        XCTAssertEqual(try error(packet("m", [0, 0])), .wire(.malformed("short integer")))
        XCTAssertEqual(try error(packet("y", cstr("250 ok"))), .wire(.malformed("reply code '250 ok'")))
        XCTAssertEqual(try error(packet("y", cstr("5x"))), .wire(.malformed("reply code '5x'")))
        XCTAssertEqual(try error(packet("h", cstr("X-A") + cstr("1")), step: .rcpt(["<b@example.org>"])), .unexpected("ADDHEADER at rcpt"))
        XCTAssertEqual(try error(packet("b", [1]), actions: [.addHeaders]), .unexpected("REPLBODY without negotiating it"))
        XCTAssertEqual(try error(packet("s")), .unexpected("SKIP at eom"))
        XCTAssertEqual(try error(packet("O", MilterWire.uint32(6) + MilterWire.uint32(0) + MilterWire.uint32(0))), .unexpected("OPTNEG at eom"))
        XCTAssertEqual(try error(packet("4")), .unexpected("SHUTDOWN at eom"))
        // A reply nobody asked for.
        var idle = try ready()
        XCTAssertThrowsError(try idle.receive(packet("c"))) { XCTAssertEqual($0 as? MilterProtocolError, .unexpected("unsolicited CONTINUE")) }
        // A partial packet is kept until the rest arrives.
        var c = try ready()
        _ = c.send(.helo("client"))
        XCTAssertEqual(try c.receive([0, 0, 0]), [])
        XCTAssertEqual(try c.receive([1, 0x61]), [.answer(MilterAnswer(verdict: .accept))])
    }

    func testAddresses() {
        XCTAssertEqual(MilterAddress("inet:127.0.0.1:8891"), .tcp(host: "127.0.0.1", port: 8891))
        XCTAssertEqual(MilterAddress("8891@localhost"), .tcp(host: "localhost", port: 8891))
        XCTAssertEqual(MilterAddress("inet6:[::1]:11332"), .tcp(host: "::1", port: 11332))
        XCTAssertEqual(MilterAddress("unix:/run/milter.sock"), .unix(path: "/run/milter.sock"))
        XCTAssertEqual(MilterAddress("/run/milter.sock"), .unix(path: "/run/milter.sock"))
        XCTAssertNil(MilterAddress("inet:127.0.0.1"))
        XCTAssertNil(MilterAddress("inet::25"))
        XCTAssertNil(MilterAddress("inet:host:99999"))
    }
}
