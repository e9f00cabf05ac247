import PosternTestSupport
import Foundation
import PluginAPI
import XCTest
@testable import PosternSMTPCore
@testable import PosternSASLPlainCore
@testable import PosternSASLLoginCore
@testable import PosternTableFileCore

/// Every command in every command-reading state, one table: the state is set up on a fresh
/// session, then one command is sent and its last reply line compared.
final class SMTPStateMatrixTests: XCTestCase {
    /// The commands, each as sent.
    static let commands = [
        "HELO c.example", "EHLO c.example", "MAIL FROM:<a@remote.example>", "RCPT TO:<alice@example.org>", "DATA", "BDAT 0 LAST",
        "RSET", "NOOP", "QUIT", "HELP", "VRFY alice", "EXPN list", "STARTTLS", "AUTH PLAIN",
    ]

    /// The states, each as the lines that lead to it on a session from outside without TLS.
    static let states: [(name: String, setup: [String])] = [
        ("greeted", []),
        ("helo", ["HELO c.example"]),
        ("ehlo", ["EHLO c.example"]),
        ("mail", ["EHLO c.example", "MAIL FROM:<a@remote.example>"]),
        ("rcpt", ["EHLO c.example", "MAIL FROM:<a@remote.example>", "RCPT TO:<bob@example.org>"]),
        ("bdat", ["EHLO c.example", "MAIL FROM:<a@remote.example>", "RCPT TO:<bob@example.org>", "BDAT 1\r\nx"]),
    ]

    /// Expected last reply line per state, in the order of `commands`.
    static let expected: [String: [String]] = [
        "greeted": ["250 mx.example.org", "250 STARTTLS", "503 5.5.1 send HELO or EHLO first", "503 5.5.1 need MAIL command",
                    "503 5.5.1 need MAIL command", "503 5.5.1 need MAIL command", "250 2.0.0 ok", "250 2.0.0 ok", "<CLOSE>",
                    help, vrfy, "502 5.5.1 EXPN is disabled", "503 5.5.1 send EHLO first", "503 5.5.1 send EHLO first"],
        "helo": ["250 mx.example.org", "250 STARTTLS", "250 2.1.0 sender ok", "503 5.5.1 need MAIL command",
                 "503 5.5.1 need MAIL command", "503 5.5.1 need MAIL command", "250 2.0.0 ok", "250 2.0.0 ok", "<CLOSE>",
                 help, vrfy, "502 5.5.1 EXPN is disabled", "503 5.5.1 send EHLO first", "503 5.5.1 send EHLO first"],
        "ehlo": ["250 mx.example.org", "250 STARTTLS", "250 2.1.0 sender ok", "503 5.5.1 need MAIL command",
                 "503 5.5.1 need MAIL command", "503 5.5.1 need MAIL command", "250 2.0.0 ok", "250 2.0.0 ok", "<CLOSE>",
                 help, vrfy, "502 5.5.1 EXPN is disabled", "<STARTTLS>", plaintext],
        "mail": ["250 mx.example.org", "250 STARTTLS", "503 5.5.1 nested MAIL command", "250 2.1.5 recipient ok",
                 "554 5.5.1 no valid recipients", "554 5.5.1 no valid recipients", "250 2.0.0 ok", "250 2.0.0 ok", "<CLOSE>",
                 help, vrfy, "502 5.5.1 EXPN is disabled", "503 5.5.1 STARTTLS not permitted during a mail transaction",
                 "503 5.5.1 AUTH not permitted during a mail transaction"],
        "rcpt": ["250 mx.example.org", "250 STARTTLS", "503 5.5.1 nested MAIL command", "250 2.1.5 recipient ok",
                 "354 end data with <CR><LF>.<CR><LF>", "250 2.0.0 ok: queued as Q1", "250 2.0.0 ok", "250 2.0.0 ok", "<CLOSE>",
                 help, vrfy, "502 5.5.1 EXPN is disabled", "503 5.5.1 STARTTLS not permitted during a mail transaction",
                 "503 5.5.1 AUTH not permitted during a mail transaction"],
        "bdat": ["250 mx.example.org", "250 STARTTLS", "503 5.5.1 nested MAIL command", "503 5.5.1 RCPT after BDAT",
                 "503 5.5.1 DATA after BDAT", "250 2.0.0 ok: queued as Q1", "250 2.0.0 ok", "250 2.0.0 ok", "<CLOSE>",
                 help, vrfy, "502 5.5.1 EXPN is disabled", "503 5.5.1 STARTTLS not permitted during a mail transaction",
                 "503 5.5.1 AUTH not permitted during a mail transaction"],
    ]

    static let help = "214 2.0.0 EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP VRFY STARTTLS AUTH; see RFC 5321"
    static let vrfy = "252 2.5.0 cannot VRFY user, but will accept message and attempt delivery"
    static let plaintext = "538 5.7.11 encryption required for requested authentication mechanism"

    func testEveryCommandInEveryState() async {
        for (name, setup) in Self.states {
            for (i, command) in Self.commands.enumerated() {
                let h = SMTPHarness()
                await h.start()
                for line in setup { _ = await h.send(line) }
                let reply = await h.send(command).trimmedLastLine
                XCTAssertEqual(reply, Self.expected[name]![i], "\(command) in state \(name)")
            }
        }
    }

    /// Inside DATA and inside a BDAT chunk every command is message text; during an AUTH
    /// exchange it is a (bad) response; after a 554 greeting only QUIT and NOOP are served.
    func testCommandsAreNotCommandsInsideDataChunksAndAuth() async {
        for command in Self.commands {
            let data = SMTPHarness()
            await data.ready()
            _ = await data.each(["MAIL FROM:<a@remote.example>", "RCPT TO:<alice@example.org>", "DATA"])
            let inside = await data.send(command)
            XCTAssertEqual(inside, "", command)
            let end = await data.send(".")
            XCTAssertEqual(end, "250 2.0.0 ok: queued as Q1\r\n")
            XCTAssertTrue(data.queue.entries[0].text.hasSuffix("\r\n\(command)\r\n"))

            let chunk = SMTPHarness()
            await chunk.ready()
            _ = await chunk.each(["MAIL FROM:<a@remote.example>", "RCPT TO:<alice@example.org>"])
            let octets = Array((command + "\r\n").utf8)
            let chunked = await chunk.send(bytes: Array("BDAT \(octets.count) LAST\r\n".utf8) + octets)
            XCTAssertEqual(chunked, "250 2.0.0 ok: queued as Q1\r\n", command)

            let auth = SMTPHarness()
            auth.client.isSecure = true
            await auth.ready()
            _ = await auth.send("AUTH LOGIN")
            let response = await auth.send(command).trimmedLastLine
            // Not base64, or base64 that decodes to no valid user name ("DATA" and "NOOP" are both
            // four base64 characters), or taken as the user name and answered with the next challenge.
            XCTAssertTrue(["501 5.5.2 cannot decode the response", "501 5.5.2 malformed authentication response"].contains(response)
                          || response == "334 UGFzc3dvcmQ6", "\(command): \(response)")

            var options = SMTPOptions(mode: .mx)
            options.accessTables = ["access"]
            let refused = SMTPHarness(options: options)
            refused.tables = [("access", TestTable(entries: ["client:203.0.113.9": "REJECT"]))]
            await refused.start()
            let answer = await refused.send(command).trimmedLastLine
            let served = ["QUIT": "<CLOSE>", "NOOP": "250 2.0.0 ok"][String(command.prefix { $0 != " " })]
            XCTAssertEqual(answer, served ?? "503 5.7.1 no service here: access denied", command)
        }
    }
}
