import Foundation
import PluginAPI
import PosternTestSupport
import XCTest
@testable import PosternDNSCore

/// The built plugin against a scripted UDP server that answers each query with whatever
/// datagrams a test wants: forged IDs, wrong questions, garbage. The resolver must ignore every
/// datagram that is not the answer to its query (RFC 5452) and keep waiting for the real one.
final class SpoofingTests: XCTestCase {
    /// Answers each query with the datagrams `script` makes from it, in order; records the queries.
    final class ScriptedServer: @unchecked Sendable {
        let channel: any Channel
        private let received = NIOLockedValueBox<[DNSMessage]>([])

        var port: Int { channel.localAddress!.port! }
        var address: String { "127.0.0.1:\(port)" }
        var queries: [DNSMessage] { received.withLockedValue { $0 } }

        init(script: @escaping @Sendable (DNSMessage) -> [[UInt8]]) throws {
            let received = self.received
            channel = try DatagramBootstrap(group: DNSPluginFile.group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(Handler(script: script, received: received))
                    }
                }
                .bind(host: "127.0.0.1", port: 0).wait()
        }

        deinit { try? channel.close().wait() }

        final class Handler: ChannelInboundHandler {
            typealias InboundIn = AddressedEnvelope<ByteBuffer>
            typealias OutboundOut = AddressedEnvelope<ByteBuffer>
            let script: (DNSMessage) -> [[UInt8]]
            let received: NIOLockedValueBox<[DNSMessage]>

            init(script: @escaping (DNSMessage) -> [[UInt8]], received: NIOLockedValueBox<[DNSMessage]>) {
                self.script = script
                self.received = received
            }

            func channelRead(context: ChannelHandlerContext, data: NIOAny) {
                let envelope = unwrapInboundIn(data)
                guard let query = try? DNSWire.decode(Array(envelope.data.readableBytesView)) else { return }
                received.withLockedValue { $0.append(query) }
                for datagram in script(query) {
                    let buffer = context.channel.allocator.buffer(bytes: datagram)
                    context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: buffer)), promise: nil)
                }
                context.flush()
            }
        }
    }

    /// The genuine answer to `query`: one A record 192.0.2.99.
    static func genuine(_ query: DNSMessage) -> DNSMessage {
        var reply = DNSMessage(header: query.header, questions: query.questions)
        reply.header.isResponse = true
        reply.header.recursionAvailable = true
        if query.questions.first?.type == .a {
            reply.answers = [DNSResourceRecord(name: query.questions[0].name, type: .a, ttl: 60, data: .a([192, 0, 2, 99]))]
        }
        return reply
    }

    func testForgedRepliesAreIgnored() async throws {
        let server = try ScriptedServer { query in
            let real = Self.genuine(query)
            var wrongID = real
            wrongID.header.id &+= 1
            wrongID.answers = [DNSResourceRecord(name: real.questions[0].name, type: .a, ttl: 60, data: .a([6, 6, 6, 6]))]
            var wrongName = wrongID
            wrongName.header.id = real.header.id
            wrongName.questions[0].name = dnsName("elsewhere.test")
            var wrongType = wrongID
            wrongType.header.id = real.header.id
            wrongType.questions[0].type = .mx
            var notAReply = wrongID
            notAReply.header.id = real.header.id
            notAReply.header.isResponse = false
            return [DNSWire.encode(wrongID), DNSWire.encode(wrongName), DNSWire.encode(wrongType), DNSWire.encode(notAReply),
                    hex("ffff"), Array(DNSWire.encode(real).prefix(20)), DNSWire.encode(real)]
        }
        let resolver = try DNSPluginFile.resolver(DNSPluginFile.config(nameservers: [server.address], timeout: "2s", attempts: 1))
        let addresses = try await resolver.addresses("host.spoof.test")
        XCTAssertEqual(addresses, ["192.0.2.99"], "only the datagram matching ID and question counts")
    }

    func testOnlyForgeriesTimeOut() async throws {
        let server = try ScriptedServer { query in
            var forged = Self.genuine(query)
            forged.header.id &+= 1
            return [DNSWire.encode(forged), hex("00"), DNSWire.encode(forged)]
        }
        let resolver = try DNSPluginFile.resolver(DNSPluginFile.config(nameservers: [server.address], timeout: "300ms", attempts: 1))
        let error = await thrownError { try await resolver.txt("host.spoof.test") }
        guard case .temporary(let why)? = error as? DNSError else { return XCTFail("expected temporary, got \(String(describing: error))") }
        XCTAssertTrue(why.contains("no answer within 0.3s (3 unrelated or malformed replies ignored)"), why)
    }

    func testQueriesCarryRandomIDsRDAndEDNS0() async throws {
        let server = try ScriptedServer { [Self.genuine($0)].map(DNSWire.encode) }
        let resolver = try DNSPluginFile.resolver(DNSPluginFile.config(nameservers: [server.address], cacheEntries: 0))
        for _ in 0..<30 { _ = try await resolver.addresses("host.spoof.test") }
        let queries = server.queries
        XCTAssertEqual(queries.count, 60)
        XCTAssertGreaterThan(Set(queries.map(\.header.id)).count, 50, "IDs are random, not a sequence")
        for query in queries {
            XCTAssertTrue(query.header.recursionDesired)
            XCTAssertEqual(query.questions.count, 1)
            XCTAssertEqual(query.opt?.recordClass, 1232, "EDNS0 with a 1232-octet UDP payload")
        }
    }

    func testServerFailureMovesToTheNextServer() async throws {
        let failing = try ScriptedServer { query in
            var reply = Self.genuine(query)
            reply.answers = []
            reply.header.rcode = 2
            return [DNSWire.encode(reply)]
        }
        let working = try ScriptedServer { [Self.genuine($0)].map(DNSWire.encode) }
        let resolver = try DNSPluginFile.resolver(DNSPluginFile.config(nameservers: [failing.address, working.address], attempts: 2))
        let addresses = try await resolver.addresses("host.spoof.test")
        XCTAssertEqual(addresses, ["192.0.2.99"])
        XCTAssertEqual(failing.queries.count, 2, "A and AAAA, each first to the failing server")
        XCTAssertEqual(working.queries.count, 2)
    }
}
