import PosternTestSupport
import PluginAPI
import XCTest
@testable import PosternIMAPCore

/// Lines, literals, limits, refusals and resynchronisation, pauses for AUTHENTICATE and IDLE.
final class FramingTests: XCTestCase {
    func testSeveralPipelinedCommandsAndBareLF() {
        XCTAssertEqual(transcript(events("a1 NOOP\r\na2 CAPABILITY\na3 LOGOUT\r\n")), ["cmd:a1 NOOP", "cmd:a2 CAPABILITY", "cmd:a3 LOGOUT"])
    }

    func testNothingHappensBeforeTheLineEnds() {
        var parser = IMAPCommandParser()
        XCTAssertEqual(parser.feed(b("a1 NOOP")), [])
        XCTAssertEqual(parser.feed(b("\r")), [])
        XCTAssertEqual(transcript(parser.feed(b("\n"))), ["cmd:a1 NOOP"])
    }

    func testMalformedLinesAndTags() {
        assertRefused("\r\n", "* BAD Empty command line\r\n")
        assertRefused(" NOOP\r\n", "* BAD Missing tag\r\n")
        assertRefused("a+1 NOOP\r\n", "* BAD Invalid characters in tag\r\n")
        assertRefused("a*1 NOOP\r\n", "* BAD Invalid characters in tag\r\n")
        assertRefused("a\"1 NOOP\r\n", "* BAD Invalid characters in tag\r\n")
        assertRefused("+ NOOP\r\n", "* BAD Invalid characters in tag\r\n")
        assertRefused("(a) NOOP\r\n", "* BAD Invalid characters in tag\r\n")
        assertRefused("a1\r\n", "a1 BAD Missing command\r\n")
        assertRefused("a1 \r\n", "a1 BAD Missing command\r\n")
        assertRefused("a1  NOOP\r\n", "a1 BAD Unexpected extra space (expected a command name)\r\n")
        assertRefused("a1 FROB\r\n", "a1 BAD Unknown command FROB\r\n")
        assertRefused("a1 NOOP extra\r\n", "a1 BAD Too many arguments for NOOP\r\n")
        assertRefused("a1 NOOP \r\n", "a1 BAD Unexpected space at the end of the line\r\n")
        assertRefused("a1 LOGIN user\r\n", "a1 BAD Missing arguments for LOGIN (expected a password)\r\n")
        assertRefused("a1 LOGIN\r\n", "a1 BAD Missing arguments for LOGIN (expected a user name)\r\n")
        assertRefused("a1 LOGIN a b c\r\n", "a1 BAD Too many arguments for LOGIN\r\n")
        assertRefused("a1 RENAME a\r\n", "a1 BAD Missing arguments for RENAME (expected the new mailbox name)\r\n")
        assertRefused("a1 NOOP\rX\r\n", "a1 BAD Invalid characters in command name\r\n")
        assertRefused("a1 LOGIN a b\rX\r\n", "a1 BAD Control characters are not allowed here\r\n")
    }

    func testQuotedStrings() {
        assertRefused("a1 LOGIN \"fred pass\r\n", "a1 BAD Unterminated quoted string\r\n")
        assertRefused("a1 LOGIN \"fred\\x\" pass\r\n", "a1 BAD Invalid escape in quoted string (only \\\\ and \\\" are allowed)\r\n")
        assertRefused("a1 LOGIN \"fr\red\" pass\r\n", "a1 BAD Control characters are not allowed in a quoted string\r\n")
        // UTF-8 in a quoted string is taken with or without UTF8=ACCEPT (Dovecot does; imapfilter
        // sends SEARCH SUBJECT "München"); bytes that are not UTF-8 are refused either way.
        assertCommand("a1 LOGIN \"frëd\" pass\r\n", .login(user: "frëd", password: "pass"))
        let utf8 = IMAPParserOptions(utf8Accept: true)
        assertCommand("a1 LOGIN \"frëd\" pass\r\n", .login(user: "frëd", password: "pass"), options: utf8)
        XCTAssertEqual(transcript(events(b("a1 LOGIN \"fr") + [0xE9] + b("d\" pass\r\n"), options: utf8)), ["a1 BAD Invalid UTF-8 in quoted string\r\n"])
        XCTAssertEqual(transcript(events(b("a1 LOGIN \"fr") + [0xE9] + b("d\" pass\r\n"))), ["a1 BAD Invalid UTF-8 in quoted string\r\n"])
        assertCommand("a1 LOGIN \"\" \"\"\r\n", .login(user: "", password: ""))
    }

    func testEightBitAndNULBytes() {
        assertRefused("a1 NOOP\0\r\n", "a1 BAD NUL byte in command line\r\n")
        assertRefused("a1 LOGIN us\0er pw\r\n", "a1 BAD NUL byte in command line\r\n")
        assertRefused("\0\r\n", "* BAD NUL byte in command line\r\n")
        assertRefused("a1 SELECT bäd\r\n", "a1 BAD 8-bit characters are not allowed here\r\n")
        assertRefused("a1 LOGIN {2+}\r\na\0 pw\r\n", "a1 BAD NUL byte in literal\r\n")
        assertRefused("a1 NOÖP\r\n", "a1 BAD Invalid characters in command name\r\n")
        assertRefused("a1 NOOP(\r\n", "a1 BAD Invalid characters in command name\r\n")
    }

    func testSynchronizingLiteralGetsOneContinuationEach() {
        XCTAssertEqual(transcript(events("a1 LOGIN {4}\r\nfred {6}\r\nsecret\r\n")), ["+", "+", "cmd:a1 LOGIN"])
        // A zero-length literal.
        assertCommand("a1 LOGIN {0+}\r\n {0+}\r\n\r\n", .login(user: "", password: ""))
        XCTAssertEqual(transcript(events("a1 LOGIN {0}\r\n {0}\r\n\r\n")), ["+", "+", "cmd:a1 LOGIN"])
        // Literal contents are never read as syntax: CRLF, quotes, braces inside.
        assertCommand("a1 LOGIN {9+}\r\n\"a\r\n{1}\r\n {1+}\r\n\n\r\n", .login(user: "\"a\r\n{1}\r\n", password: "\n"))
    }

    func testLiteralHeaderFollowedByGarbageIsNotALiteral() {
        assertRefused("a1 LOGIN {4}x\r\n", "a1 BAD A literal's size must end the line\r\n")
        assertRefused("a1 LOGIN {4}fred pw\r\n", "a1 BAD A literal's size must end the line\r\n")
        assertRefused("a1 LOGIN {} pw\r\n", "a1 BAD Invalid literal size\r\n")
        assertRefused("a1 LOGIN {x}\r\n", "a1 BAD Invalid literal size\r\n")
        assertRefused("a1 LOGIN {4+ }\r\n", "a1 BAD Unexpected extra space (expected '}' after the literal size)\r\n")
        assertRefused("a1 LOGIN {1234567890123456789}\r\n", "a1 BAD Invalid literal size\r\n")
    }

    func testFirstLiteralIsCheckedBeforeTheContinuation() {
        // Unknown command, bad tag, wrong place for a literal: BAD at once, no "+", and the next
        // line (which a well-behaved client sends after the BAD) is a new command.
        XCTAssertEqual(transcript(events("a1 FROB {5}\r\na2 NOOP\r\n")), ["a1 BAD Unknown command FROB\r\n", "cmd:a2 NOOP"])
        XCTAssertEqual(transcript(events("a+1 LOGIN {5}\r\na2 NOOP\r\n")), ["* BAD Invalid characters in tag\r\n", "cmd:a2 NOOP"])
        XCTAssertEqual(transcript(events("a1 NOOP {5}\r\na2 NOOP\r\n")), ["a1 BAD Too many arguments for NOOP\r\n", "cmd:a2 NOOP"])
        XCTAssertEqual(transcript(events("a1 FETCH 1 {5}\r\na2 NOOP\r\n")), ["a1 BAD Expected a FETCH item, found '{'\r\n", "cmd:a2 NOOP"])
        XCTAssertEqual(transcript(events("a1 LOGIN \"x {5}\r\na2 NOOP\r\n")), ["a1 BAD Unterminated quoted string\r\n", "cmd:a2 NOOP"])
        // The same refusals with a non-synchronizing literal: its bytes come anyway and are dropped.
        XCTAssertEqual(transcript(events("a1 FROB {5+}\r\nhello\r\na2 NOOP\r\n")), ["a1 BAD Unknown command FROB\r\n", "cmd:a2 NOOP"])
        XCTAssertEqual(transcript(events("a1 FROB {9+}\r\na3 NOOP\r\n\r\na2 NOOP\r\n")), ["a1 BAD Unknown command FROB\r\n", "cmd:a2 NOOP"])
        // ... and so are further non-synchronizing literals of the refused command.
        XCTAssertEqual(transcript(events("a1 FROB {2+}\r\nxx {3+}\r\nyyy rest\r\na2 NOOP\r\n")), ["a1 BAD Unknown command FROB\r\n", "cmd:a2 NOOP"])
        // A later synchronizing literal of a refused command: no "+", so it never comes.
        XCTAssertEqual(transcript(events("a1 FROB {2+}\r\nxx {3}\r\na2 NOOP\r\n")), ["a1 BAD Unknown command FROB\r\n", "cmd:a2 NOOP"])
    }

    func testErrorAfterTheLastLiteralIsFoundWhenTheCommandEnds() {
        XCTAssertEqual(transcript(events("a1 LOGIN {4}\r\nfred {2}\r\npw extra\r\na2 NOOP\r\n")),
                       ["+", "+", "a1 BAD Too many arguments for LOGIN\r\n", "cmd:a2 NOOP"])
    }

    func testLiteralLimits() {
        let limits = IMAPParserOptions(limits: IMAPParserLimits(maxLiteralSize: 10, maxAppendMessageSize: 20, maxAppendTotalSize: 30, maxCommandSize: 100))
        // Within limits.
        XCTAssertEqual(transcript(events("a1 LOGIN {10}\r\n0123456789 pw\r\n", options: limits)), ["+", "cmd:a1 LOGIN"])
        // A string literal over the limit: BAD, no continuation; the client goes on with a new command.
        XCTAssertEqual(transcript(events("a1 LOGIN {11}\r\na2 NOOP\r\n", options: limits)), ["a1 BAD Literal too large (over 10 bytes)\r\n", "cmd:a2 NOOP"])
        // Non-synchronizing: the bytes are dropped, then the next command.
        XCTAssertEqual(transcript(events("a1 LOGIN {11+}\r\n0123456789X pw\r\na2 NOOP\r\n", options: limits)), ["a1 BAD Literal too large (over 10 bytes)\r\n", "cmd:a2 NOOP"])
        // APPEND messages have their own limit and answer NO [TOOBIG] (RFC 7889).
        XCTAssertEqual(transcript(events("a1 APPEND INBOX {20}\r\n01234567890123456789\r\n", options: limits)), ["+", "cmd:a1 APPEND"])
        XCTAssertEqual(transcript(events("a1 APPEND INBOX {21}\r\na2 NOOP\r\n", options: limits)), ["a1 NO [TOOBIG] Message too large (over 20 bytes)\r\n", "cmd:a2 NOOP"])
        XCTAssertEqual(transcript(events("a1 APPEND INBOX {21+}\r\n012345678901234567890\r\na2 NOOP\r\n", options: limits)),
                       ["a1 NO [TOOBIG] Message too large (over 20 bytes)\r\n", "cmd:a2 NOOP"])
        // MULTIAPPEND: the second message takes the total over 30.
        XCTAssertEqual(transcript(events("a1 APPEND INBOX {20+}\r\n01234567890123456789 {11+}\r\n01234567890\r\na2 NOOP\r\n", options: limits)),
                       ["a1 NO [TOOBIG] Messages too large together (over 30 bytes)\r\n", "cmd:a2 NOOP"])
        // The mailbox name as a literal is a string, not a message.
        XCTAssertEqual(transcript(events("a1 APPEND {11}\r\na2 NOOP\r\n", options: limits)), ["a1 BAD Literal too large (over 10 bytes)\r\n", "cmd:a2 NOOP"])
        // Many small literals add up to the command limit.
        let many = (0..<30).map { _ in "{3+}\r\nabc " }.joined()
        XCTAssertEqual(transcript(events("a1 SEARCH TEXT \(many)\r\na2 NOOP\r\n".replacingOccurrences(of: "TEXT {", with: "TEXT {"), options: limits)).first,
                       "a1 BAD Command too long (over 100 bytes)\r\n")
    }

    func testLiteralPlusMinusAndRefused() {
        let minus = IMAPParserOptions(nonSyncLiterals: .literalMinus)
        let small = String(repeating: "x", count: 4096)
        assertCommand("a1 LOGIN {4096+}\r\n\(small) pw\r\n", .login(user: small, password: "pw"), options: minus)
        XCTAssertEqual(transcript(events("a1 LOGIN {4097+}\r\n\(small)y pw\r\na2 NOOP\r\n", options: minus)),
                       ["a1 BAD [TOOBIG] Non-synchronizing literal over 4096 bytes (LITERAL-): use a synchronizing one\r\n", "cmd:a2 NOOP"])
        XCTAssertEqual(transcript(events("a1 LOGIN {4097}\r\n\(small)y pw\r\n", options: minus)), ["+", "cmd:a1 LOGIN"])
        let none = IMAPParserOptions(nonSyncLiterals: .refused)
        XCTAssertEqual(transcript(events("a1 LOGIN {2+}\r\nab pw\r\na2 NOOP\r\n", options: none)),
                       ["a1 BAD Non-synchronizing literals are not supported\r\n", "cmd:a2 NOOP"])
    }

    func testLineLimit() {
        let limits = IMAPParserOptions(limits: IMAPParserLimits(maxLineLength: 64))
        let fits = "a1 LOGIN " + String(repeating: "u", count: 53) + " p"   // 64 bytes
        XCTAssertEqual(fits.utf8.count, 64)
        XCTAssertEqual(transcript(events(fits + "\r\n", options: limits)), ["cmd:a1 LOGIN"])
        // With a bare LF the same line also fits; one more byte does not.
        XCTAssertEqual(transcript(events(fits + "\n", options: limits)), ["cmd:a1 LOGIN"])
        XCTAssertEqual(transcript(events(fits + "x\n", options: limits)), ["a1 BAD Command line too long (over 64 bytes)\r\n"])
        XCTAssertEqual(transcript(events(fits + "x\r\na2 NOOP\r\n", options: limits)), ["a1 BAD Command line too long (over 64 bytes)\r\n", "cmd:a2 NOOP"])
        // 1 MiB without a line end is refused as soon as it passes the limit, and not kept.
        var parser = IMAPCommandParser(options: limits)
        XCTAssertEqual(transcript(parser.feed(b("a9 ") + [UInt8](repeating: 0x41, count: 1 << 20))), ["a9 BAD Command line too long (over 64 bytes)\r\n"])
        XCTAssertEqual(parser.bufferedByteCount, 0)
        XCTAssertEqual(transcript(parser.feed(b("\r\na2 NOOP\r\n"))), ["cmd:a2 NOOP"])
        // An over-long line ending in a non-synchronizing literal: the literal is dropped too.
        XCTAssertEqual(transcript(events(fits + "xx {5+}\r\nhello\r\na2 NOOP\r\n", options: limits)),
                       ["a1 BAD Command line too long (over 64 bytes)\r\n", "cmd:a2 NOOP"])
        // Each line of a command is held to the limit, not the command.
        let part = String(repeating: "u", count: 60)
        XCTAssertEqual(transcript(events("a1 LOGIN {60+}\r\n\(part) {60+}\r\n\(part)\r\n", options: limits)), ["cmd:a1 LOGIN"])
    }

    func testTheDefaultLimits() {
        let limits = IMAPParserLimits()
        XCTAssertEqual(limits.maxLineLength, 65536)
        XCTAssertEqual(limits.maxAppendMessageSize, 64 << 20)
        XCTAssertEqual(limits.maxNestingDepth, 32)
        XCTAssertEqual(IMAPParserOptions().nonSyncLiterals, .literalPlus)
    }

    func testAuthenticateExchangePausesForTheSession() {
        var parser = IMAPCommandParser()
        // The response line is pipelined with the command: kept until the session resumes.
        XCTAssertEqual(parser.feed(b("a1 AUTHENTICATE PLAIN\r\nAHVzZXIAcGVuY2ls\r\na2 NOOP\r\n")),
                       [.command(IMAPTaggedCommand(tag: "a1", command: .authenticate(mechanism: "PLAIN", initialResponse: nil)))])
        XCTAssertTrue(parser.isPaused)
        XCTAssertEqual(parser.feed(b("")), [])
        XCTAssertEqual(parser.resume(expecting: .authenticationResponse), [.authenticationResponse(.data(b("\0user\0pencil")))])
        XCTAssertTrue(parser.isPaused)
        XCTAssertEqual(transcript(parser.resume(expecting: .command)), ["cmd:a2 NOOP"])
        XCTAssertFalse(parser.isPaused)
    }

    func testAuthenticateCancelEmptyAndInvalidLines() {
        var parser = IMAPCommandParser()
        _ = parser.feed(b("a1 AUTHENTICATE SCRAM-SHA-256\r\n"))
        XCTAssertEqual(parser.resume(expecting: .authenticationResponse), [])
        XCTAssertEqual(parser.feed(b("\r\n")), [.authenticationResponse(.data([]))])
        XCTAssertEqual(parser.resume(expecting: .authenticationResponse), [])
        XCTAssertEqual(parser.feed(b("*\r\n")), [.authenticationResponse(.cancel)])
        XCTAssertEqual(parser.resume(expecting: .authenticationResponse), [])
        XCTAssertEqual(transcript(parser.feed(b("not base64!\r\n"))), ["a1 BAD Invalid base64 in authentication response\r\n"])
        XCTAssertTrue(parser.isPaused)
        XCTAssertEqual(transcript(parser.resume(expecting: .command) + parser.feed(b("a2 NOOP\r\n"))), ["cmd:a2 NOOP"])
        XCTAssertEqual(IMAPAuthenticationResponse.parse(b("dGVzdA==")), .data(b("test")))
        XCTAssertNil(IMAPAuthenticationResponse.parse(b("dGVzdA=")))
        XCTAssertNil(IMAPAuthenticationResponse.parse(b("dG=zdA==")))
        XCTAssertNil(IMAPAuthenticationResponse.parse(b("**")))
    }

    func testAuthenticationLineOverTheLimit() {
        var parser = IMAPCommandParser(options: IMAPParserOptions(limits: IMAPParserLimits(maxLineLength: 64)))
        _ = parser.feed(b("a1 AUTHENTICATE PLAIN\r\n"))
        _ = parser.resume(expecting: .authenticationResponse)
        XCTAssertEqual(transcript(parser.feed(b(String(repeating: "QUFB", count: 40) + "\r\na2 NOOP\r\n"))),
                       ["a1 BAD Command line too long (over 64 bytes)\r\n"])
        XCTAssertEqual(transcript(parser.resume(expecting: .command)), ["cmd:a2 NOOP"])
    }

    func testIdleWaitsForDone() {
        var parser = IMAPCommandParser()
        XCTAssertEqual(transcript(parser.feed(b("a1 IDLE\r\n"))), ["cmd:a1 IDLE"])
        XCTAssertTrue(parser.isPaused)
        XCTAssertEqual(parser.resume(expecting: .idleDone), [])
        XCTAssertEqual(parser.feed(b("done\r\na2 NOOP\r\n")).map { transcript([$0]) }.flatMap { $0 }, ["done", "cmd:a2 NOOP"])
        XCTAssertEqual(parser.expectation, .command)
        // Anything but DONE ends IDLE with BAD.
        XCTAssertEqual(transcript(parser.feed(b("a3 IDLE\r\n"))), ["cmd:a3 IDLE"])
        XCTAssertEqual(transcript(parser.resume(expecting: .idleDone) + parser.feed(b("a4 NOOP\r\na5 NOOP\r\n"))),
                       ["a3 BAD Expected DONE\r\n", "cmd:a5 NOOP"])
    }

    func testStartTLSAndCompressHandOverTheBufferedBytes() {
        var parser = IMAPCommandParser()
        XCTAssertEqual(transcript(parser.feed(b("a1 STARTTLS\r\na2 LOGIN injected by attacker\r\n"))), ["cmd:a1 STARTTLS"])
        XCTAssertEqual(parser.bufferedByteCount, 31)
        // RFC 3501 §6.2.1: what came before the handshake is dropped.
        XCTAssertEqual(parser.takeBufferedInput(), b("a2 LOGIN injected by attacker\r\n"))
        XCTAssertEqual(parser.resume(expecting: .command), [])
        XCTAssertEqual(transcript(parser.feed(b("a3 COMPRESS DEFLATE\r\n\u{1}\u{2}"))), ["cmd:a3 COMPRESS"])
        XCTAssertEqual(parser.takeBufferedInput(), [1, 2])
        XCTAssertEqual(transcript(parser.resume(expecting: .command) + parser.feed(b("a4 NOOP\r\n"))), ["cmd:a4 NOOP"])
    }

    func testOptionsMayChangeBetweenCommands() {
        var parser = IMAPCommandParser()
        XCTAssertEqual(transcript(parser.feed(b("a1 ENABLE UTF8=ACCEPT\r\n"))), ["cmd:a1 ENABLE"])
        parser.options.utf8Accept = true
        XCTAssertEqual(parser.feed(b("a2 SELECT \"Entwürfe\"\r\n")), [.command(IMAPTaggedCommand(tag: "a2", command: .select("Entwürfe", IMAPSelectParameters())))])
    }

    func testErrorTagIsKnownForLaterLinesOfALiteralCommand() {
        let limits = IMAPParserOptions(limits: IMAPParserLimits(maxLineLength: 64))
        XCTAssertEqual(transcript(events("a7 LOGIN {2+}\r\nab " + String(repeating: "p", count: 70) + "\r\na2 NOOP\r\n", options: limits)),
                       ["a7 BAD Command line too long (over 64 bytes)\r\n", "cmd:a2 NOOP"])
        XCTAssertEqual(transcript(events("a7 LOGIN {2+}\r\nab \0\r\n")), ["a7 BAD NUL byte in command line\r\n"])
    }
}
