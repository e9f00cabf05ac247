import Foundation
import PluginAPI
import PosternHost
import PosternTestSupport
import XCTest

/// The built `smtp` transport against Postfix's smtp-sink (needs no root): a sink that records
/// each transaction, sinks without 8BITMIME or PIPELINING, sinks that refuse, drop or stall given
/// commands; MX routing through a throw-away unbound.
final class SinkTests: XCTestCase {
    var unbound: UnboundServer!
    var dir: TempDir!

    override func setUpWithError() throws {
        unbound = try UnboundServer(zones: TestZones.lines)
        dir = TempDir("smtp-sink-client")
    }

    override func tearDown() {
        unbound?.stop()
        unbound = nil
        dir = nil
    }

    func transport(port: Int, _ settings: [String: ConfigValue] = [:]) throws -> (PluginFixture, any Transport) {
        var config: [String: ConfigValue] = ["hostname": .string("client.test"), "port": .integer(port), "tls": .string("may"),
                                             "connect_timeout": .string("3s"), "command_timeout": .string("10s")]
        config.merge(settings) { _, new in new }
        let fixture = try PluginFixture(nameserver: unbound.address, smtpClient: config)
        return (fixture, fixture.smtp)
    }

    func testEightBitMessageIsDowngradedForAPeerWithout8BITMIME() async throws {
        let port = freePort()
        let sink = try SMTPSink(port: port, options: ["-8", "-p"])   // no 8BITMIME, no PIPELINING
        let (fixture, smtp) = try transport(port: port)
        let message = Array(("From: sender@client.test\r\nTo: alice@example.test\r\nSubject: K=C3=A4se\r\nMessage-ID: <downgrade@client.test>\r\n"
                             + "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n"
                             + "--alt\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
                             + "Gr\u{fc}\u{df}e aus K\u{f6}ln.\r\n.Punkt am Anfang\r\n"
                             + "--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>\u{e9}t\u{e9}</p>\r\n--alt--\r\n").utf8)
        let outcomes = await smtp.deliver(queued(dir, message, to: ["alice@example.test"]))
        XCTAssertEqual(outcomes.map(\.status), [.delivered], "\(outcomes)\n\(sink.log)")
        let received = try XCTUnwrap(sink.waitForTransactions(1).first)
        XCTAssertFalse(received.mailArguments.contains("BODY="), received.mailArguments)
        let expected = "From: sender@client.test\nTo: alice@example.test\nSubject: K=C3=A4se\nMessage-ID: <downgrade@client.test>\n"
            + "MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=\"alt\"\n\n"
            + "--alt\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n"
            + "Gr=C3=BC=C3=9Fe aus K=C3=B6ln.\n.Punkt am Anfang\n"
            + "--alt\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n<p>=C3=A9t=C3=A9</p>\n--alt--\n"
        XCTAssertEqual(received.message, expected)
        // The same converter, run here, gives what the peer got.
        let converted = try EightBitDowngrade.convert(message).get()
        XCTAssertEqual(String(decoding: converted, as: UTF8.self).replacingOccurrences(of: "\r\n", with: "\n"), expected)

        // An 8-bit header cannot be converted: returned with 5.6.3, nothing sent.
        let header = Array("Subject: K\u{e4}se\r\nMessage-ID: <h@client.test>\r\n\r\nx\r\n".utf8)
        let refused = await smtp.deliver(queued(dir, header, to: ["alice@example.test"]))
        XCTAssertEqual(refused.map(\.status), [.failed])
        XCTAssertEqual(refused[0].reply.enhanced, "5.6.3")
        XCTAssertEqual(sink.transactions().count, 1)
        withExtendedLifetime(fixture) {}
    }

    func testEightBitPassesAsItIsWith8BITMIMEAndDSNParametersGoAlong() async throws {
        let port = freePort()
        let sink = try SMTPSink(port: port)
        let (fixture, smtp) = try transport(port: port)
        let body = "K\u{e4}se\r\n.dot\r\n..dots\r\nbare LF line\nend"
        let message = Array("From: sender@client.test\r\nSubject: 8bit\r\nMessage-ID: <eight@client.test>\r\n\r\n\(body)".utf8)
        var item = queued(dir, message, to: ["alice@example.test", "bob@example.test"]) {
            $0.dsnReturn = "HDRS"
            $0.envelopeID = "queue id+1"
        }
        item.pending[0].notify = ["SUCCESS", "FAILURE"]
        item.pending[0].originalRecipient = "rfc822;Alice@Example.test"
        let outcomes = await smtp.deliver(item)
        XCTAssertEqual(outcomes.map(\.status), [.delivered, .delivered], "\(outcomes)")
        let received = try XCTUnwrap(sink.waitForTransactions(1).first)
        XCTAssertEqual(received.mailArguments, "<sender@client.test> BODY=8BITMIME RET=HDRS ENVID=queue+20id+2B1")
        XCTAssertEqual(received.recipientArguments, ["<alice@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Alice@Example.test",
                                                     "<bob@example.test>"])
        XCTAssertEqual(received.heloArguments, "client.test")
        // Dot-stuffing undone by the peer; every line end CRLF on the wire (LF in the dump); a
        // last line without line end gets one.
        XCTAssertEqual(received.message, "From: sender@client.test\nSubject: 8bit\nMessage-ID: <eight@client.test>\n\nK\u{e4}se\n.dot\n..dots\nbare LF line\nend\n")
        withExtendedLifetime(fixture) {}
    }

    func testRefusingGreetingMovesToTheNextMX() async throws {
        let port = freePort()
        let refusing = try SMTPSink(address: "127.0.0.2", port: port, options: ["-r", "CONNECT"])
        let good = try SMTPSink(address: "127.0.0.1", port: port)
        let (fixture, smtp) = try transport(port: port)
        let outcomes = await smtp.deliver(queued(dir, testMessage("greylisted"), to: ["someone@greylist.test"]))
        XCTAssertEqual(outcomes.map(\.status), [.delivered], "\(outcomes)")
        XCTAssertTrue(outcomes[0].reply.text.hasPrefix("host good.greylist.test[127.0.0.1]:\(port) said: 250"), outcomes[0].reply.text)
        XCTAssertEqual(good.waitForTransactions(1).count, 1)
        XCTAssertEqual(refusing.transactions().count, 0)
        withExtendedLifetime(fixture) {}
    }

    func testEveryMXDownDefersWithEveryReason() async throws {
        let port = freePort()
        let (fixture, smtp) = try transport(port: port)
        let outcomes = await smtp.deliver(queued(dir, testMessage("nowhere"), to: ["a@dead.test", "b@dead.test"]))
        XCTAssertEqual(outcomes.map(\.status), [.deferred, .deferred], "\(outcomes)")
        let reply = outcomes[0].reply
        XCTAssertEqual(reply.code, 451)
        XCTAssertEqual(reply.enhanced, "4.4.1")
        XCTAssertEqual(reply.text, "delivery to dead.test:\(port) failed on every host: connect to a.dead.test[127.0.0.2]:\(port): Connection refused; "
                       + "connect to b.dead.test[127.0.0.3]:\(port): Connection refused")
        XCTAssertEqual(outcomes[1].reply, reply)
        withExtendedLifetime(fixture) {}
    }

    func testFallbackRelayAfterEveryMXFailed() async throws {
        let port = freePort()
        let relay = try SMTPSink(port: port)
        let (fixture, smtp) = try transport(port: port, ["fallback_relay": .array([.string("[127.0.0.3]:\(port)"), .string("[127.0.0.1]:\(port)")])])
        let outcomes = await smtp.deliver(queued(dir, testMessage("fallback"), to: ["a@dead.test"]))
        XCTAssertEqual(outcomes.map(\.status), [.delivered], "\(outcomes)")
        XCTAssertTrue(outcomes[0].reply.text.hasPrefix("host 127.0.0.1[127.0.0.1]:\(port) said: 250"), outcomes[0].reply.text)
        XCTAssertEqual(relay.waitForTransactions(1).first?.recipientArguments, ["<a@dead.test>"])
        withExtendedLifetime(fixture) {}
    }

    func testNullMXNonexistentDomainAndImplicitMX() async throws {
        let port = freePort()
        let sink = try SMTPSink(port: port)
        let (fixture, smtp) = try transport(port: port)
        let null = await smtp.deliver(queued(dir, testMessage("null"), to: ["x@nullmx.test"]))
        XCTAssertEqual(null.map(\.status), [.failed])
        XCTAssertEqual(null[0].reply, MailReply(556, "5.1.10", "Domain nullmx.test does not accept mail (null MX)"))
        let missing = await smtp.deliver(queued(dir, testMessage("nx"), to: ["x@nowhere.missing.test"]))
        XCTAssertEqual(missing.map(\.status), [.failed])
        XCTAssertEqual(missing[0].reply.enhanced, "5.1.2")
        // missing.test exists without MX or address records: nothing to connect to.
        let empty = await smtp.deliver(queued(dir, testMessage("empty"), to: ["x@missing.test"]))
        XCTAssertEqual(empty.map(\.status), [.failed])
        XCTAssertEqual(empty[0].reply.enhanced, "5.4.4")
        // implicit.test has no MX but an address: that address is the exchanger (RFC 5321 §5.1).
        let implicit = await smtp.deliver(queued(dir, testMessage("implicit"), to: ["x@implicit.test"]))
        XCTAssertEqual(implicit.map(\.status), [.delivered], "\(implicit)")
        XCTAssertTrue(implicit[0].reply.text.hasPrefix("host implicit.test[127.0.0.1]:\(port) said: 250"), implicit[0].reply.text)
        XCTAssertEqual(sink.waitForTransactions(1).count, 1)
        // A DNS server that does not answer: deferred 4.4.3.
        let silent = try PluginFixture(nameserver: "127.0.0.1:\(freePort())", smtpClient: ["port": .integer(port)])
        let dnsDown = await silent.smtp.deliver(queued(dir, testMessage("dns down"), to: ["x@example.test"]))
        XCTAssertEqual(dnsDown.map(\.status), [.deferred])
        XCTAssertEqual(dnsDown[0].reply.enhanced, "4.4.3")
        withExtendedLifetime(fixture) {}
    }

    func testRecipientRefusalsSoftAndHard() async throws {
        let port = freePort()
        let soft = try SMTPSink(port: port, options: ["-r", "RCPT"])
        let (fixture, smtp) = try transport(port: port)
        let deferred = await smtp.deliver(queued(dir, testMessage("soft"), to: ["a@example.test", "b@example.test"]))
        XCTAssertEqual(deferred.map(\.status), [.deferred, .deferred], "\(deferred)")
        XCTAssertEqual(deferred[0].reply.code, 450)
        XCTAssertEqual(deferred[0].reply.enhanced, "4.3.0")
        XCTAssertTrue(deferred[0].reply.text.hasSuffix("(in reply to RCPT TO command)"), deferred[0].reply.text)
        soft.stop()
        let hard = try SMTPSink(port: port, options: ["-f", "RCPT"])
        let failed = await smtp.deliver(queued(dir, testMessage("hard"), to: ["a@example.test"]))
        XCTAssertEqual(failed.map(\.status), [.failed], "\(failed)")
        XCTAssertEqual(failed[0].reply.code, 500)
        XCTAssertEqual(hard.transactions().count, 0)
        hard.stop()
        // A refused MAIL decides every recipient.
        let mail = try SMTPSink(port: port, options: ["-f", "MAIL"])
        let sender = await smtp.deliver(queued(dir, testMessage("mail"), to: ["a@example.test", "b@example.test"]))
        XCTAssertEqual(sender.map(\.status), [.failed, .failed], "\(sender)")
        XCTAssertTrue(sender[0].reply.text.hasSuffix("(in reply to MAIL FROM command)"), sender[0].reply.text)
        mail.stop()
        withExtendedLifetime(fixture) {}
    }

    func testLostConnectionAndTimeoutsDefer() async throws {
        let port = freePort()
        // Drops the connection on the final dot, without a reply: the message may or may not
        // have been taken, so it is deferred (and sent again later), never counted delivered.
        let dropping = try SMTPSink(port: port, options: ["-q", "."])
        let (fixture, smtp) = try transport(port: port, ["command_timeout": .string("1s"), "final_timeout": .string("1s")])
        let lost = await smtp.deliver(queued(dir, testMessage("dropped"), to: ["a@example.test"]))
        XCTAssertEqual(lost.map(\.status), [.deferred], "\(lost)")
        XCTAssertEqual(lost[0].reply, MailReply(421, "4.4.2", "lost connection with mx.example.test[127.0.0.1]:\(port) while receiving the reply to end of DATA"))
        dropping.stop()
        // Stalls 3 s before answering MAIL; the command timeout is 1 s. (Without PIPELINING, so
        // MAIL's reply is the one awaited: pipelined, smtp-sink's delay lands elsewhere.)
        let slow = try SMTPSink(port: port, options: ["-p", "-W", "MAIL:3"])
        let started = Date()
        let timedOut = await smtp.deliver(queued(dir, testMessage("slow"), to: ["a@example.test"]))
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertEqual(timedOut.map(\.status), [.deferred], "\(timedOut)")
        XCTAssertEqual(timedOut[0].reply, MailReply(421, "4.4.2", "conversation timed out with mx.example.test[127.0.0.1]:\(port) while receiving the reply to MAIL FROM"))
        XCTAssertLessThan(elapsed, 2.9, "gave up at the timeout, not when the server answered")
        print("command timeout 1 s: the stalled delivery ended after \(String(format: "%.2f", elapsed)) s")
        slow.stop()
        // Before the transaction a timeout moves on to the next host (and there is none left).
        let mute = try SMTPSink(port: port, options: ["-W", "EHLO:3"])
        let early = await smtp.deliver(queued(dir, testMessage("mute"), to: ["a@example.test"]))
        XCTAssertEqual(early.map(\.status), [.deferred])
        XCTAssertEqual(early[0].reply.enhanced, "4.4.1")
        XCTAssertTrue(early[0].reply.text.hasSuffix("conversation timed out with mx.example.test[127.0.0.1]:\(port) while receiving the reply to EHLO"),
                      early[0].reply.text)
        mute.stop()
        withExtendedLifetime(fixture) {}
    }

    func testManyRecipientsPipelinedInOneTransaction() async throws {
        let port = freePort()
        let sink = try SMTPSink(port: port)
        let (fixture, smtp) = try transport(port: port)
        let recipients = (1...60).map { "user\($0)@example.test" }
        let outcomes = await smtp.deliver(queued(dir, testMessage("many"), to: recipients))
        XCTAssertEqual(outcomes.map(\.recipient), recipients)
        XCTAssertEqual(Set(outcomes.map(\.status)), [.delivered])
        let received = try XCTUnwrap(sink.waitForTransactions(1).first)
        XCTAssertEqual(received.recipientArguments, recipients.map { "<\($0)>" })
        withExtendedLifetime(fixture) {}
    }
}
