import Foundation
import PluginAPI
import XCTest
@testable import PosternFilterClamAVCore

// What goes to clamd and what `cleanse` does with what it found, on byte-level fixtures
// (malformed ones included), without clamd: the findings are written by hand.

final class CleanseTests: XCTestCase {
    func crlf(_ text: String) -> [UInt8] { Array(text.replacingOccurrences(of: "\n", with: "\r\n").utf8) }

    let eicar = Array(Signatures.eicar.utf8)

    func objects(_ message: [UInt8]) -> [ScanObject] { ScanObjects.collect(message, mime: MIMEMessage(parsing: message)) }

    func testEveryLeafIsDecodedAndUUEncodedFilesAreTakenOut() {
        let message = crlf("""
            Subject: mixed
            Content-Type: multipart/mixed; boundary=b

            --b
            Content-Type: text/plain

            See below.
            \(Fixtures.uuencode(eicar, name: "old.com"))--b
            Content-Type: application/octet-stream; name*=iso-8859-1''%E9t%E9.com
            Content-Transfer-Encoding: base64

            \(Fixtures.base64(eicar))
            --b
            Content-Type: text/plain; charset=iso-8859-1
            Content-Transfer-Encoding: quoted-printable

            \(Fixtures.eicarQuotedPrintable)
            --b
            Content-Type: text/plain

            --b--
            """)
        let found = objects(message)
        XCTAssertEqual(found.first?.origin, .message)
        XCTAssertEqual(found.first?.bytes, message)
        let origins = found.map(\.origin)
        // Parts 1..4; the empty part 4 is left out; the uuencoded file of part 1 follows it.
        XCTAssertEqual(origins.count, 5, "\(origins)")
        XCTAssertEqual(origins[1], .part(index: 1))
        guard case .uuencoded(1, "old.com", _) = origins[2] else { return XCTFail("\(origins)") }
        XCTAssertEqual(found[2].bytes, eicar)
        XCTAssertEqual(origins[3], .part(index: 2))
        XCTAssertEqual(found[3].bytes, eicar, "base64 undone")
        XCTAssertEqual(origins[4], .part(index: 3))
        XCTAssertEqual(found[4].bytes, eicar, "quoted-printable undone (soft break, =XX)")
        XCTAssertEqual(origins[3].describe(in: MIMEMessage(parsing: message)), "part 2 (\u{e9}t\u{e9}.com)", "RFC 2231 name, Latin-1")
    }

    func testBrokenBoundariesStillReachTheAttachment() {
        // No close delimiter, a delimiter with transport padding, a preamble with the pattern.
        let message = crlf("""
            Content-Type: multipart/mixed; boundary="b"

            preamble
            --b\t
            Content-Type: application/octet-stream
            Content-Transfer-Encoding: base64

            \(Fixtures.base64(eicar))
            --b
            Content-Type: text/plain
            """)
        let found = objects(message)
        XCTAssertTrue(found.contains { $0.origin == .part(index: 1) && $0.bytes == eicar }, "\(found.map(\.origin))")
    }

    func testNestedMessagesAreWalkedInto() {
        let inner = Fixtures.withAttachment("inner", bytes: eicar)
        let message = crlf("Content-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: message/rfc822\n\n\(inner)\n--o--\n")
        let mime = MIMEMessage(parsing: message)
        let found = objects(message)
        let infected = found.first { $0.bytes == eicar }
        XCTAssertNotNil(infected)
        if case .part(let index)? = infected?.origin {
            XCTAssertEqual(mime.root.allParts.first { $0.index == index }?.depth, 3)
        } else {
            XCTFail("\(found.map(\.origin))")
        }
    }

    // MARK: - cleanse

    func apply(_ changes: [MIMERewrite.Change], _ message: [UInt8]) -> [UInt8] {
        let mods = MIMERewrite.modifications(changes, message: message, mime: MIMEMessage(parsing: message))
        let edits = MessageEdits(merging: [("clamav", mods)])
        guard edits.changesBody else { return [] }
        let bodyOffset = MIMEMessage(parsing: message).root.bodyOffset
        return Array(message[..<bodyOffset]) + edits.body(from: Array(message[bodyOffset...]))
    }

    func testTheInfectedAttachmentIsReplacedByANotice() throws {
        let message = crlf(Fixtures.withAttachment("one", bytes: eicar))
        let changes = try XCTUnwrap(Cleanse.changes([Finding(origin: .message, virus: "V"), Finding(origin: .part(index: 2), virus: "V")],
                                                    message: message, mime: MIMEMessage(parsing: message)))
        let out = String(decoding: apply(changes, message), as: UTF8.self)
        XCTAssertTrue(out.contains("--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nThe attachment \"eicar.com\" (application/octet-stream) was removed by the ma=\r\nil server's virus scanner: it contained the virus V.\r\n\r\n--b1--"), out)
        XCTAssertFalse(out.contains(Fixtures.base64(eicar)), out)
        let reparsed = MIMEMessage(parsing: Array(out.utf8))
        XCTAssertEqual(reparsed.problems, [])
        XCTAssertEqual(reparsed.root.children.count, 2)
    }

    func testWhatCannotBeRemovedAloneIsNil() {
        let single = crlf("Subject: x\n\n\(Signatures.eicar)\n")
        XCTAssertNil(Cleanse.changes([Finding(origin: .message, virus: "V"), Finding(origin: .part(index: 0), virus: "V")],
                                     message: single, mime: MIMEMessage(parsing: single)), "the message's only part")
        let multi = crlf(Fixtures.withAttachment("one", bytes: eicar))
        XCTAssertNil(Cleanse.changes([Finding(origin: .message, virus: "V")], message: multi, mime: MIMEMessage(parsing: multi)),
                     "found in the whole only")
        XCTAssertNil(Cleanse.changes([Finding(origin: .message, virus: "W"), Finding(origin: .part(index: 2), virus: "V")],
                                     message: multi, mime: MIMEMessage(parsing: multi)), "the whole holds another virus no part explains")
        // An enclosed message that is nothing but the virus, as the message's only part.
        let wrapped = crlf("Content-Type: message/rfc822\n\nSubject: inner\n\n\(Signatures.eicar)\n")
        XCTAssertNil(Cleanse.changes([Finding(origin: .part(index: 1), virus: "V")], message: wrapped, mime: MIMEMessage(parsing: wrapped)))
    }

    func testAnEnclosedMessageThatIsAllVirusIsRemovedWhole() throws {
        let message = crlf("Content-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: text/plain\n\nkeep\n--o\nContent-Type: message/rfc822\n\nSubject: inner\n\n\(Signatures.eicar)\n--o--\n")
        let mime = MIMEMessage(parsing: message)
        let leaf = try XCTUnwrap(mime.root.allParts.first { $0.isLeaf && $0.depth == 2 })
        let changes = try XCTUnwrap(Cleanse.changes([Finding(origin: .part(index: leaf.index), virus: "V")], message: message, mime: mime))
        XCTAssertEqual(changes.count, 1)
        guard case .replacePart(let index, let bytes) = changes[0] else { return XCTFail("\(changes)") }
        XCTAssertEqual(index, 2, "the message/rfc822 part, not the enclosed message alone")
        XCTAssertTrue(String(decoding: bytes, as: UTF8.self).contains("An attached message (message/rfc822) was removed"))
        let out = String(decoding: apply(changes, message), as: UTF8.self)
        XCTAssertTrue(out.contains("keep"), out)
        XCTAssertFalse(out.contains("EICAR"), out)
    }

    func testAUUEncodedFileIsCutOutOfAVerbatimTextAndTheEncodedTextIsReplaced() throws {
        let block = Fixtures.uuencode(eicar, name: "a.com")
        let plain = crlf("Subject: x\n\nBefore.\n\(block)After.\n")
        var mime = MIMEMessage(parsing: plain)
        let file = try XCTUnwrap(UUEncodedFile.find(in: mime.root.decodedBody(in: plain)).first)
        let cut = try XCTUnwrap(Cleanse.changes([Finding(origin: .uuencoded(part: 0, name: "a.com", range: file.range), virus: "V")],
                                                message: plain, mime: mime))
        XCTAssertEqual(String(decoding: apply(cut, plain), as: UTF8.self),
                       "Subject: x\r\n\r\nBefore.\r\n[uuencoded file a.com removed by the mail server's virus scanner: it contained V]\r\nAfter.\r\n")

        // In a base64 text the offsets are not the message's: the whole part goes; alone, nothing can.
        let encoded = crlf("Subject: x\nContent-Transfer-Encoding: base64\n\n\(Fixtures.base64(Array("Before.\n\(block)".utf8)))\n")
        mime = MIMEMessage(parsing: encoded)
        XCTAssertNil(Cleanse.changes([Finding(origin: .uuencoded(part: 0, name: "a.com", range: 0..<10), virus: "V")], message: encoded, mime: mime))
    }

    // MARK: - the decision

    func settings(_ change: (inout ClamAVSettings) -> Void = { _ in }) -> ClamAVSettings {
        var s = ClamAVSettings(clamd: .tcp(host: "127.0.0.1", port: 1))
        change(&s)
        return s
    }

    func testDecisionPerAction() {
        let message = crlf(Fixtures.withAttachment("one", bytes: eicar))
        let mime = MIMEMessage(parsing: message)
        let found = [Finding(origin: .part(index: 2), virus: "Eicar-Test-Signature")]
        let decision = ClamAVDecision(settings: settings(), hostname: "mx.example")
        func decide(_ action: ClamAVSettings.Action, _ findings: [Finding] = found, failed: Bool = false,
                    fields: [(name: String, value: String)] = []) -> (FilterVerdict, [FilterModification]) {
            decision.decide(findings: findings, failed: failed, action: action, message: message, mime: mime, fields: fields)
        }
        XCTAssertEqual(decide(.reject).0, .reject(MailReply(554, "5.7.1", "message refused: virus Eicar-Test-Signature found")))
        XCTAssertEqual(decide(.reject, found + [Finding(origin: .message, virus: "Other")]).0,
                       .reject(MailReply(554, "5.7.1", "message refused: viruses Eicar-Test-Signature, Other found")))
        XCTAssertEqual(decide(.tempfail).0, .tempfail(MailReply(451, "4.7.1", "message deferred: virus Eicar-Test-Signature found")))
        XCTAssertEqual(decide(.discard).0, .discard)
        XCTAssertEqual(decide(.quarantine).0, .quarantine(reason: "virus Eicar-Test-Signature found"))
        XCTAssertEqual(decide(.quarantine).1.last, .addHeader(name: "X-Virus-Status", value: "Infected (Eicar-Test-Signature)"))
        let cleansed = decide(.cleanse)
        XCTAssertEqual(cleansed.0, .continue)
        XCTAssertEqual(cleansed.1.suffix(2), [.addHeader(name: "X-Virus-Scanned", value: "ClamAV at mx.example"),
                                              .addHeader(name: "X-Virus-Status", value: "Cleaned (Eicar-Test-Signature removed)")])
        // A scan that failed next to a found virus: cleansing cannot vouch for the rest.
        XCTAssertEqual(decide(.cleanse, failed: true).0, .tempfail(MailReply(451, "4.7.1", "virus scanner unavailable, try again later")))
        // Clean: the headers, the sender's own ones deleted first (from the last).
        XCTAssertEqual(decide(.reject, [], fields: [("x-virus-status", "Clean"), ("Subject", "s"), ("X-Virus-Status", "Clean")]).1, [
            .changeHeader(name: "X-Virus-Status", index: 2, value: nil), .changeHeader(name: "X-Virus-Status", index: 1, value: nil),
            .addHeader(name: "X-Virus-Scanned", value: "ClamAV at mx.example"), .addHeader(name: "X-Virus-Status", value: "Clean"),
        ])
        XCTAssertEqual(decide(.reject, [], failed: true).0, .tempfail(MailReply(451, "4.7.1", "virus scanner unavailable, try again later")))
        let quiet = ClamAVDecision(settings: settings { $0.addHeaders = false; $0.onError = .accept }, hostname: "mx")
        XCTAssertEqual(quiet.decide(findings: [], failed: false, action: .reject, message: message, mime: mime, fields: []).1, [])
        XCTAssertEqual(quiet.decide(findings: [], failed: true, action: .reject, message: message, mime: mime, fields: []).0, .continue)
    }

    func testConfigErrorsSayWhatToWrite() {
        XCTAssertThrowsError(try ClamAVSettings(ConfigSection(["clamd": .string("clamd.sock")]))) { error in
            XCTAssertTrue("\(error)".contains("is not unix:/PATH or inet:HOST:PORT"), "\(error)")
        }
        XCTAssertThrowsError(try ClamAVSettings(ConfigSection(["clamd": .string("unix:/x"), "timeout": .integer(0)])))
        let s = try? ClamAVSettings(ConfigSection(["clamd": .string("inet:127.0.0.1:3310"), "internal_action": .string("cleanse"),
                                                   "max_size": .string("10M"), "on_error": .string("accept")]))
        XCTAssertEqual(s?.actions[.internal], .cleanse)
        XCTAssertEqual(s?.actions[.inbound], .reject)
        XCTAssertEqual(s?.maxSize, 10 << 20)
        XCTAssertEqual(s?.onError, .accept)
    }
}
