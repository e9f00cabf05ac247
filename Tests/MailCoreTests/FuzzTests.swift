import PosternTestSupport
import XCTest
import PluginAPI

/// Malformed input never crashes or hangs, and chunking never changes a result.
final class FuzzTests: XCTestCase {
    private static let snippets: [String] = [
        "--", "\r\n", "\n", "--outer\r\n", "--inner--\r\n", "--b1--", "--b\r\n", "=?", "?=", "=?utf-8?b?", "\"", "(", ")",
        "<", ">", "\u{0}", "\r\n\r\n", "Content-Type: multipart/mixed; boundary=q\r\n", "--q\r\n", "\n \n", "\\",
        "Content-Type: message/rfc822\r\n\r\n", ";", "*0*=", "%", "'", "@", ":", ",", "=", "\u{FF}",
    ]

    private func mutate(_ input: [UInt8], _ rng: inout SeededRandom) -> [UInt8] {
        var m = input
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            let pos = m.isEmpty ? 0 : Int.random(in: 0..<m.count, using: &rng)
            switch Int.random(in: 0..<6, using: &rng) {
            case 0 where !m.isEmpty: m[pos] = UInt8.random(in: 0...255, using: &rng)
            case 1: m.insert(contentsOf: bytes(FuzzTests.snippets.randomElement(using: &rng)!), at: pos)
            case 2 where !m.isEmpty: m.removeSubrange(pos..<min(m.count, pos + Int.random(in: 1...40, using: &rng)))
            case 3: m = Array(m[0..<pos])
            case 4 where !m.isEmpty:
                let end = min(m.count, pos + Int.random(in: 1...80, using: &rng))
                m.insert(contentsOf: m[pos..<end], at: Int.random(in: 0...m.count, using: &rng))
            default: m.insert(UInt8.random(in: 0...255, using: &rng), at: pos)
            }
        }
        return m
    }

    func testMutatedMessages() {
        var rng = SeededRandom(seed: 42)
        let seeds = MIMEStructureTests.all.map(\.message)
        let limits = MIMEParserLimits(maxDepth: 8, maxParts: 50)
        for iteration in 0..<3_000 {
            let message = mutate(seeds[iteration % seeds.count], &rng)
            let whole = MIMEMessage(parsing: message, limits: limits)
            var p = MIMEStructureParser(limits: limits)
            var i = 0
            while i < message.count {
                let j = min(message.count, i + Int.random(in: 1...64, using: &rng))
                p.feed(message[i..<j])
                i = j
            }
            let chunked = p.finish()
            XCTAssertEqual(whole, chunked, "iteration \(iteration)")
            XCTAssertEqual(whole.size, message.count)
            _ = whole.root.imapBodyStructure
            _ = whole.root.imapBody
            for part in whole.root.allParts {
                XCTAssertLessThanOrEqual(part.bodyOffset + part.bodySize, message.count)
                XCTAssertGreaterThanOrEqual(part.bodySize, 0)
                _ = part.envelope.imapString
                _ = part.envelope.decodedSubject
                let body = message[part.bodyOffset..<(part.bodyOffset + part.bodySize)]
                _ = Base64Decoder.decode(body)
                _ = QuotedPrintableDecoder.decode(body)
            }
        }
    }

    func testRandomFieldValues() {
        var rng = SeededRandom(seed: 7)
        let alphabet = bytes("ab@.<>\"()\\,;: =?QB_%'*[]-xn\r\n\t") + [0, 0xC3, 0xA9, 0xFF]
        for _ in 0..<3_000 {
            let value = (0..<Int.random(in: 0...60, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }
            _ = MailAddressList(parsing: value)
            _ = EncodedWords.decode(value)
            _ = MIMEContentType.parse(bytes("text/plain;") + value)
            _ = MIMEContentDisposition.parse(bytes("attachment;") + value)
            _ = try? SMTPPath.parse(String(decoding: value, as: UTF8.self))
            _ = Punycode.decode(String(decoding: value.filter { $0 < 0x80 }, as: UTF8.self))
            _ = IMAPString.humanString(value)
            _ = MailHeaderBlock(parsing: value)
            _ = EncodedWords.encode(String(decoding: value, as: UTF8.self))
        }
    }
}
