import PosternTestSupport
import Foundation
import PluginAPI
import XCTest
@testable import PosternSMTPCore
@testable import PosternSASLPlainCore
@testable import PosternSASLLoginCore
@testable import PosternTableFileCore

/// The session state machine command by command, without sockets: every reply as it goes on the
/// wire.
final class SMTPSessionTests: XCTestCase {
    static let ehloOutside = """
        250-mx.example.org\r
        250-PIPELINING\r
        250-SIZE 52428800\r
        250-8BITMIME\r
        250-SMTPUTF8\r
        250-ENHANCEDSTATUSCODES\r
        250-CHUNKING\r
        250-BINARYMIME\r
        250-DSN\r
        250 STARTTLS\r

        """

    func testGreetingEHLOAndHELO() async {
        let h = SMTPHarness()
        let greeting = await h.start()
        XCTAssertEqual(greeting, "220 mx.example.org ESMTP Postern\r\n")
        let ehlo = await h.send("EHLO client.example.net")
        XCTAssertEqual(ehlo, Self.ehloOutside)
        let helo = await h.send("HELO client.example.net")
        XCTAssertEqual(helo, "250 mx.example.org\r\n")
        // Parameters belong to ESMTP: a HELO client may not use them.
        let mail = await h.send("MAIL FROM:<a@remote.example> SIZE=10")
        XCTAssertEqual(mail, "555 5.5.4 MAIL parameters need EHLO\r\n")
        // Nor BDAT; its chunk is still read, so "NOOP" below is data, not a command.
        let replies = await h.each(["MAIL FROM:<a@remote.example>", "RCPT TO:<alice@example.org>"])
        XCTAssertEqual(replies, ["250 2.1.0 sender ok", "250 2.1.5 recipient ok"])
        let bdat = await h.send(bytes: Array("BDAT 6 LAST\r\nNOOP\r\n".utf8))
        XCTAssertEqual(bdat, "503 5.5.1 BDAT needs EHLO\r\n")
        let data = await h.send("DATA")
        XCTAssertEqual(data, "503 5.5.1 DATA after BDAT\r\n")
    }

    func testEHLOUnderTLSOffersAuthInsteadOfSTARTTLS() async {
        let h = SMTPHarness()
        h.client.isSecure = true
        h.client.canStartTLS = false
        await h.start()
        let ehlo = await h.send("EHLO client.example.net").lines
        XCTAssertEqual(ehlo.suffix(2), ["250-DSN", "250 AUTH PLAIN LOGIN"])
        // Once authenticated, AUTH is no longer advertised.
        _ = await h.login()
        let again = await h.send("EHLO client.example.net").lines
        XCTAssertEqual(again.last, "250 DSN")
        // No STARTTLS on a listener without TLS, no AUTH without mechanisms, no SMTPUTF8 when off.
        let plain = SMTPHarness()
        plain.client.canStartTLS = false
        plain.mechanisms = []
        plain.options.smtpUTF8 = false
        await plain.start()
        let lines = await plain.send("EHLO x.example").lines
        XCTAssertEqual(lines, ["250-mx.example.org", "250-PIPELINING", "250-SIZE 52428800", "250-8BITMIME", "250-ENHANCEDSTATUSCODES",
                               "250-CHUNKING", "250-BINARYMIME", "250 DSN"])
    }

    func testEveryCommandBeforeHELO() async {
        let h = SMTPHarness()
        await h.start()
        let replies = await h.each(["MAIL FROM:<a@remote.example>", "RCPT TO:<alice@example.org>", "DATA", "RSET", "NOOP", "HELP",
                                    "VRFY alice", "EXPN staff", "STARTTLS", "AUTH PLAIN", "LHLO x.example", "FOO"])
        XCTAssertEqual(replies, [
            "503 5.5.1 send HELO or EHLO first",
            "503 5.5.1 need MAIL command",
            "503 5.5.1 need MAIL command",
            "250 2.0.0 ok",
            "250 2.0.0 ok",
            "214 2.0.0 EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP VRFY STARTTLS AUTH; see RFC 5321",
            "252 2.5.0 cannot VRFY user, but will accept message and attempt delivery",
            "502 5.5.1 EXPN is disabled",
            "503 5.5.1 send EHLO first",
            "503 5.5.1 send EHLO first",
            "500 5.5.1 this is SMTP: use EHLO",
            "500 5.5.1 command not recognized",
        ])
        let bdat = await h.send("BDAT 0 LAST")
        XCTAssertEqual(bdat, "503 5.5.1 need MAIL command\r\n")
        let quit = await h.send("QUIT")
        XCTAssertEqual(quit, "221 2.0.0 bye\r\n<CLOSE>\r\n")
        XCTAssertTrue(h.state.isClosed)
        // After QUIT nothing is read.
        let after = await h.send("NOOP")
        XCTAssertEqual(after, "")
    }

    func testTransactionCommandsOutOfOrder() async {
        let h = SMTPHarness()
        await h.ready()
        let replies = await h.each(["RCPT TO:<alice@example.org>", "MAIL FROM:<a@remote.example>", "MAIL FROM:<b@remote.example>",
                                    "DATA", "RCPT TO:<alice@example.org>", "AUTH PLAIN", "STARTTLS", "RSET", "RCPT TO:<alice@example.org>"])
        XCTAssertEqual(replies, [
            "503 5.5.1 need MAIL command",
            "250 2.1.0 sender ok",
            "503 5.5.1 nested MAIL command",
            "554 5.5.1 no valid recipients",
            "250 2.1.5 recipient ok",
            "503 5.5.1 AUTH not permitted during a mail transaction",
            "503 5.5.1 STARTTLS not permitted during a mail transaction",
            "250 2.0.0 ok",
            "503 5.5.1 need MAIL command",
        ])
        // EHLO in a transaction resets it (RFC 5321 §4.1.4).
        _ = await h.send("MAIL FROM:<a@remote.example>")
        _ = await h.send("EHLO again.example")
        let rcpt = await h.send("RCPT TO:<alice@example.org>")
        XCTAssertEqual(rcpt, "503 5.5.1 need MAIL command\r\n")
    }

    func testMessageIsQueuedWithReceivedFieldAndEnvelope() async throws {
        let h = SMTPHarness()
        await h.ready()
        let replies = await h.each(["MAIL FROM:<sender@remote.example> BODY=8BITMIME RET=HDRS ENVID=abc+2Bdef",
                                    "RCPT TO:<Alice@EXAMPLE.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Alice@example.org",
                                    "DATA"])
        XCTAssertEqual(replies, ["250 2.1.0 sender ok", "250 2.1.5 recipient ok", "354 end data with <CR><LF>.<CR><LF>"])
        let end = await h.send("Subject: hi", "", "..leading dot", "body", ".")
        XCTAssertEqual(end, "250 2.0.0 ok: queued as Q1\r\n")
        let entry = try XCTUnwrap(h.queue.entries.first)
        XCTAssertEqual(entry.envelope, Envelope(
            sender: "sender@remote.example",
            recipients: [EnvelopeRecipient(address: "Alice@example.org", notify: ["SUCCESS", "FAILURE"], originalRecipient: "rfc822;Alice@example.org")],
            body: "8BITMIME", smtpUTF8: false, dsnReturn: "HDRS", envelopeID: "abc+2Bdef"))
        XCTAssertEqual(entry.text, """
            Received: from client.example.net (unknown [203.0.113.9])\r
            \tby mx.example.org (Postern) with ESMTP id S1.1\r
            \tfor <Alice@example.org>; Tue, 14 Nov 2023 22:13:20 +0000\r
            Subject: hi\r
            \r
            .leading dot\r
            body\r

            """)
        XCTAssertEqual(h.spoolFiles, [])
        // Several recipients: no "for" clause (it would disclose Bcc recipients).
        _ = await h.each(["MAIL FROM:<>", "RCPT TO:<alice@example.org>", "RCPT TO:<bob@example.org>", "DATA"])
        _ = await h.send("x", ".")
        XCTAssertTrue(h.queue.entries[1].text.hasPrefix("Received: from client.example.net (unknown [203.0.113.9])\r\n\tby mx.example.org (Postern) with ESMTP id S1.2\r\n\t; Tue, 14 Nov 2023"))
        XCTAssertEqual(h.queue.entries[1].envelope.sender, "")
    }

    func testPipelinedCommandsAnswerInOrderWholeAndByteByByte() async {
        let script = "MAIL FROM:<a@remote.example>\r\nRCPT TO:<alice@example.org>\r\nRCPT TO:<nobody@example.org>\r\n"
            + "RCPT TO:<dave@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nline\r\n.\r\n"
            + "MAIL FROM:<>\r\nRCPT TO:<bob@example.org>\r\nBDAT 5 LAST\r\nhelloRSET\r\nNOOP\r\nQUIT\r\nNOOP\r\n"
        let expected = """
            250 2.1.0 sender ok\r
            250 2.1.5 recipient ok\r
            550 5.1.1 <nobody@example.org>: no such user here\r
            550 5.2.1 <dave@example.org>: mailbox disabled\r
            250 2.1.5 recipient ok\r
            354 end data with <CR><LF>.<CR><LF>\r
            250 2.0.0 ok: queued as Q1\r
            250 2.1.0 sender ok\r
            250 2.1.5 recipient ok\r
            250 2.0.0 ok: queued as Q2\r
            250 2.0.0 ok\r
            250 2.0.0 ok\r
            221 2.0.0 bye\r
            <CLOSE>\r

            """
        let whole = SMTPHarness()
        await whole.ready()
        let all = await whole.send(bytes: Array(script.utf8))
        XCTAssertEqual(all, expected)
        let byByte = SMTPHarness()
        await byByte.ready()
        var out = ""
        for b in script.utf8 { out += await byByte.send(bytes: [b]) }
        XCTAssertEqual(out, expected)
        XCTAssertEqual(byByte.queue.entries.map { $0.envelope.recipients.map(\.address) }, [["alice@example.org", "bob@example.org"], ["bob@example.org"]])
        XCTAssertTrue(byByte.queue.entries[1].text.hasSuffix("\r\nhello"))
    }

    func testBareLineFeeds() async {
        // Commands: refused under the default `reject`.
        let h = SMTPHarness()
        await h.ready()
        let bare = await h.send(bytes: Array("NOOP\n".utf8))
        XCTAssertEqual(bare, "500 5.5.2 bare LF received; lines end with CRLF\r\n")
        // A message with a bare LF line end is refused at its end; the smuggled `\n.\r\n` does
        // not end it, so the MAIL inside stays data.
        _ = await h.each(["MAIL FROM:<a@remote.example>", "RCPT TO:<alice@example.org>", "DATA"])
        let smuggled = await h.send(bytes: Array("x\n.\r\nMAIL FROM:<evil@remote.example>\r\n.\r\n".utf8))
        XCTAssertEqual(smuggled, "550 5.6.0 message contains bare LF line ends; lines end with CRLF\r\n")
        XCTAssertTrue(h.queue.entries.isEmpty)
        XCTAssertEqual(h.spoolFiles, [])
        // Under `accept` both pass: line ends become CRLF, the lone dot line is unstuffed to an
        // empty line (it did not follow a CRLF, so it ended nothing) and the smuggled text is data.
        var options = SMTPOptions(mode: .mx)
        options.bareLineFeed = .accept
        let lenient = SMTPHarness(options: options)
        await lenient.start()
        let ehlo = await lenient.send(bytes: Array("EHLO x.example\n".utf8))
        XCTAssertEqual(ehlo.lines.first, "250-mx.example.org")
        _ = await lenient.each(["MAIL FROM:<a@remote.example>", "RCPT TO:<alice@example.org>", "DATA"])
        let accepted = await lenient.send(bytes: Array("x\n.\r\nMAIL FROM:<evil@remote.example>\r\n.\r\n".utf8))
        XCTAssertEqual(accepted, "250 2.0.0 ok: queued as Q1\r\n")
        XCTAssertTrue(lenient.queue.entries[0].text.hasSuffix("\r\nx\r\n\r\nMAIL FROM:<evil@remote.example>\r\n"))
    }

    func testSTARTTLSDiscardsPipelinedPlaintextAndResetsState() async {
        let h = SMTPHarness()
        await h.ready()
        let start = await h.send("STARTTLS", "MAIL FROM:<a@remote.example>")
        XCTAssertEqual(start, "220 2.0.0 ready to start TLS\r\n<STARTTLS>\r\n")
        // Until the driver reports TLS up, nothing is read.
        let during = await h.send("NOOP")
        XCTAssertEqual(during, "")
        h.state.tlsStarted()
        let replies = await h.each(["MAIL FROM:<a@remote.example>", "STARTTLS"])
        XCTAssertEqual(replies, ["503 5.5.1 send HELO or EHLO first", "503 5.5.1 TLS already active"])
        let ehlo = await h.send("EHLO client.example.net").lines
        XCTAssertFalse(ehlo.contains("250-STARTTLS"))
        XCTAssertEqual(ehlo.last, "250 AUTH PLAIN LOGIN")
        let auth = await h.login()
        XCTAssertEqual(auth, "235 2.7.0 authentication successful")
        // The Received field now says ESMTPSA.
        _ = await h.each(["MAIL FROM:<alice@example.org>", "RCPT TO:<friend@remote.example>", "DATA"])
        _ = await h.send("hi", ".")
        XCTAssertTrue(h.queue.entries[0].text.contains("with ESMTPSA id S1.1"))
        // STARTTLS where the listener has no TLS, and before EHLO.
        let none = SMTPHarness()
        none.client.canStartTLS = false
        await none.ready()
        let unavailable = await none.send("STARTTLS")
        XCTAssertEqual(unavailable, "454 4.7.0 TLS not available\r\n")
        let early = SMTPHarness()
        await early.start()
        let notYet = await early.send("STARTTLS")
        XCTAssertEqual(notYet, "503 5.5.1 send EHLO first\r\n")
        let helo = SMTPHarness()
        await helo.start()
        _ = await helo.send("HELO x.example")
        let afterHelo = await helo.send("STARTTLS")
        XCTAssertEqual(afterHelo, "503 5.5.1 send EHLO first\r\n")
    }

    func testBDATSequences() async throws {
        let h = SMTPHarness()
        await h.ready()
        _ = await h.each(["MAIL FROM:<a@remote.example> BODY=BINARYMIME", "RCPT TO:<alice@example.org>"])
        let first = await h.send(bytes: Array("BDAT 7\r\nSubject".utf8))
        XCTAssertEqual(first, "250 2.0.0 7 octets received\r\n")
        // A chunk's octets are never commands, CRLF or not; RCPT after BDAT is out of order.
        let second = await h.send(bytes: Array("BDAT 11\r\n: x\r\n\r\n\0\u{1}\rz".utf8))
        XCTAssertEqual(second, "250 2.0.0 11 octets received\r\n")
        let rcpt = await h.send("RCPT TO:<bob@example.org>")
        XCTAssertEqual(rcpt, "503 5.5.1 RCPT after BDAT\r\n")
        let data = await h.send("DATA")
        XCTAssertEqual(data, "503 5.5.1 DATA after BDAT\r\n")
        let last = await h.send(bytes: Array("BDAT 0 LAST\r\n".utf8))
        XCTAssertEqual(last, "250 2.0.0 ok: queued as Q1\r\n")
        let entry = try XCTUnwrap(h.queue.entries.first)
        XCTAssertEqual(entry.envelope.body, "BINARYMIME")
        XCTAssertTrue(entry.text.hasSuffix("+0000\r\nSubject: x\r\n\r\n\0\u{1}\rz"))

        // BINARYMIME needs BDAT.
        _ = await h.each(["MAIL FROM:<a@remote.example> BODY=BINARYMIME", "RCPT TO:<alice@example.org>"])
        let refused = await h.send("DATA")
        XCTAssertEqual(refused, "503 5.5.1 BODY=BINARYMIME needs BDAT\r\n")
        _ = await h.send("RSET")

        // BDAT without a transaction: the chunk is read and dropped, then refused.
        let orphan = await h.send(bytes: Array("BDAT 6\r\nNOOP\r\nNOOP\r\n".utf8))
        XCTAssertEqual(orphan, "503 5.5.1 need MAIL command\r\n250 2.0.0 ok\r\n")
        // BDAT with no accepted recipient.
        _ = await h.each(["MAIL FROM:<a@remote.example>", "RCPT TO:<nobody@example.org>"])
        let noRecipients = await h.send(bytes: Array("BDAT 3 LAST\r\nabc".utf8))
        XCTAssertEqual(noRecipients, "554 5.5.1 no valid recipients\r\n")
        _ = await h.send("RSET")

        // Chunks over the size limit: 552 at the chunk that crosses it, the transaction is gone.
        var options = SMTPOptions(mode: .mx)
        options.maxMessageSize = 10
        let small = SMTPHarness(options: options)
        await small.ready()
        _ = await small.each(["MAIL FROM:<a@remote.example>", "RCPT TO:<alice@example.org>"])
        let ok = await small.send(bytes: Array("BDAT 6\r\n123456".utf8))
        XCTAssertEqual(ok, "250 2.0.0 6 octets received\r\n")
        let over = await small.send(bytes: Array("BDAT 6\r\n123456".utf8))
        XCTAssertEqual(over, "552 5.3.4 message exceeds fixed limit of 10 bytes\r\n")
        let after = await small.send(bytes: Array("BDAT 1 LAST\r\nx".utf8))
        XCTAssertEqual(after, "503 5.5.1 need MAIL command\r\n")
        XCTAssertTrue(small.queue.entries.isEmpty)
        XCTAssertEqual(small.spoolFiles, [])
    }

    func testLimits() async {
        var options = SMTPOptions(mode: .mx)
        options.maxRecipients = 2
        options.maxMessageSize = 100
        options.maxLineLength = 512
        let h = SMTPHarness(options: options)
        await h.ready()
        let replies = await h.each(["MAIL FROM:<a@remote.example> SIZE=101", "MAIL FROM:<a@remote.example> SIZE=100",
                                    "RCPT TO:<alice@example.org>", "RCPT TO:<bob@example.org>", "RCPT TO:<postmaster@example.org>",
                                    "NOOP " + String(repeating: "x", count: 507), "NOOP " + String(repeating: "x", count: 508), "DATA"])
        XCTAssertEqual(replies, [
            "552 5.3.4 message size exceeds fixed limit of 100 bytes",
            "250 2.1.0 sender ok",
            "250 2.1.5 recipient ok",
            "250 2.1.5 recipient ok",
            "452 4.5.3 too many recipients",
            "250 2.0.0 ok",
            "500 5.5.2 line too long",
            "354 end data with <CR><LF>.<CR><LF>",
        ])
        let big = await h.send(String(repeating: "y", count: 99), ".")
        XCTAssertEqual(big, "552 5.3.4 message exceeds fixed limit of 100 bytes\r\n")
        XCTAssertTrue(h.queue.entries.isEmpty)
        XCTAssertEqual(h.spoolFiles, [])
        // A line past even the AUTH allowance is dropped whole and answered once.
        let huge = await h.send(String(repeating: "z", count: 20000))
        XCTAssertEqual(huge, "500 5.5.2 line too long\r\n")
    }

    func testTooManyErrorsAndCommandsClose() async {
        var options = SMTPOptions(mode: .mx)
        options.maxErrors = 3
        let h = SMTPHarness(options: options)
        await h.ready()
        let out = await h.send("FOO", "BAR", "NOOP", "BAZ", "NOOP")
        XCTAssertEqual(out, "500 5.5.1 command not recognized\r\n500 5.5.1 command not recognized\r\n250 2.0.0 ok\r\n"
            + "500 5.5.1 command not recognized\r\n421 4.7.0 mx.example.org too many errors, closing connection\r\n<CLOSE>\r\n")
        var limited = SMTPOptions(mode: .mx)
        limited.maxCommands = 10
        let c = SMTPHarness(options: limited)
        await c.ready()
        var last = ""
        for _ in 0..<10 { last = await c.send("NOOP") }
        XCTAssertEqual(last, "421 4.7.0 mx.example.org too many commands, closing connection\r\n<CLOSE>\r\n")
    }

    func testMalformedInput() async {
        let h = SMTPHarness()
        var options = SMTPOptions(mode: .mx)
        options.maxErrors = 100
        h.options = options
        await h.ready()
        let replies = await h.each([
            "MAIL FROM:<a@remote.example", "MAIL FROM:a@remote.example", "MAIL FROM:<a@remote.example> SIZE=abc",
            "MAIL FROM:<a@remote.example> SIZE", "MAIL FROM:<a@remote.example> BODY=9BIT", "MAIL FROM:<a@remote.example> RET=ALL",
            "MAIL FROM:<a@remote.example> ENVID=a=b", "MAIL FROM:<a@remote.example> SMTPUTF8=yes", "MAIL FROM:<a@remote.example> AUTH=a b",
            "MAIL FROM:<a@remote.example> FOO=1", "MAIL FROM:<a@remote.example> AUTH=<>",
            "RCPT TO:<alice@example.org> NOTIFY=NEVER,SUCCESS", "RCPT TO:<alice@example.org> NOTIFY=SUCCESS,SUCCESS",
            "RCPT TO:<alice@example.org> NOTIFY=", "RCPT TO:<alice@example.org> ORCPT=alice", "RCPT TO:<alice@example.org> BAR",
            "RCPT TO:<>", "RCPT TO:alice@example.org", "BDAT x", "BDAT 1 FIRST", "DATA now",
        ])
        XCTAssertEqual(replies, [
            "501 5.5.4 syntax error: expected FROM:<address>",
            "501 5.5.4 syntax error: expected FROM:<address>",
            "501 5.5.4 bad SIZE value",
            "501 5.5.4 bad SIZE value",
            "501 5.5.4 BODY is 7BIT, 8BITMIME or BINARYMIME",
            "501 5.5.4 RET is FULL or HDRS",
            "501 5.5.4 bad ENVID value",
            "501 5.5.4 SMTPUTF8 takes no value",
            "555 5.5.4 unsupported MAIL parameter B",
            "555 5.5.4 unsupported MAIL parameter FOO",
            "250 2.1.0 sender ok",
            "501 5.5.4 NOTIFY is NEVER or a list of SUCCESS, FAILURE, DELAY",
            "501 5.5.4 NOTIFY is NEVER or a list of SUCCESS, FAILURE, DELAY",
            "501 5.5.4 NOTIFY is NEVER or a list of SUCCESS, FAILURE, DELAY",
            "501 5.5.4 ORCPT is addr-type;xtext",
            "555 5.5.4 unsupported RCPT parameter BAR",
            "501 5.1.3 bad address syntax: the null path is only a sender",
            "501 5.5.4 syntax error: expected TO:<address>",
            "501 5.5.4 syntax error: BDAT needs a chunk size",
            "501 5.5.4 syntax error: BDAT size [LAST]",
            "501 5.5.4 syntax error: DATA takes no argument",
        ])
        // Byte-level garbage: invalid UTF-8, NUL, a lone CR inside a line.
        let garbage = await h.send(bytes: [0x4e, 0x4f, 0x4f, 0x50, 0x20, 0xff, 0x0d, 0x0a] + Array("NOOP \0\r\nNO\rOP\r\n\r\n".utf8))
        XCTAssertEqual(garbage, "501 5.5.4 syntax error: not UTF-8\r\n501 5.5.4 syntax error: control character in command\r\n"
            + "501 5.5.4 syntax error: control character in command\r\n500 5.5.1 command not recognized\r\n")
        // The session still works.
        let rcpt = await h.send("RCPT TO:<alice@example.org>")
        XCTAssertEqual(rcpt, "250 2.1.5 recipient ok\r\n")
    }

    func testAuth() async {
        let h = SMTPHarness()
        h.client.isSecure = true
        h.client.canStartTLS = false
        await h.ready()
        let wrong = await h.login("alice@example.org", "nope")
        XCTAssertEqual(wrong, "535 5.7.8 authentication credentials invalid")
        let suspended = await h.login("dave@example.org", "x")
        XCTAssertEqual(suspended, "535 5.7.8 authentication credentials invalid")
        let replies = await h.each(["AUTH CRAM-MD5", "AUTH PLAIN not-base64!", "AUTH LOGIN", "*", "AUTH PLAIN", "%%%%",
                                    "AUTH LOGIN", Data("bob@example.org".utf8).base64EncodedString(), Data("hunter2".utf8).base64EncodedString(),
                                    "AUTH PLAIN", "MAIL FROM:<bob@example.org>"])
        XCTAssertEqual(replies, [
            "504 5.5.4 unrecognized authentication type",
            "501 5.5.2 cannot decode the initial response",
            "334 VXNlcm5hbWU6",
            "501 5.0.0 authentication cancelled",
            "334 ",
            "501 5.5.2 cannot decode the response",
            "334 VXNlcm5hbWU6",
            "334 UGFzc3dvcmQ6",
            "235 2.7.0 authentication successful",
            "503 5.5.1 already authenticated",
            "250 2.1.0 sender ok",
        ])
        // An authorization identity other than the user is refused.
        let proxy = SMTPHarness()
        proxy.client.isSecure = true
        await proxy.ready()
        let token = Data("bob@example.org\0alice@example.org\0secret".utf8).base64EncodedString()
        let proxied = await proxy.send("AUTH PLAIN \(token)")
        XCTAssertEqual(proxied, "535 5.7.8 authentication credentials invalid\r\n")
    }

    func testPlaintextAuthNeedsTLSUnlessLoopbackAllows() async {
        let outside = SMTPHarness()
        await outside.ready()
        let refused = await outside.login()
        XCTAssertEqual(refused, "538 5.7.11 encryption required for requested authentication mechanism")
        let loopback = SMTPHarness(client: SMTPHarness.loopback)
        await loopback.ready()
        let stillRefused = await loopback.login()
        XCTAssertEqual(stillRefused, "538 5.7.11 encryption required for requested authentication mechanism")
        var options = SMTPOptions(mode: .submission)
        options.allowPlaintextAuthOnLoopback = true
        let allowed = SMTPHarness(options: options, client: SMTPHarness.loopback)
        await allowed.start()
        let ehlo = await allowed.send("EHLO localhost")
        XCTAssertEqual(ehlo.lines.suffix(2), ["250-STARTTLS", "250 AUTH PLAIN LOGIN"])
        let ok = await allowed.login()
        XCTAssertEqual(ok, "235 2.7.0 authentication successful")
    }

    func testSubmissionRequiresAuthAndOwnSender() async {
        let h = SMTPHarness(options: SMTPOptions(mode: .submission))
        h.client.isSecure = true
        await h.ready()
        let before = await h.send("MAIL FROM:<alice@example.org>")
        XCTAssertEqual(before, "530 5.7.0 authentication required\r\n")
        _ = await h.login()
        let replies = await h.each(["MAIL FROM:<bob@example.org>", "MAIL FROM:<ALICE@example.org>", "RCPT TO:<friend@remote.example>",
                                    "RSET", "MAIL FROM:<>", "RSET", "MAIL FROM:<sales@example.org>"])
        XCTAssertEqual(replies, [
            "553 5.7.1 <bob@example.org>: sender address not owned by user alice@example.org",
            "250 2.1.0 sender ok",
            "250 2.1.5 recipient ok",
            "250 2.0.0 ok",
            "250 2.1.0 sender ok",
            "250 2.0.0 ok",
            "553 5.7.1 <sales@example.org>: sender address not owned by user alice@example.org",
        ])
        // sender_login_tables give alice sales@ and everything at example.net.
        var options = SMTPOptions(mode: .submission)
        options.senderLoginTables = ["senders"]
        let mapped = SMTPHarness(options: options)
        mapped.client.isSecure = true
        mapped.tables = [("senders", TestTable(entries: ["sales@example.org": "alice@example.org, bob@example.org",
                                                          "@example.net": "alice@example.org"]))]
        await mapped.ready()
        _ = await mapped.login()
        let mappedReplies = await mapped.each(["MAIL FROM:<sales@example.org>", "RSET", "MAIL FROM:<anyone@example.net>", "RSET",
                                               "MAIL FROM:<bob@example.org>"])
        XCTAssertEqual(mappedReplies, ["250 2.1.0 sender ok", "250 2.0.0 ok", "250 2.1.0 sender ok", "250 2.0.0 ok",
                                       "553 5.7.1 <bob@example.org>: sender address not owned by user alice@example.org"])
        // sender_login_match = false: any sender once authenticated.
        var free = SMTPOptions(mode: .submission)
        free.senderLoginMatch = false
        let unchecked = SMTPHarness(options: free)
        unchecked.client.isSecure = true
        await unchecked.ready()
        _ = await unchecked.login()
        let any = await unchecked.send("MAIL FROM:<bob@example.org>")
        XCTAssertEqual(any, "250 2.1.0 sender ok\r\n")
    }

    func testQueueFailureIsTemporaryAndLeavesNoFile() async {
        let h = SMTPHarness()
        h.queue.failing = true
        await h.ready()
        _ = await h.each(["MAIL FROM:<a@remote.example>", "RCPT TO:<alice@example.org>", "DATA"])
        let end = await h.send("x", ".")
        XCTAssertEqual(end, "451 4.3.0 temporary queue failure, try again later\r\n")
        XCTAssertEqual(h.spoolFiles, [])
        // The router failing is temporary too.
        h.router.failing = true
        _ = await h.send("MAIL FROM:<a@remote.example>")
        let rcpt = await h.send("RCPT TO:<alice@example.org>")
        XCTAssertEqual(rcpt, "451 4.3.0 <alice@example.org>: temporary lookup failure\r\n")
    }

    /// While accounts are being moved, unknown local recipients can get 450 (the sender retries),
    /// as Postfix's unknown_local_recipient_reject_code; everything else is unchanged.
    func testUnknownRecipientCodeCanBeTemporary() async {
        var options = SMTPOptions(mode: .mx)
        options.unknownRecipientCode = 450
        let h = SMTPHarness(options: options)
        await h.ready()
        let replies = await h.each(["EHLO client.example", "MAIL FROM:<a@remote.example>", "RCPT TO:<nobody@example.org>",
                                    "RCPT TO:<dave@example.org>", "RCPT TO:<x@remote.example>"])
        XCTAssertEqual(Array(replies.suffix(3)), [
            "450 4.1.1 <nobody@example.org>: no such user here",
            "550 5.2.1 <dave@example.org>: mailbox disabled",
            "554 5.7.1 <x@remote.example>: relay access denied",
        ])
    }

    func testVRFYWhenEnabled() async {
        var options = SMTPOptions(mode: .mx)
        options.vrfy = true
        let h = SMTPHarness(options: options)
        await h.ready()
        let replies = await h.each(["VRFY alice@example.org", "VRFY <nobody@example.org>", "VRFY dave@example.org", "VRFY x@remote.example",
                                    "VRFY alice", "VRFY user%remote.example@example.org", "EXPN staff"])
        XCTAssertEqual(replies, [
            "250 2.1.5 <alice@example.org>",
            "550 5.1.1 <nobody@example.org>: no such user here",
            "550 5.2.1 <dave@example.org>: mailbox disabled",
            "252 2.5.0 <x@remote.example>: not local, will attempt delivery",
            "501 5.1.3 VRFY needs a full address",
            "501 5.1.3 VRFY needs a full address",
            "502 5.5.1 EXPN is disabled",
        ])
    }

    func testDrainTimeoutAndDisconnect() async {
        let h = SMTPHarness()
        await h.ready()
        XCTAssertTrue(h.state.isIdle)
        _ = await h.each(["MAIL FROM:<a@remote.example>", "RCPT TO:<alice@example.org>", "DATA"])
        XCTAssertFalse(h.state.isIdle)
        _ = await h.send("x", ".")
        XCTAssertTrue(h.state.isIdle)
        h.state.draining = true
        let mail = await h.send("MAIL FROM:<a@remote.example>")
        XCTAssertEqual(mail, "421 4.3.2 mx.example.org service shutting down, try again later\r\n<CLOSE>\r\n")
        let idle = SMTPHarness()
        await idle.ready()
        XCTAssertEqual(SMTPHarness.wire(idle.state.drainNow()), "421 4.3.2 mx.example.org service shutting down, try again later\r\n<CLOSE>\r\n")
        let slow = SMTPHarness()
        await slow.ready()
        XCTAssertEqual(SMTPHarness.wire(slow.state.timedOut()), "421 4.4.2 mx.example.org timeout exceeded, closing connection\r\n<CLOSE>\r\n")
        // A client that goes away mid-message leaves no spool file.
        let gone = SMTPHarness()
        await gone.ready()
        _ = await gone.each(["MAIL FROM:<a@remote.example>", "RCPT TO:<alice@example.org>", "DATA"])
        _ = await gone.send("partial")
        XCTAssertEqual(gone.spoolFiles.count, 1)
        await gone.state.connectionClosed()
        XCTAssertEqual(gone.spoolFiles, [])
    }

    func testSMTPUTF8() async throws {
        let h = SMTPHarness()
        await h.ready()
        let replies = await h.each(["MAIL FROM:<jörg@remote.example>", "MAIL FROM:<a@remote.example>", "RCPT TO:<jürgen@bücher.example>",
                                    "RSET", "MAIL FROM:<jörg@remote.example> SMTPUTF8", "RCPT TO:<jürgen@BÜCHER.example>",
                                    "RCPT TO:<jürgen@xn--bcher-kva.example>", "DATA"])
        XCTAssertEqual(replies, [
            "553 5.6.7 non-ASCII sender address needs SMTPUTF8",
            "250 2.1.0 sender ok",
            "553 5.6.7 non-ASCII recipient address needs SMTPUTF8",
            "250 2.0.0 ok",
            "250 2.1.0 sender ok",
            "250 2.1.5 recipient ok",
            "250 2.1.5 recipient ok",
            "354 end data with <CR><LF>.<CR><LF>",
        ])
        _ = await h.send("Subject: ünïcode", "", "x", ".")
        let entry = try XCTUnwrap(h.queue.entries.first)
        XCTAssertEqual(entry.envelope.sender, "jörg@remote.example")
        XCTAssertTrue(entry.envelope.smtpUTF8)
        // The two spellings of the domain are one recipient.
        XCTAssertEqual(entry.envelope.recipients.map(\.address), ["jürgen@xn--bcher-kva.example"])
        XCTAssertTrue(entry.text.contains("with UTF8SMTP id S1.2\r\n\tfor <jürgen@xn--bcher-kva.example>;"))
        // With SMTPUTF8 off the parser refuses UTF-8 addresses outright.
        var options = SMTPOptions(mode: .mx)
        options.smtpUTF8 = false
        let off = SMTPHarness(options: options)
        await off.ready()
        let offReplies = await off.each(["MAIL FROM:<a@remote.example> SMTPUTF8", "MAIL FROM:<jörg@remote.example>"])
        XCTAssertEqual(offReplies, ["555 5.5.4 SMTPUTF8 is not offered", "501 5.1.3 bad address syntax: utf8NotAllowed"])
    }
}
