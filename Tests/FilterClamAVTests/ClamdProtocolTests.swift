import Foundation
import PluginAPI
import XCTest
@testable import PosternFilterClamAVCore

// INSTREAM byte for byte: the request's framing and every kind of reply, malformed ones included.

final class ClamdProtocolTests: XCTestCase {
    func testRequestFraming() {
        XCTAssertEqual(ClamdInstream.request(Array("abcde".utf8), chunkSize: 2),
                       Array("zINSTREAM".utf8) + [0] + [0, 0, 0, 2] + Array("ab".utf8) + [0, 0, 0, 2] + Array("cd".utf8)
                       + [0, 0, 0, 1] + Array("e".utf8) + [0, 0, 0, 0])
        XCTAssertEqual(ClamdInstream.request([]), Array("zINSTREAM".utf8) + [0, 0, 0, 0, 0])
        // Network order.
        XCTAssertEqual(Array(ClamdInstream.frame(ArraySlice(repeating: 7, count: 0x01_02_03)).prefix(4)), [0, 1, 2, 3])
    }

    func testReplies() {
        XCTAssertEqual(ClamdReply.parse(Array("stream: OK\0".utf8)), .clean)
        XCTAssertEqual(ClamdReply.parse(Array("stream: OK\n".utf8)), .clean)
        XCTAssertEqual(ClamdReply.parse(Array("stream: Eicar-Test-Signature FOUND\0".utf8)), .infected(virus: "Eicar-Test-Signature"))
        // ExtendedDetectionInfo.
        XCTAssertEqual(ClamdReply.parse(Array("stream: Eicar-Test-Signature(44d88612fea8a8f36de82e1278abb02f:68) FOUND".utf8)),
                       .infected(virus: "Eicar-Test-Signature"))
        // A name with brackets that are not the extended info keeps them.
        XCTAssertEqual(ClamdReply.parse(Array("stream: Win.Test(x) FOUND".utf8)), .infected(virus: "Win.Test(x)"))
        // IDSESSION's request number.
        XCTAssertEqual(ClamdReply.parse(Array("12: stream: OK".utf8)), .clean)
        XCTAssertEqual(ClamdReply.parse(Array("3: stream: Foo.Bar FOUND".utf8)), .infected(virus: "Foo.Bar"))
        XCTAssertEqual(ClamdReply.parse(Array("INSTREAM size limit exceeded. ERROR\0".utf8)), .sizeLimitExceeded)
        XCTAssertEqual(ClamdReply.parse(Array("stream: Can't allocate memory ERROR".utf8)), .failed("stream: Can't allocate memory"))
        XCTAssertEqual(ClamdReply.parse(Array("ERROR".utf8)), .failed("ERROR"))
        XCTAssertEqual(ClamdReply.parse(Array("UNKNOWN COMMAND".utf8)), .failed("UNKNOWN COMMAND"))
        XCTAssertEqual(ClamdReply.parse(Array("COMMAND READ TIMED OUT\0".utf8)), .failed("COMMAND READ TIMED OUT"))
    }

    func testMalformedReplies() {
        for text in ["", "\0", "\n", "OK", "stream:OK", "stream: ", "stream: FOUND", "stream:  FOUND", "stream: two words FOUND",
                     "stream: Name found", "stream: OKAY", "HTTP/1.1 400 Bad Request", "12 stream: OK", ": stream: OK"] {
            guard case .malformed = ClamdReply.parse(Array(text.utf8)) else {
                XCTFail("\(text.debugDescription) is not a clamd reply: \(ClamdReply.parse(Array(text.utf8)))")
                continue
            }
        }
        // A NUL inside, a control character in the name, bytes that are not UTF-8.
        for bytes: [UInt8] in [Array("stream: O".utf8) + [0] + Array("K".utf8), Array("stream: A\u{1}B FOUND".utf8),
                               Array("stream: ".utf8) + [0xff, 0xfe] + Array(" FOUND".utf8)] {
            // (A NUL inside only reaches `parse` when a caller hands it a whole buffer.)
            guard case .malformed = ClamdReply.parse(bytes) else {
                XCTFail("\(bytes) is not a clamd reply: \(ClamdReply.parse(bytes))")
                continue
            }
        }
    }

    func testReaderCompletesAtTheNULWhateverThePieces() {
        let wire = Array("stream: Eicar-Test-Signature FOUND\0".utf8)
        var reader = ClamdReplyReader()
        var outcome = ClamdReplyReader.Outcome.needMore
        for (i, byte) in wire.enumerated() {
            outcome = reader.feed([byte])
            if i < wire.count - 1 { XCTAssertEqual(outcome, .needMore) }
        }
        XCTAssertEqual(outcome, .reply(.infected(virus: "Eicar-Test-Signature")))
        // What follows the NUL is not part of the reply.
        var second = ClamdReplyReader()
        XCTAssertEqual(second.feed(Array("stream: OK\0garbage".utf8)), .reply(.clean))
    }

    func testReaderRefusesAnEndlessReplyAndKeepsWhatCameBeforeAClose() {
        var reader = ClamdReplyReader()
        XCTAssertEqual(reader.feed([UInt8](repeating: 65, count: 4000)), .needMore)
        guard case .reply(.malformed) = reader.feed([UInt8](repeating: 65, count: 200)) else { return XCTFail("no limit") }
        var closed = ClamdReplyReader()
        XCTAssertEqual(closed.feed(Array("INSTREAM size limit exceeded. ERROR".utf8)), .needMore)
        XCTAssertEqual(closed.finish(), .sizeLimitExceeded)
        XCTAssertNil(ClamdReplyReader().finish())
    }

    func testAddresses() {
        XCTAssertEqual(ClamdAddress("unix:/run/clamav/clamd.ctl"), .unix(path: "/run/clamav/clamd.ctl"))
        XCTAssertEqual(ClamdAddress("/run/clamav/clamd.ctl"), .unix(path: "/run/clamav/clamd.ctl"))
        XCTAssertEqual(ClamdAddress("inet:127.0.0.1:3310"), .tcp(host: "127.0.0.1", port: 3310))
        XCTAssertEqual(ClamdAddress("clamav.internal:3310"), .tcp(host: "clamav.internal", port: 3310))
        XCTAssertEqual(ClamdAddress("inet:[::1]:3310"), .tcp(host: "::1", port: 3310))
        XCTAssertEqual(ClamdAddress("inet:[::1]:3310")?.description, "inet:[::1]:3310")
        for bad in ["", "unix:", "unix:relative", "inet:host", "inet::3310", "inet:host:0", "inet:host:99999", "clamd"] {
            XCTAssertNil(ClamdAddress(bad), bad)
        }
    }
}
