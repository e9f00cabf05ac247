import XCTest
@testable import PosternPOP3Core

/// The POP3 command parser and the transfer encoding, byte by byte, from the plugin's core.
final class POP3CommandTests: XCTestCase {
    func parse(_ text: String) -> Result<POP3Command, POP3Command.ParseError> { POP3Command.parse(Array(text.utf8)) }

    func testCommands() {
        let cases: [(String, POP3Command)] = [
            ("USER alice@example.org", .user("alice@example.org")),
            ("user bob", .user("bob")),
            ("PASS secret with spaces ", .pass("secret with spaces ")),
            ("APOP mrose c4c9334bac560ecc979e58001b3e22fb", .apop(name: "mrose", digest: "c4c9334bac560ecc979e58001b3e22fb")),
            ("AUTH", .auth(mechanism: nil, initialResponse: nil)),
            ("AUTH plain", .auth(mechanism: "PLAIN", initialResponse: nil)),
            ("AUTH PLAIN AGFsaWNlAHB3", .auth(mechanism: "PLAIN", initialResponse: "AGFsaWNlAHB3")),
            ("AUTH PLAIN =", .auth(mechanism: "PLAIN", initialResponse: "=")),
            ("STLS", .stls), ("capa", .capa), ("STAT", .stat), ("LIST", .list(nil)), ("LIST 2", .list(2)),
            ("RETR 1", .retr(1)), ("DELE 12", .dele(12)), ("NOOP", .noop), ("RSET", .rset), ("TOP 3 0", .top(3, lines: 0)),
            ("TOP 3 10", .top(3, lines: 10)), ("UIDL", .uidl(nil)), ("UIDL 7", .uidl(7)), ("QUIT", .quit),
        ]
        for (text, expected) in cases { XCTAssertEqual(try parse(text).get(), expected, text) }
    }

    func testMalformedCommands() {
        let cases: [(String, String)] = [
            ("", "-ERR unknown command "),
            ("FOO", "-ERR unknown command FOO"),
            ("RETR", "-ERR RETR needs a message number"),
            ("RETR x", "-ERR RETR needs a message number"),
            ("RETR -1", "-ERR RETR needs a message number"),
            ("RETR 1 2", "-ERR RETR needs a message number"),
            ("RETR 99999999999", "-ERR RETR needs a message number"),
            ("LIST a", "-ERR LIST takes at most a message number"),
            ("TOP 1", "-ERR TOP needs a message number and a line count"),
            ("TOP 1 x", "-ERR TOP needs a message number and a line count"),
            ("STAT now", "-ERR STAT takes no argument"),
            ("QUIT please", "-ERR QUIT takes no argument"),
            ("USER", "-ERR USER needs a name"),
            ("PASS", "-ERR PASS needs a password"),
            ("APOP onlyname", "-ERR APOP needs a name and a digest"),
            ("AUTH PLAIN a b", "-ERR AUTH mechanism [initial-response]"),
            ("RETR\u{0}1", "-ERR NUL byte in command"),
            ("RETR 1\u{0}", "-ERR NUL byte in command"),
            ("RETR  1", "-ERR RETR needs a message number"),
        ]
        for (text, reply) in cases {
            switch parse(text) {
            case .success(let c): XCTFail("\(text.debugDescription) parsed as \(c)")
            case .failure(let e): XCTAssertEqual(e.reply, reply, text.debugDescription)
            }
        }
        // 8-bit bytes are not UTF-8 here: they are replaced, never a crash.
        XCTAssertEqual(try POP3Command.parse([0x55, 0x53, 0x45, 0x52, 0x20, 0xFF, 0xFE]).get(), .user("\u{FFFD}\u{FFFD}"))
    }

    func testTransferNormalisesLineEndsAndStuffsDots() {
        let message = Array("Subject: x\r\n\r\n.hidden\nbare\rcr\r\n..two\r\nend".utf8)
        XCTAssertEqual(String(decoding: POP3Transfer.encode(message), as: UTF8.self),
                       "Subject: x\r\n\r\n..hidden\r\nbare\r\ncr\r\n...two\r\nend\r\n")
    }

    func testTopSendsHeaderAndFirstLines() {
        let message = Array("A: 1\r\nB: 2\r\n\r\nl1\r\n.l2\r\nl3\r\n".utf8)
        XCTAssertEqual(String(decoding: POP3Transfer.encode(message, bodyLines: 0), as: UTF8.self), "A: 1\r\nB: 2\r\n\r\n")
        XCTAssertEqual(String(decoding: POP3Transfer.encode(message, bodyLines: 2), as: UTF8.self), "A: 1\r\nB: 2\r\n\r\nl1\r\n..l2\r\n")
        XCTAssertEqual(String(decoding: POP3Transfer.encode(message, bodyLines: 99), as: UTF8.self), "A: 1\r\nB: 2\r\n\r\nl1\r\n..l2\r\nl3\r\n")
        // No body at all: the header alone.
        XCTAssertEqual(String(decoding: POP3Transfer.encode(Array("A: 1\r\n".utf8), bodyLines: 5), as: UTF8.self), "A: 1\r\n")
    }

    /// Whatever the bytes, the transfer form has CRLF line ends only, never a line that is just
    /// "." (which would end the response early), and loses no byte other than line ends.
    func testTransferFuzz() {
        var rng = SystemRandomNumberGenerator()
        let alphabet: [UInt8] = [0x2E, 0x0D, 0x0A, 0x41, 0x20, 0x00, 0xFF]
        for _ in 0..<3000 {
            let input = (0..<Int.random(in: 0..<60, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }
            let out = POP3Transfer.encode(input)
            let text = String(decoding: out, as: UTF8.self)
            XCTAssertTrue(out.isEmpty || text.hasSuffix("\r\n"))
            let lines = text.components(separatedBy: "\r\n").dropLast()
            XCTAssertFalse(lines.contains("."), "\(input)")
            XCTAssertFalse(lines.contains { $0.contains("\r") || $0.contains("\n") })
            XCTAssertEqual(out.filter { $0 != 0x0D && $0 != 0x0A && $0 != 0x2E }, input.filter { $0 != 0x0D && $0 != 0x0A && $0 != 0x2E })
        }
    }
}
