import Foundation
import PluginAPI
import PosternHost
import PosternTestSupport
import XCTest

/// `SMTPSubmission.send` (PluginAPI: the SMTP client session over its NIO connection) against the
/// submission listeners of a real `postern serve`: STARTTLS on 587-style, implicit TLS on
/// 465-style, and plaintext on loopback where the listener allows it. What it sent is read back
/// from the store with `postern admin message get`; what the server refused comes back per
/// recipient; connection, TLS and login trouble throws.
final class SubmissionTests: XCTestCase {
    func testSubmissionToPostern() async throws {
        let dir = TempDir("submission")
        let starttlsPort = freePort(), implicitPort = freePort(), plainPort = freePort(), closedPort = freePort()
        let (cert, key) = try makeCertificate(dir, "mail.test.example")
        let server = try ServerProcess.start(dir, """
            data_dir = "./var"
            workers = 1
            [plugin.store-sqlite]
            password_iterations = 4096
            [plugin.sasl-plain]
            [plugin.sasl-login]
            [plugin.queue]
            hostname = "mail.test.example"
            [plugin.smtp]
            hostname = "mail.test.example"
            [[listener]]
            name = "submission"
            address = "127.0.0.1"
            port = \(starttlsPort)
            protocol = "smtp"
            tls = "starttls"
            certificate = "\(cert)"
            key = "\(key)"
            [listener.options]
            mode = "submission"
            [[listener]]
            name = "submissions"
            address = "127.0.0.1"
            port = \(implicitPort)
            protocol = "smtp"
            tls = "implicit"
            certificate = "\(cert)"
            key = "\(key)"
            [listener.options]
            mode = "submissions"
            [[listener]]
            name = "loopback"
            address = "127.0.0.1"
            port = \(plainPort)
            protocol = "smtp"
            [listener.options]
            mode = "submission"
            allow_plaintext_auth_on_loopback = true
            """)
        defer { server.stop() }
        func admin(_ args: [String]) -> String { Build.run(Build.postern, ["admin"] + args + ["-c", server.configFile], cwd: dir.path).output }
        _ = admin(["domain", "add", "example.org"])
        _ = admin(["user", "add", "alice@example.org", "--password", "alice-pw"])
        _ = admin(["user", "add", "bob@example.org", "--password", "bob-pw"])
        func inbox(_ user: String) -> [String] {
            admin(["message", "list", user]).split(separator: "\n").compactMap { line in
                line.split(separator: "\t").first.map { admin(["message", "get", user, String($0)]) }
            }
        }

        let group = MultiThreadedEventLoopGroup.singleton
        let logger = Logger(label: "submission-test")
        let alice = SASLClientCredentials(user: "alice@example.org", password: "alice-pw")
        func send(_ security: SMTPSubmission.Security, port: Int, subject: String, to: [String] = ["bob@example.org"],
                  credentials: SASLClientCredentials? = alice, verify: Bool = false, body: String = "Hello.\n") async throws -> SMTPSubmission.Result {
            let message = Array("From: alice@example.org\nTo: \(to.joined(separator: ", "))\nSubject: \(subject)\n\n\(body)".utf8)
            return try await SMTPSubmission.send(message: message, from: "alice@example.org", to: to,
                                                 server: .init(host: "127.0.0.1", port: port, security: security),
                                                 credentials: credentials, verifyCertificate: verify, heloName: "webmail.test.example",
                                                 timeouts: SMTPClientTimeouts(connect: 5, greeting: 10, command: 10, dataBlock: 10, finalReply: 20),
                                                 group: group, logger: logger)
        }
        func failure(of work: () async throws -> SMTPSubmission.Result) async -> SMTPSubmissionError? {
            do {
                let result = try await work()
                XCTFail("expected an error, got \(result)")
                return nil
            } catch let error as SMTPSubmissionError {
                return error
            } catch {
                XCTFail("unexpected error \(error)")
                return nil
            }
        }

        // STARTTLS and AUTH PLAIN; one of three recipients unknown. Bare LF line ends become
        // CRLF, and a line that is a lone dot arrives as it was written.
        let mixed = try await send(.starttls, port: starttlsPort, subject: "over STARTTLS",
                                   to: ["bob@example.org", "nobody@example.org", "alice@example.org"],
                                   body: "line one\n.\n..two dots\nlast line")
        XCTAssertTrue(mixed.encrypted)
        XCTAssertEqual(mixed.accepted, ["bob@example.org", "alice@example.org"], "\(mixed)")
        XCTAssertEqual(mixed.refused.map(\.recipient), ["nobody@example.org"])
        XCTAssertEqual(mixed.refused.first?.status, .failed)
        XCTAssertEqual(mixed.refused.first?.reply.code, 550, "\(mixed)")
        XCTAssertTrue(mixed.refused.first?.reply.text.contains("(in reply to RCPT TO command)") == true, "\(mixed)")
        XCTAssertFalse(mixed.allAccepted)

        // Implicit TLS, and plaintext AUTH to a loopback listener that allows it.
        let implicit = try await send(.tls, port: implicitPort, subject: "over implicit TLS")
        XCTAssertEqual(implicit.recipients.map(\.status), [.delivered], "\(implicit)")
        XCTAssertTrue(implicit.encrypted)
        let plain = try await send(.none, port: plainPort, subject: "in plaintext on loopback")
        XCTAssertEqual(plain.recipients.map(\.status), [.delivered], "\(plain)")
        XCTAssertFalse(plain.encrypted)

        // The messages arrive through the queue, as sent.
        XCTAssertTrue(waitUntil(20) { inbox("bob@example.org").count == 3 }, "\(inbox("bob@example.org"))")
        let bobs = inbox("bob@example.org")
        for subject in ["over STARTTLS", "over implicit TLS", "in plaintext on loopback"] {
            XCTAssertTrue(bobs.contains { $0.contains("Subject: \(subject)\r\n") }, "\(subject): \(bobs)")
        }
        let overSTARTTLS = try XCTUnwrap(bobs.first { $0.contains("Subject: over STARTTLS") })
        XCTAssertTrue(overSTARTTLS.contains("\r\n\r\nline one\r\n.\r\n..two dots\r\nlast line\r\n"), overSTARTTLS)
        XCTAssertTrue(overSTARTTLS.contains("with ESMTPSA"), overSTARTTLS)
        XCTAssertTrue(overSTARTTLS.contains("webmail.test.example"), overSTARTTLS)
        XCTAssertTrue(waitUntil(10) { inbox("alice@example.org").count == 1 })

        // Without credentials the submission listener refuses MAIL: a refusal for every recipient.
        let anonymous = try await send(.starttls, port: starttlsPort, subject: "anonymous", to: ["bob@example.org", "alice@example.org"], credentials: nil)
        XCTAssertEqual(anonymous.recipients.map(\.status), [.failed, .failed], "\(anonymous)")
        XCTAssertEqual(anonymous.recipients.map(\.reply.code), [530, 530], "\(anonymous)")
        XCTAssertEqual(anonymous.accepted, [])

        // A wrong password, an unverifiable certificate, STARTTLS not offered, nobody listening:
        // each throws its kind of error, and nothing is sent.
        let wrong = await failure { try await send(.starttls, port: starttlsPort, subject: "wrong password",
                                                 credentials: SASLClientCredentials(user: "alice@example.org", password: "nope")) }
        guard case .authentication(let refusal)? = wrong else { return XCTFail("\(String(describing: wrong))") }
        XCTAssertTrue(refusal.text.contains("535 "), refusal.text)
        XCTAssertTrue(refusal.text.contains("127.0.0.1:\(starttlsPort)"), refusal.text)

        let unverified = await failure { try await send(.tls, port: implicitPort, subject: "unverified", verify: true) }
        guard case .tls(let handshake)? = unverified else { return XCTFail("\(String(describing: unverified))") }
        XCTAssertEqual(handshake.enhanced, "4.7.5", "\(handshake)")
        let unverifiedSTARTTLS = await failure { try await send(.starttls, port: starttlsPort, subject: "unverified", verify: true) }
        guard case .tls? = unverifiedSTARTTLS else { return XCTFail("\(String(describing: unverifiedSTARTTLS))") }

        let noSTARTTLS = await failure { try await send(.starttls, port: plainPort, subject: "no STARTTLS") }
        guard case .tls(let notOffered)? = noSTARTTLS else { return XCTFail("\(String(describing: noSTARTTLS))") }
        XCTAssertTrue(notOffered.text.contains("TLS is required, but was not offered"), notOffered.text)

        let closed = await failure { try await send(.starttls, port: closedPort, subject: "nobody home") }
        guard case .connection(let refused)? = closed else { return XCTFail("\(String(describing: closed))") }
        XCTAssertTrue(refused.text.contains("Connection refused"), refused.text)

        // An address that would smuggle a command never reaches the wire.
        let smuggled = await failure { try await send(.starttls, port: starttlsPort, subject: "x", to: ["bob@example.org>\r\nRCPT TO:<alice@example.org"]) }
        guard case .invalidRequest? = smuggled else { return XCTFail("\(String(describing: smuggled))") }

        XCTAssertEqual(inbox("bob@example.org").count, 3, "nothing more arrived")
    }
}
