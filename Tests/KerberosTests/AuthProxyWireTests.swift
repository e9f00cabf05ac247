import PluginAPI
import XCTest

/// The authproxyd frame codec, byte by byte: the documented layout, streams cut anywhere,
/// truncated and oversized frames, and fields that do not add up.
final class AuthProxyWireTests: XCTestCase {
    func testPingIsTheSmallestFrame() throws {
        XCTAssertEqual(AuthProxyRequest.ping.encoded(), [0, 0, 0, 1, 0x04])
        XCTAssertEqual(AuthProxyReply.pong.encoded(), [0, 0, 0, 1, 0x85])
    }

    func testGSSStartLayout() throws {
        let frame = AuthProxyRequest.gssStart(service: "imap", hostname: "h", token: [0xde, 0xad]).encoded()
        XCTAssertEqual(frame, [0, 0, 0, 20, 0x01,
                               0, 0, 0, 4, 0x69, 0x6d, 0x61, 0x70,
                               0, 0, 0, 1, 0x68,
                               0, 0, 0, 2, 0xde, 0xad])
    }

    func testEveryMessageRoundTrips() throws {
        let requests: [AuthProxyRequest] = [
            .gssStart(service: "smtp", hostname: "localhost", token: Array(0...255)),
            .gssStep(exchange: "0123abcd", token: []),
            .password(user: "ann@example.org", password: "pässwörd"),
            .ping, .metrics,
        ]
        for r in requests {
            var d = AuthProxyFrameDecoder()
            d.append(r.encoded())
            XCTAssertEqual(try AuthProxyRequest(XCTUnwrap(d.next())), r)
            XCTAssertNoThrow(try d.finish())
        }
        let replies: [AuthProxyReply] = [
            .gssContinue(exchange: "e1", token: [1, 2, 3]),
            .gssComplete(principal: "ann@POSTERN.TEST", user: "ann@example.org", authzid: nil),
            .gssComplete(principal: "ann@POSTERN.TEST", user: "ann@example.org", authzid: "bob@example.org"),
            .passwordVerified(principal: "ann@POSTERN.TEST", user: "ann@example.org"),
            .refused(.temporary, reason: "KDC unreachable"),
            .refused(.unknownUser, reason: ""),
            .pong, .metricsText("# TYPE x counter\nx 1\n"),
        ]
        for r in replies {
            var d = AuthProxyFrameDecoder()
            d.append(r.encoded())
            XCTAssertEqual(try AuthProxyReply(XCTUnwrap(d.next())), r)
        }
    }

    /// A stream delivered one octet at a time, two frames back to back.
    func testFramesSplitAnywhere() throws {
        let bytes = AuthProxyRequest.password(user: "u@d", password: "p").encoded() + AuthProxyRequest.ping.encoded()
        var d = AuthProxyFrameDecoder()
        var frames: [AuthProxyFrame] = []
        for b in bytes {
            d.append([b])
            while let f = try d.next() { frames.append(f) }
        }
        XCTAssertEqual(try frames.map { try AuthProxyRequest($0) }, [.password(user: "u@d", password: "p"), .ping])
        XCTAssertNoThrow(try d.finish())
    }

    func testTruncatedFrameAtEndOfStream() throws {
        let full = AuthProxyRequest.gssStep(exchange: "x", token: [9, 9, 9]).encoded()
        for cut in 1..<full.count {
            var d = AuthProxyFrameDecoder()
            d.append(full[0..<cut])
            XCTAssertNil(try d.next(), "cut at \(cut)")
            XCTAssertThrowsError(try d.finish()) { XCTAssertEqual($0 as? AuthProxyWire.DecodeError, .truncated) }
        }
    }

    /// The length is refused as soon as it is read, without waiting for (or buffering) the body.
    func testOversizedAndEmptyLengths() throws {
        var d = AuthProxyFrameDecoder()
        d.append([0x00, 0x01, 0x00, 0x01, 0x01])
        XCTAssertThrowsError(try d.next()) { XCTAssertEqual($0 as? AuthProxyWire.DecodeError, .badLength(65537)) }
        var huge = AuthProxyFrameDecoder()
        huge.append([0xff, 0xff, 0xff, 0xff])
        XCTAssertThrowsError(try huge.next()) { XCTAssertEqual($0 as? AuthProxyWire.DecodeError, .badLength(0xffff_ffff)) }
        var empty = AuthProxyFrameDecoder()
        empty.append([0, 0, 0, 0])
        XCTAssertThrowsError(try empty.next()) { XCTAssertEqual($0 as? AuthProxyWire.DecodeError, .badLength(0)) }
        // Exactly the maximum is fine.
        var max = AuthProxyFrameDecoder()
        let token = [UInt8](repeating: 7, count: AuthProxyWire.maximumFrameLength - 1 - 4 - 4 - 1)
        let frame = AuthProxyRequest.gssStep(exchange: "e", token: token).encoded()
        XCTAssertEqual(frame.count, 4 + AuthProxyWire.maximumFrameLength)
        max.append(frame)
        XCTAssertEqual(try AuthProxyRequest(XCTUnwrap(max.next())), .gssStep(exchange: "e", token: token))
    }

    func testMalformedFields() throws {
        // A field claiming 5 octets with 2 left.
        XCTAssertThrowsError(try decodeRequest([0, 0, 0, 7, 0x02, 0, 0, 0, 5, 0x61, 0x62])) {
            guard case .malformedField = $0 as? AuthProxyWire.DecodeError else { return XCTFail("\($0)") }
        }
        // A field length cut short (2 of 4 octets).
        XCTAssertThrowsError(try decodeRequest([0, 0, 0, 3, 0x04, 0, 0])) {
            guard case .malformedField = $0 as? AuthProxyWire.DecodeError else { return XCTFail("\($0)") }
        }
        // gssStep with one field only.
        XCTAssertThrowsError(try decodeRequest([0, 0, 0, 6, 0x02, 0, 0, 0, 1, 0x61])) {
            XCTAssertEqual($0 as? AuthProxyWire.DecodeError, .malformedField("missing token"))
        }
        // ping with a field it does not have.
        XCTAssertThrowsError(try decodeRequest([0, 0, 0, 5, 0x04, 0, 0, 0, 0])) {
            XCTAssertEqual($0 as? AuthProxyWire.DecodeError, .trailingBytes(1))
        }
        // Unknown type; a reply type sent as a request.
        XCTAssertThrowsError(try decodeRequest([0, 0, 0, 1, 0x7f])) { XCTAssertEqual($0 as? AuthProxyWire.DecodeError, .unknownType(0x7f)) }
        XCTAssertThrowsError(try decodeRequest([0, 0, 0, 1, 0x85])) { XCTAssertEqual($0 as? AuthProxyWire.DecodeError, .unknownType(0x85)) }
        // A user name that is not UTF-8.
        XCTAssertThrowsError(try decodeRequest([0, 0, 0, 11, 0x03, 0, 0, 0, 1, 0xff, 0, 0, 0, 1, 0x70])) {
            XCTAssertEqual($0 as? AuthProxyWire.DecodeError, .invalidUTF8("user"))
        }
        // A refusal code that does not exist.
        var d = AuthProxyFrameDecoder()
        d.append([0, 0, 0, 10, 0x84, 0, 0, 0, 1, 99, 0, 0, 0, 0])
        XCTAssertThrowsError(try AuthProxyReply(XCTUnwrap(d.next())))
    }

    private func decodeRequest(_ bytes: [UInt8]) throws -> AuthProxyRequest {
        var d = AuthProxyFrameDecoder()
        d.append(bytes)
        // Not XCTUnwrap: it would wrap the decoder's error in its own.
        guard let frame = try d.next() else { throw AuthProxyWire.DecodeError.truncated }
        return try AuthProxyRequest(frame)
    }
}
