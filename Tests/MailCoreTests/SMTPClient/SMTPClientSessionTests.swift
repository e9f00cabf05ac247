import PluginAPI
import XCTest

/// `SMTPClientSession` driven by scripted replies, without sockets: the commands it sends, in order,
/// the stages it waits in, and the outcome of every recipient.
final class SMTPClientSessionTests: XCTestCase {
    static let peer = "mx.example.org[192.0.2.1]:25"
    static let fullEHLO = "250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 1000000\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 ENHANCEDSTATUSCODES\r\n"

    static func reply(_ text: String) -> SMTPReply {
        var parser = SMTPReplyParser()
        parser.feed(Array(text.utf8))
        return try! parser.next()!
    }

    static func session(_ recipients: [EnvelopeRecipient] = [EnvelopeRecipient(address: "alice@example.org")],
                        sender: String = "carol@example.net", tls: SMTPClientTLSPolicy = .none, kind: SMTPClientProtocol = .smtp,
                        content: String = "Subject: hi\r\n\r\nHello.\r\n", credentials: SASLClientCredentials? = nil,
                        loopback: Bool = false, envelope: (inout Envelope) -> Void = { _ in }) -> SMTPClientSession {
        var env = Envelope(sender: sender, recipients: recipients)
        envelope(&env)
        return SMTPClientSession(settings: SMTPClientSessionSettings(protocolKind: kind, heloName: "client.example.net", tls: tls, peer: peer,
                                                             credentials: credentials, plaintextAuthAllowed: loopback),
                             message: SMTPOutgoingMessage(envelope: env, recipients: recipients, content: MessageContentScan.scan(Array(content.utf8))))
    }

    static func rcpts(_ addresses: String...) -> [EnvelopeRecipient] { addresses.map { EnvelopeRecipient(address: $0) } }

    /// The outcomes of a `.finish(.outcomes)` at the end of `actions`.
    func outcomes(_ actions: [SMTPClientAction], file: StaticString = #filePath, line: UInt = #line) -> [RecipientOutcome] {
        guard case .finish(.outcomes(let o))? = actions.last else {
            XCTFail("expected outcomes, got \(actions)", file: file, line: line)
            return []
        }
        return o
    }

    func testPipelinedTransactionWithMixedRecipientReplies() {
        var s = Self.session(Self.rcpts("alice@example.org", "bob@example.org", "carol@example.org"))
        XCTAssertEqual(s.stage, .greeting)
        XCTAssertEqual(s.received(Self.reply("220 mx.example.org ESMTP\r\n")), [.send(["EHLO client.example.net"])])
        XCTAssertEqual(s.stage, .reply(to: "EHLO"))
        XCTAssertEqual(s.received(Self.reply(Self.fullEHLO)), [.send([
            "MAIL FROM:<carol@example.net> SIZE=23",
            "RCPT TO:<alice@example.org>", "RCPT TO:<bob@example.org>", "RCPT TO:<carol@example.org>",
        ])])
        XCTAssertEqual(s.stage, .reply(to: "MAIL FROM"))
        XCTAssertEqual(s.received(Self.reply("250 2.1.0 Ok\r\n")), [])
        XCTAssertEqual(s.stage, .reply(to: "RCPT TO"))
        XCTAssertEqual(s.received(Self.reply("250 2.1.5 Ok\r\n")), [])
        XCTAssertEqual(s.received(Self.reply("550 5.1.1 <bob@example.org>: User unknown\r\n")), [])
        XCTAssertEqual(s.received(Self.reply("450 4.2.0 <carol@example.org>: greylisted\r\n")), [.send(["DATA"])])
        XCTAssertEqual(s.stage, .reply(to: "DATA"))
        XCTAssertEqual(s.received(Self.reply("354 End data with <CR><LF>.<CR><LF>\r\n")), [.sendMessage(downgraded: false)])
        XCTAssertEqual(s.stage, .message)
        XCTAssertEqual(s.messageSent(), [])
        XCTAssertEqual(s.stage, .finalReply)
        let actions = s.received(Self.reply("250 2.0.0 Ok: queued as 4XyZ\r\n"))
        XCTAssertEqual(actions.first, .send(["QUIT"]))
        XCTAssertEqual(outcomes(actions), [
            RecipientOutcome(recipient: "alice@example.org", status: .delivered,
                             reply: MailReply(250, "2.0.0", "host \(Self.peer) said: 250 Ok: queued as 4XyZ (in reply to end of DATA command)")),
            RecipientOutcome(recipient: "bob@example.org", status: .failed,
                             reply: MailReply(550, "5.1.1", "host \(Self.peer) said: 550 <bob@example.org>: User unknown (in reply to RCPT TO command)")),
            RecipientOutcome(recipient: "carol@example.org", status: .deferred,
                             reply: MailReply(450, "4.2.0", "host \(Self.peer) said: 450 <carol@example.org>: greylisted (in reply to RCPT TO command)")),
        ])
        XCTAssertTrue(s.isFinished)
        XCTAssertEqual(s.connectionLost("lost connection"), [], "a closed connection after the end changes nothing")
    }

    func testWithoutPipeliningCommandsGoOneByOne() {
        var s = Self.session(Self.rcpts("a@example.org", "b@example.org"))
        _ = s.received(Self.reply("220 hi\r\n"))
        XCTAssertEqual(s.received(Self.reply("250-mx\r\n250 8BITMIME\r\n")), [.send(["MAIL FROM:<carol@example.net>"])])
        XCTAssertEqual(s.received(Self.reply("250 ok\r\n")), [.send(["RCPT TO:<a@example.org>"])])
        XCTAssertEqual(s.received(Self.reply("250 ok\r\n")), [.send(["RCPT TO:<b@example.org>"])])
        XCTAssertEqual(s.received(Self.reply("250 ok\r\n")), [.send(["DATA"])])
        XCTAssertEqual(s.received(Self.reply("354 go\r\n")), [.sendMessage(downgraded: false)])
        _ = s.messageSent()
        let o = outcomes(s.received(Self.reply("451 4.3.0 try again later\r\n")))
        XCTAssertEqual(o.map(\.status), [.deferred, .deferred])
        XCTAssertEqual(o[0].reply, MailReply(451, "4.3.0", "host \(Self.peer) said: 451 try again later (in reply to end of DATA command)"))
    }

    func testMailRefusedNonPipelinedEndsAtOnce() {
        var s = Self.session(Self.rcpts("a@example.org", "b@example.org"))
        _ = s.received(Self.reply("220 hi\r\n"))
        _ = s.received(Self.reply("250 mx\r\n"))
        let actions = s.received(Self.reply("553 5.1.8 sender domain does not exist\r\n"))
        XCTAssertEqual(actions.first, .send(["QUIT"]))
        XCTAssertEqual(outcomes(actions).map(\.status), [.failed, .failed])
        XCTAssertEqual(outcomes(actions)[0].reply.enhanced, "5.1.8")
    }

    func testMailRefusedWhilePipelinedReadsTheRcptRepliesFirst() {
        var s = Self.session(Self.rcpts("a@example.org", "b@example.org"))
        _ = s.received(Self.reply("220 hi\r\n"))
        _ = s.received(Self.reply(Self.fullEHLO))
        XCTAssertEqual(s.received(Self.reply("451 4.7.1 slow down\r\n")), [])
        XCTAssertEqual(s.received(Self.reply("503 5.5.1 need MAIL\r\n")), [])
        let actions = s.received(Self.reply("503 5.5.1 need MAIL\r\n"))
        XCTAssertEqual(actions.first, .send(["QUIT"]))
        XCTAssertEqual(outcomes(actions).map(\.status), [.deferred, .deferred])
        XCTAssertEqual(outcomes(actions)[1].reply.text, "host \(Self.peer) said: 451 slow down (in reply to MAIL FROM command)")
    }

    func testEveryRecipientRefusedSendsNoData() {
        var s = Self.session(Self.rcpts("a@example.org", "b@example.org"))
        _ = s.received(Self.reply("220 hi\r\n"))
        _ = s.received(Self.reply(Self.fullEHLO))
        _ = s.received(Self.reply("250 ok\r\n"))
        _ = s.received(Self.reply("550 no\r\n"))
        let actions = s.received(Self.reply("551 5.1.6 moved\r\n"))
        XCTAssertEqual(actions.first, .send(["QUIT"]))
        XCTAssertEqual(outcomes(actions).map(\.status), [.failed, .failed])
        XCTAssertEqual(outcomes(actions).map { $0.reply.enhanced }, ["5.0.0", "5.1.6"])
    }

    func testDataRefusedAppliesToAcceptedRecipientsOnly() {
        var s = Self.session(Self.rcpts("a@example.org", "b@example.org"))
        _ = s.received(Self.reply("220 hi\r\n"))
        _ = s.received(Self.reply(Self.fullEHLO))
        _ = s.received(Self.reply("250 ok\r\n"))
        _ = s.received(Self.reply("250 ok\r\n"))
        _ = s.received(Self.reply("452 4.5.3 too many recipients\r\n"))
        let o = outcomes(s.received(Self.reply("554 5.5.1 no valid recipients\r\n")))
        XCTAssertEqual(o.map(\.status), [.failed, .deferred])
        XCTAssertEqual(o.map { $0.reply.enhanced }, ["5.5.1", "4.5.3"])
        // A 2xx to DATA would otherwise read as delivered though nothing was sent.
        var t = Self.session()
        _ = t.received(Self.reply("220 hi\r\n"))
        _ = t.received(Self.reply("250 mx\r\n"))
        _ = t.received(Self.reply("250 ok\r\n"))
        _ = t.received(Self.reply("250 ok\r\n"))
        let odd = outcomes(t.received(Self.reply("250 sure\r\n")))
        XCTAssertEqual(odd.map(\.status), [.deferred])
        XCTAssertEqual(odd[0].reply.code, 451)
    }

    func testGreetingOtherThan220TriesTheNextHost() {
        for (text, code) in [("554 5.7.1 go away\r\n", 554), ("421 4.3.2 busy\r\n", 421), ("250 odd greeting\r\n", 250)] {
            var s = Self.session()
            let actions = s.received(Self.reply(text))
            XCTAssertEqual(actions.first, .send(["QUIT"]), text)
            guard case .finish(.tryNextHost(let r))? = actions.last else { return XCTFail("\(actions)") }
            XCTAssertEqual(r.code, code)
            XCTAssertTrue(r.text.hasPrefix("host \(Self.peer) refused to talk to me: \(code) "), r.text)
        }
    }

    func testEHLORefusedFallsBackToHELO() {
        var s = Self.session(content: "Subject: 8bit\r\n\r\nK\u{e4}se\r\n")
        _ = s.received(Self.reply("220 old server\r\n"))
        XCTAssertEqual(s.received(Self.reply("502 5.5.2 Error: command not recognized\r\n")), [.send(["HELO client.example.net"])])
        XCTAssertEqual(s.stage, .reply(to: "HELO"))
        // No extensions after HELO: an 8-bit body must be converted.
        XCTAssertEqual(s.received(Self.reply("250 old server\r\n")), [.prepareDowngrade])
        XCTAssertEqual(s.stage, .downgrade)
        XCTAssertEqual(s.downgradePrepared(.success(40)), [.send(["MAIL FROM:<carol@example.net>"])])
        _ = s.received(Self.reply("250 ok\r\n"))
        _ = s.received(Self.reply("250 ok\r\n"))
        XCTAssertEqual(s.received(Self.reply("354 go\r\n")), [.sendMessage(downgraded: true)])

        var refused = Self.session()
        _ = refused.received(Self.reply("220 hi\r\n"))
        _ = refused.received(Self.reply("500 what\r\n"))
        let actions = refused.received(Self.reply("501 5.5.4 go away\r\n"))
        guard case .finish(.tryNextHost(let r))? = actions.last else { return XCTFail("\(actions)") }
        XCTAssertEqual(r.text, "host \(Self.peer) said: 501 go away (in reply to HELO command)")
        // A temporary EHLO refusal is not a reason for HELO.
        var busy = Self.session()
        _ = busy.received(Self.reply("220 hi\r\n"))
        guard case .finish(.tryNextHost)? = busy.received(Self.reply("421 4.3.2 busy\r\n")).last else { return XCTFail() }
    }

    func testOpportunisticSTARTTLS() {
        var s = Self.session(tls: .may)
        _ = s.received(Self.reply("220 hi\r\n"))
        XCTAssertEqual(s.received(Self.reply("250-mx\r\n250-STARTTLS\r\n250 SIZE 100\r\n")), [.send(["STARTTLS"])])
        XCTAssertEqual(s.received(Self.reply("220 2.0.0 Ready to start TLS\r\n")), [.startTLS])
        XCTAssertEqual(s.stage, .tlsHandshake)
        XCTAssertEqual(s.tlsEstablished(), [.send(["EHLO client.example.net"])])
        XCTAssertTrue(s.isSecure)
        // Extensions are learnt again; STARTTLS is not offered twice (and would not be taken).
        XCTAssertEqual(s.received(Self.reply("250-mx\r\n250-STARTTLS\r\n250 SIZE 200\r\n")), [.send(["MAIL FROM:<carol@example.net> SIZE=23"])])
        XCTAssertEqual(s.extensions.sizeLimit, 200)

        var refused = Self.session(tls: .may)
        _ = refused.received(Self.reply("220 hi\r\n"))
        _ = refused.received(Self.reply("250-mx\r\n250 STARTTLS\r\n"))
        XCTAssertEqual(refused.received(Self.reply("454 4.7.0 TLS not available\r\n")), [.send(["MAIL FROM:<carol@example.net>"])],
                       "may: a refused STARTTLS continues in plaintext")

        var broken = Self.session(tls: .may)
        _ = broken.received(Self.reply("220 hi\r\n"))
        _ = broken.received(Self.reply("250-mx\r\n250 STARTTLS\r\n"))
        _ = broken.received(Self.reply("220 go ahead\r\n"))
        XCTAssertEqual(broken.tlsFailed("handshake failure"), [.finish(.retryWithoutTLS(MailReply(421, "4.7.5", "TLS handshake with \(Self.peer) failed: handshake failure")))])

        var none = Self.session(tls: .none)
        _ = none.received(Self.reply("220 hi\r\n"))
        XCTAssertEqual(none.received(Self.reply("250-mx\r\n250 STARTTLS\r\n")), [.send(["MAIL FROM:<carol@example.net>"])])
    }

    /// AUTH to a smarthost (RFC 4954): after STARTTLS and the second EHLO, PLAIN with an initial
    /// response, then the transaction; LOGIN when PLAIN is not offered; never a password in
    /// plaintext except to loopback; a refused login defers.
    func testAuthenticationToASmarthost() {
        let alice = SASLClientCredentials(user: "alice", password: "s3cret:x")
        XCTAssertEqual(SASLClientCredentials(tableValue: "alice:s3cret:x"), alice, "the first colon separates")
        XCTAssertNil(SASLClientCredentials(tableValue: "no-colon"))
        XCTAssertNil(SASLClientCredentials(tableValue: ":password"))
        let plain = "AUTH PLAIN AGFsaWNlAHMzY3JldDp4"   // base64 of NUL alice NUL s3cret:x

        var s = Self.session(tls: .may, credentials: alice)
        _ = s.received(Self.reply("220 hi\r\n"))
        XCTAssertEqual(s.received(Self.reply("250-relay\r\n250-STARTTLS\r\n250 AUTH PLAIN LOGIN\r\n")), [.send(["STARTTLS"])])
        _ = s.received(Self.reply("220 go ahead\r\n"))
        _ = s.tlsEstablished()
        XCTAssertEqual(s.received(Self.reply("250-relay\r\n250 AUTH LOGIN PLAIN\r\n")), [.sendSecret(plain)])
        XCTAssertEqual(s.stage, .reply(to: "AUTH"))
        XCTAssertEqual(s.received(Self.reply("235 2.7.0 Authentication successful\r\n")), [.send(["MAIL FROM:<carol@example.net>"])])

        var login = Self.session(credentials: alice, loopback: true)
        _ = login.received(Self.reply("220 hi\r\n"))
        XCTAssertEqual(login.received(Self.reply("250-relay\r\n250 AUTH LOGIN\r\n")), [.send(["AUTH LOGIN"])], "loopback: no TLS needed")
        XCTAssertEqual(login.received(Self.reply("334 VXNlcm5hbWU6\r\n")), [.sendSecret("YWxpY2U=")])
        XCTAssertEqual(login.received(Self.reply("334 UGFzc3dvcmQ6\r\n")), [.sendSecret("czNjcmV0Ong=")])
        XCTAssertEqual(login.received(Self.reply("235 ok\r\n")), [.send(["MAIL FROM:<carol@example.net>"])])

        var plaintext = Self.session(credentials: alice)
        _ = plaintext.received(Self.reply("220 hi\r\n"))
        XCTAssertEqual(plaintext.received(Self.reply("250-relay\r\n250 AUTH PLAIN\r\n")), [.send(["QUIT"]), .finish(.tryNextHost(
            MailReply(454, "4.7.0", "host \(Self.peer) wants AUTH, but the password is not sent without TLS")))])

        var refused = Self.session(credentials: alice, loopback: true)
        _ = refused.received(Self.reply("220 hi\r\n"))
        _ = refused.received(Self.reply("250-relay\r\n250 AUTH PLAIN\r\n"))
        XCTAssertEqual(refused.received(Self.reply("535 5.7.8 Error: authentication failed\r\n")), [.send(["QUIT"]), .finish(.tryNextHost(
            MailReply(454, "4.7.0", "SASL authentication failed; host \(Self.peer) said: 535 Error: authentication failed")))])

        var nothingInCommon = Self.session(credentials: alice, loopback: true)
        _ = nothingInCommon.received(Self.reply("220 hi\r\n"))
        XCTAssertEqual(nothingInCommon.received(Self.reply("250-relay\r\n250 AUTH CRAM-MD5\r\n")).last, .finish(.tryNextHost(
            MailReply(454, "4.7.0", "no SASL mechanism in common with host \(Self.peer) (it offers CRAM-MD5; Postern sends PLAIN or LOGIN)"))))

        // Credentials for a server that does not offer AUTH: the transaction goes on without.
        var noAuth = Self.session(credentials: alice, loopback: true)
        _ = noAuth.received(Self.reply("220 hi\r\n"))
        XCTAssertEqual(noAuth.received(Self.reply("250 relay\r\n")), [.send(["MAIL FROM:<carol@example.net>"])])

        var lost = Self.session(credentials: alice, loopback: true)
        _ = lost.received(Self.reply("220 hi\r\n"))
        _ = lost.received(Self.reply("250-relay\r\n250 AUTH PLAIN\r\n"))
        XCTAssertEqual(lost.connectionLost("lost connection"), [.finish(.tryNextHost(
            MailReply(421, "4.4.2", "lost connection with \(Self.peer) while receiving the reply to AUTH")))])
    }

    /// What submission adds (`SMTPSubmission`): `failure` says why a session gave up (a wrong
    /// password is not a server that is down), `requireAuthentication` refuses to go on without a
    /// login, and `implicitTLS` starts secure (no STARTTLS; plaintext AUTH allowed at once).
    func testFailureKindsRequiredAuthenticationAndImplicitTLS() {
        let alice = SASLClientCredentials(user: "alice", password: "pw")
        func session(tls: SMTPClientTLSPolicy = .none, loopback: Bool = false, implicitTLS: Bool = false, require: Bool = true) -> SMTPClientSession {
            let env = Envelope(sender: "alice@example.org", recipients: [EnvelopeRecipient(address: "bob@example.net")])
            return SMTPClientSession(settings: SMTPClientSessionSettings(protocolKind: .smtp, heloName: "client.example.net", tls: tls,
                                                                         peer: Self.peer, credentials: alice, plaintextAuthAllowed: loopback,
                                                                         implicitTLS: implicitTLS, requireAuthentication: require),
                                     message: SMTPOutgoingMessage(envelope: env, recipients: env.recipients,
                                                                  content: MessageContentScan.scan(Array("Subject: x\r\n\r\nx\r\n".utf8))))
        }

        var greeting = session()
        _ = greeting.received(Self.reply("554 5.7.1 go away\r\n"))
        XCTAssertEqual(greeting.failure, .connection)

        var wrongPassword = session(loopback: true)
        _ = wrongPassword.received(Self.reply("220 hi\r\n"))
        XCTAssertNil(wrongPassword.failure)
        _ = wrongPassword.received(Self.reply("250-mx\r\n250 AUTH PLAIN\r\n"))
        _ = wrongPassword.received(Self.reply("535 5.7.8 authentication credentials invalid\r\n"))
        XCTAssertEqual(wrongPassword.failure, .authentication)

        var noAuthOffered = session(loopback: true)
        _ = noAuthOffered.received(Self.reply("220 hi\r\n"))
        XCTAssertEqual(noAuthOffered.received(Self.reply("250-mx\r\n250 PIPELINING\r\n")), [.send(["QUIT"]), .finish(.tryNextHost(
            MailReply(530, "5.7.0", "host \(Self.peer) does not offer AUTH without TLS; the message is not sent without logging in")))])
        XCTAssertEqual(noAuthOffered.failure, .authentication)

        var notOverPlaintext = session()
        _ = notOverPlaintext.received(Self.reply("220 hi\r\n"))
        _ = notOverPlaintext.received(Self.reply("250-mx\r\n250 AUTH PLAIN\r\n"))
        XCTAssertEqual(notOverPlaintext.failure, .authentication)

        var tlsNotOffered = session(tls: .encrypt)
        _ = tlsNotOffered.received(Self.reply("220 hi\r\n"))
        _ = tlsNotOffered.received(Self.reply("250 mx\r\n"))
        XCTAssertEqual(tlsNotOffered.failure, .tls)

        var lost = session()
        _ = lost.received(Self.reply("220 hi\r\n"))
        _ = lost.connectionLost("lost connection")
        XCTAssertEqual(lost.failure, .connection)

        // Implicit TLS: secure from the start, so no STARTTLS even under `encrypt`, and AUTH goes
        // to a remote server at once; a failed handshake before the greeting is TLS trouble.
        var implicit = session(tls: .encrypt, implicitTLS: true)
        XCTAssertTrue(implicit.isSecure)
        _ = implicit.received(Self.reply("220 hi\r\n"))
        XCTAssertEqual(implicit.received(Self.reply("250-mx\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n")), [.sendSecret("AUTH PLAIN AGFsaWNlAHB3")])
        XCTAssertEqual(implicit.received(Self.reply("235 2.7.0 ok\r\n")), [.send(["MAIL FROM:<alice@example.org>"])])
        XCTAssertNil(implicit.failure)

        var handshake = session(tls: .may, implicitTLS: true)
        XCTAssertEqual(handshake.tlsFailed("certificate verify failed"), [.finish(.tryNextHost(
            MailReply(421, "4.7.5", "TLS handshake with \(Self.peer) failed: certificate verify failed")))], "never retried in plaintext")
        XCTAssertEqual(handshake.failure, .tls)

        // Without requireAuthentication a server without AUTH gets the mail anyway (smarthosts, as before).
        var relaxed = session(loopback: true, require: false)
        _ = relaxed.received(Self.reply("220 hi\r\n"))
        XCTAssertEqual(relaxed.received(Self.reply("250 mx\r\n")), [.send(["MAIL FROM:<alice@example.org>"])])
    }

    func testMandatoryTLS() {
        var notOffered = Self.session(tls: .encrypt)
        _ = notOffered.received(Self.reply("220 hi\r\n"))
        XCTAssertEqual(notOffered.received(Self.reply("250-mx\r\n250 PIPELINING\r\n")),
                       [.send(["QUIT"]), .finish(.tryNextHost(MailReply(451, "4.7.4", "TLS is required, but was not offered by host \(Self.peer)")))])

        var refused = Self.session(tls: .encrypt)
        _ = refused.received(Self.reply("220 hi\r\n"))
        _ = refused.received(Self.reply("250-mx\r\n250 STARTTLS\r\n"))
        guard case .finish(.tryNextHost(let r))? = refused.received(Self.reply("454 4.7.0 no\r\n")).last else { return XCTFail() }
        XCTAssertEqual(r.enhanced, "4.7.4")

        var unverified = Self.session(tls: .encrypt)
        _ = unverified.received(Self.reply("220 hi\r\n"))
        _ = unverified.received(Self.reply("250-mx\r\n250 STARTTLS\r\n"))
        _ = unverified.received(Self.reply("220 go ahead\r\n"))
        XCTAssertEqual(unverified.tlsFailed("certificate verify failed"),
                       [.finish(.tryNextHost(MailReply(421, "4.7.5", "TLS handshake with \(Self.peer) failed: certificate verify failed")))])
    }

    func testSizeLimitRefusesBeforeMail() {
        var s = Self.session(Self.rcpts("a@example.org", "b@example.org"), content: String(repeating: "x", count: 2000))
        _ = s.received(Self.reply("220 hi\r\n"))
        let actions = s.received(Self.reply("250-mx\r\n250 SIZE 1000\r\n"))
        XCTAssertEqual(actions.first, .send(["QUIT"]))
        XCTAssertEqual(outcomes(actions), Self.rcpts("a@example.org", "b@example.org").map {
            RecipientOutcome(recipient: $0.address, status: .failed,
                             reply: MailReply(552, "5.3.4", "message size 2000 exceeds size limit 1000 of server \(Self.peer)"))
        })
        // SIZE 0 means no limit.
        var unlimited = Self.session(content: String(repeating: "x", count: 2000))
        _ = unlimited.received(Self.reply("220 hi\r\n"))
        XCTAssertEqual(unlimited.received(Self.reply("250-mx\r\n250 SIZE 0\r\n")), [.send(["MAIL FROM:<carol@example.net> SIZE=2000"])])
    }

    func testSMTPUTF8() {
        // A non-ASCII address needs SMTPUTF8.
        var s = Self.session(Self.rcpts("j\u{f6}rg@example.org"))
        _ = s.received(Self.reply("220 hi\r\n"))
        let actions = s.received(Self.reply("250-mx\r\n250 8BITMIME\r\n"))
        XCTAssertEqual(outcomes(actions).first?.reply, MailReply(550, "5.6.7", "SMTPUTF8 is required, but was not offered by host \(Self.peer)"))
        var offered = Self.session(Self.rcpts("j\u{f6}rg@example.org"))
        _ = offered.received(Self.reply("220 hi\r\n"))
        XCTAssertEqual(offered.received(Self.reply("250-mx\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")), [.send(["MAIL FROM:<carol@example.net> SMTPUTF8"])])
        // Submitted with SMTPUTF8 and a UTF-8 header: needed too; ASCII only: not needed.
        var header = Self.session(content: "Subject: Gr\u{fc}\u{df}e\r\n\r\nx\r\n") { $0.smtpUTF8 = true }
        _ = header.received(Self.reply("220 hi\r\n"))
        XCTAssertEqual(outcomes(header.received(Self.reply("250-mx\r\n250 8BITMIME\r\n"))).first?.reply.enhanced, "5.6.7")
        var ascii = Self.session { $0.smtpUTF8 = true }
        _ = ascii.received(Self.reply("220 hi\r\n"))
        XCTAssertEqual(ascii.received(Self.reply("250 mx\r\n")), [.send(["MAIL FROM:<carol@example.net>"])])
    }

    func testEightBitMIME() {
        // Offered: BODY=8BITMIME, whether declared or seen.
        var seen = Self.session(content: "Subject: x\r\n\r\nK\u{e4}se\r\n")
        _ = seen.received(Self.reply("220 hi\r\n"))
        XCTAssertEqual(seen.received(Self.reply("250-mx\r\n250 8BITMIME\r\n")), [.send(["MAIL FROM:<carol@example.net> BODY=8BITMIME"])])
        var declared = Self.session { $0.body = "8BITMIME" }
        _ = declared.received(Self.reply("220 hi\r\n"))
        XCTAssertEqual(declared.received(Self.reply("250-mx\r\n250 8BITMIME\r\n")), [.send(["MAIL FROM:<carol@example.net> BODY=8BITMIME"])])
        // Declared but 7-bit inside, to a server without 8BITMIME: sent as it is.
        var declaredOnly = Self.session { $0.body = "8BITMIME" }
        _ = declaredOnly.received(Self.reply("220 hi\r\n"))
        XCTAssertEqual(declaredOnly.received(Self.reply("250 mx\r\n")), [.send(["MAIL FROM:<carol@example.net>"])])
        // 8-bit header, no 8BITMIME: returned.
        var header = Self.session(content: "Subject: K\u{e4}se\r\n\r\nx\r\n")
        _ = header.received(Self.reply("220 hi\r\n"))
        let refusal = outcomes(header.received(Self.reply("250 mx\r\n")))
        XCTAssertEqual(refusal.first?.reply, MailReply(550, "5.6.3", "host \(Self.peer) does not support 8BITMIME and the message has 8-bit octets in its header"))
        // 8-bit body, no 8BITMIME: converted (SIZE= gives the converted size), or returned.
        var body = Self.session(content: "Subject: x\r\n\r\nK\u{e4}se\r\n")
        _ = body.received(Self.reply("220 hi\r\n"))
        XCTAssertEqual(body.received(Self.reply("250-mx\r\n250 SIZE\r\n")), [.prepareDowngrade])
        XCTAssertEqual(body.downgradePrepared(.success(99)), [.send(["MAIL FROM:<carol@example.net> SIZE=99"])])
        var impossible = Self.session(content: "Subject: x\r\n\r\nK\u{e4}se\r\n")
        _ = impossible.received(Self.reply("220 hi\r\n"))
        _ = impossible.received(Self.reply("250 mx\r\n"))
        let failed = outcomes(impossible.downgradePrepared(.failure(.eightBitOutsideParts)))
        XCTAssertEqual(failed.first?.status, .failed)
        XCTAssertEqual(failed.first?.reply.enhanced, "5.6.3")
    }

    func testDSNParametersOnlyWhenOffered() {
        let recipients = [EnvelopeRecipient(address: "a@example.org", notify: ["success", "FAILURE"], originalRecipient: "rfc822;a+tag=1@example.org"),
                          EnvelopeRecipient(address: "b@example.org", notify: ["NEVER"], originalRecipient: "b@example.org")]
        var s = Self.session(recipients) {
            $0.dsnReturn = "hdrs"
            $0.envelopeID = "id with space+plus"
        }
        _ = s.received(Self.reply("220 hi\r\n"))
        XCTAssertEqual(s.received(Self.reply("250-mx\r\n250 DSN\r\n")), [.send(["MAIL FROM:<carol@example.net> RET=HDRS ENVID=id+20with+20space+2Bplus"])])
        XCTAssertEqual(s.received(Self.reply("250 ok\r\n")), [.send(["RCPT TO:<a@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+2Btag+3D1@example.org"])])
        XCTAssertEqual(s.received(Self.reply("250 ok\r\n")), [.send(["RCPT TO:<b@example.org> NOTIFY=NEVER ORCPT=rfc822;b@example.org"])])

        var plain = Self.session(recipients) { $0.dsnReturn = "FULL" }
        _ = plain.received(Self.reply("220 hi\r\n"))
        XCTAssertEqual(plain.received(Self.reply("250-mx\r\n250 PIPELINING\r\n")),
                       [.send(["MAIL FROM:<carol@example.net>", "RCPT TO:<a@example.org>", "RCPT TO:<b@example.org>"])])
        XCTAssertEqual(SMTPClientSession.xtext("caf\u{e9}"), "caf+C3+A9")
    }

    func testNullSender() {
        var s = Self.session(sender: "")
        _ = s.received(Self.reply("220 hi\r\n"))
        XCTAssertEqual(s.received(Self.reply("250 mx\r\n")), [.send(["MAIL FROM:<>"])])
    }

    func testLMTPGivesOneFinalReplyPerAcceptedRecipient() {
        var s = Self.session(Self.rcpts("a@example.org", "b@example.org", "c@example.org"), kind: .lmtp)
        XCTAssertEqual(s.received(Self.reply("220 lmtp ready\r\n")), [.send(["LHLO client.example.net"])])
        XCTAssertEqual(s.stage, .reply(to: "LHLO"))
        XCTAssertEqual(s.received(Self.reply("250-lmtp\r\n250-PIPELINING\r\n250 8BITMIME\r\n")),
                       [.send(["MAIL FROM:<carol@example.net>", "RCPT TO:<a@example.org>", "RCPT TO:<b@example.org>", "RCPT TO:<c@example.org>"])])
        _ = s.received(Self.reply("250 ok\r\n"))
        _ = s.received(Self.reply("250 ok\r\n"))
        _ = s.received(Self.reply("550 5.1.1 unknown\r\n"))
        XCTAssertEqual(s.received(Self.reply("250 ok\r\n")), [.send(["DATA"])])
        _ = s.received(Self.reply("354 go\r\n"))
        _ = s.messageSent()
        XCTAssertEqual(s.received(Self.reply("250 2.0.0 <a@example.org> delivered\r\n")), [])
        XCTAssertEqual(s.stage, .finalReply)
        let o = outcomes(s.received(Self.reply("452 4.2.2 <c@example.org> mailbox full\r\n")))
        XCTAssertEqual(o.map(\.status), [.delivered, .failed, .deferred])
        XCTAssertEqual(o[2].reply.text, "host \(Self.peer) said: 452 <c@example.org> mailbox full (in reply to end of DATA command)")
        // LHLO refused: no HELO in LMTP.
        var refused = Self.session(kind: .lmtp)
        _ = refused.received(Self.reply("220 hi\r\n"))
        guard case .finish(.tryNextHost)? = refused.received(Self.reply("500 no\r\n")).last else { return XCTFail() }
    }

    func testLostConnectionByStage() {
        // Before the transaction: the next host.
        var early = Self.session()
        _ = early.received(Self.reply("220 hi\r\n"))
        XCTAssertEqual(early.connectionLost("lost connection"),
                       [.finish(.tryNextHost(MailReply(421, "4.4.2", "lost connection with \(Self.peer) while receiving the reply to EHLO")))])
        // During it: recipients not decided are deferred; decided ones keep their outcome.
        var late = Self.session(Self.rcpts("a@example.org", "b@example.org"))
        _ = late.received(Self.reply("220 hi\r\n"))
        _ = late.received(Self.reply(Self.fullEHLO))
        _ = late.received(Self.reply("250 ok\r\n"))
        _ = late.received(Self.reply("550 no\r\n"))
        _ = late.received(Self.reply("250 ok\r\n"))
        _ = late.received(Self.reply("354 go\r\n"))
        _ = late.messageSent()
        let o = outcomes(late.connectionLost("conversation timed out"))
        XCTAssertEqual(o.map(\.status), [.failed, .deferred])
        XCTAssertEqual(o[1].reply, MailReply(421, "4.4.2", "conversation timed out with \(Self.peer) while receiving the reply to end of DATA"))
    }

    func testUnexpectedReplyIsAProtocolError() {
        var s = Self.session()
        _ = s.received(Self.reply("220 hi\r\n"))
        _ = s.received(Self.reply("250 mx\r\n"))
        _ = s.received(Self.reply("250 ok\r\n"))
        _ = s.received(Self.reply("250 ok\r\n"))
        _ = s.received(Self.reply("354 go\r\n"))
        // A reply while the message is still being written: the server is out of step.
        let o = outcomes(s.received(Self.reply("250 early\r\n")))
        XCTAssertEqual(o.map(\.status), [.deferred])
        XCTAssertTrue(o[0].reply.text.hasPrefix("unexpected reply \"250 early\" with \(Self.peer) while sending message content"), o[0].reply.text)
    }

    func testStagesForTimeouts() {
        let timeouts = SMTPClientTimeouts(connect: 1, greeting: 2, command: 3, dataBlock: 4, finalReply: 5)
        XCTAssertEqual(timeouts.seconds(for: .greeting), 2)
        XCTAssertEqual(timeouts.seconds(for: .reply(to: "RCPT TO")), 3)
        XCTAssertEqual(timeouts.seconds(for: .tlsHandshake), 3)
        XCTAssertEqual(timeouts.seconds(for: .message), 4)
        XCTAssertEqual(timeouts.seconds(for: .finalReply), 5)
    }
}
