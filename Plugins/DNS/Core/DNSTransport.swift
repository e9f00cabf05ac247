import PluginAPI

// One query to one server over UDP or TCP (RFC 1035 §4.2), on the worker's event loops. Each
// UDP query gets its own connected socket, so its source port is fresh and random (RFC 5452 §9.2)
// and the kernel drops datagrams from any other address; replies whose ID or question do not
// match the query are ignored. Everything finishes within the timeout given.

/// Why an exchange with one server gave no message.
enum DNSTransportError: Error, CustomStringConvertible {
    case timeout(seconds: Double, ignored: Int)
    case connection(String)
    case malformed(DNSWireError)
    case closedEarly

    var description: String {
        switch self {
        case .timeout(let seconds, let ignored):
            return "no answer within \(seconds)s" + (ignored > 0 ? " (\(ignored) unrelated or malformed replies ignored)" : "")
        case .connection(let why): return why
        case .malformed(let error): return "malformed answer: \(error)"
        case .closedEarly: return "the server closed the connection before answering"
        }
    }
}

struct DNSTransport: Sendable {
    let group: any EventLoopGroup

    /// Sends `query` by UDP and waits for the datagram that answers it.
    func udp(_ query: DNSMessage, to server: SocketAddress, timeout: TimeAmount) async throws -> DNSMessage {
        let loop = group.next()
        let reply = loop.makePromise(of: DNSMessage.self)
        let ignored = NIOLockedValueBox(0)
        let bootstrap = DatagramBootstrap(group: loop).channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(
                    UDPReplyHandler(query: query, server: server, reply: reply, ignored: ignored))
            }
        }
        return try await exchange(reply: reply, timeout: timeout, ignored: ignored) { bootstrap.connect(to: server) }
    }

    /// Sends `query` over a new TCP connection with the two-octet length prefix and reads one
    /// answer (used when the UDP answer was truncated).
    func tcp(_ query: DNSMessage, to server: SocketAddress, timeout: TimeAmount) async throws -> DNSMessage {
        let loop = group.next()
        let reply = loop.makePromise(of: DNSMessage.self)
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(TCPReplyHandler(query: query, reply: reply))
                }
            }
        return try await exchange(reply: reply, timeout: timeout, ignored: nil) { bootstrap.connect(to: server) }
    }

    /// Connects, then waits for `reply` or the timeout, and closes the channel either way. The
    /// promise may be completed by the handler, the timer or a failed connect: the first wins.
    private func exchange(reply: EventLoopPromise<DNSMessage>, timeout: TimeAmount, ignored: NIOLockedValueBox<Int>?,
                          connect: () -> EventLoopFuture<any Channel>) async throws -> DNSMessage {
        let seconds = Double(timeout.nanoseconds) / 1e9
        let timer = reply.futureResult.eventLoop.scheduleTask(in: timeout) {
            reply.fail(DNSTransportError.timeout(seconds: seconds, ignored: ignored?.withLockedValue { $0 } ?? 0))
        }
        let connected = connect()
        connected.whenFailure { reply.fail(DNSTransportError.connection("\($0)")) }
        defer {
            timer.cancel()
            connected.whenSuccess { $0.close(promise: nil) }
        }
        return try await reply.futureResult.get()
    }
}

/// Writes the query once the socket is connected and completes `reply` with the first datagram
/// that answers it; unrelated or malformed datagrams are counted and ignored, so a forged reply
/// cannot end the wait early.
private final class UDPReplyHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    let query: DNSMessage
    let server: SocketAddress
    let reply: EventLoopPromise<DNSMessage>
    /// Read by the timer, to say in the timeout error that forged or broken replies arrived.
    let ignored: NIOLockedValueBox<Int>

    init(query: DNSMessage, server: SocketAddress, reply: EventLoopPromise<DNSMessage>, ignored: NIOLockedValueBox<Int>) {
        self.query = query
        self.server = server
        self.reply = reply
        self.ignored = ignored
    }

    func channelActive(context: ChannelHandlerContext) {
        let buffer = context.channel.allocator.buffer(bytes: DNSWire.encode(query))
        let write = context.writeAndFlush(wrapOutboundOut(AddressedEnvelope(remoteAddress: server, data: buffer)))
        let reply = self.reply
        write.whenFailure { reply.fail(DNSTransportError.connection("send failed: \($0)")) }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        if let message = try? DNSWire.decode(Array(envelope.data.readableBytesView)), message.isResponse(to: query) {
            reply.succeed(message)
        } else {
            ignored.withLockedValue { $0 += 1 }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // On a connected UDP socket an ICMP port unreachable comes back as ECONNREFUSED: nothing
        // listens there, so there is no point waiting for the timeout.
        reply.fail(DNSTransportError.connection("\(error)"))
    }
}

/// Writes the length-prefixed query and reassembles the length-prefixed answer. A TCP answer
/// that does not parse or does not match fails the exchange: on a connection of our own it
/// cannot be a forgery from elsewhere, only a broken server.
private final class TCPReplyHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let query: DNSMessage
    let reply: EventLoopPromise<DNSMessage>
    var received: ByteBuffer?

    init(query: DNSMessage, reply: EventLoopPromise<DNSMessage>) {
        self.query = query
        self.reply = reply
    }

    func channelActive(context: ChannelHandlerContext) {
        let bytes = DNSWire.encode(query)
        var buffer = context.channel.allocator.buffer(capacity: bytes.count + 2)
        buffer.writeInteger(UInt16(bytes.count))
        buffer.writeBytes(bytes)
        let reply = self.reply
        context.writeAndFlush(wrapOutboundOut(buffer)).whenFailure { reply.fail(DNSTransportError.connection("send failed: \($0)")) }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = unwrapInboundIn(data)
        if received == nil { received = chunk } else { received!.writeBuffer(&chunk) }
        guard var buffer = received, let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
              buffer.readableBytes >= 2 + Int(length)
        else { return }
        buffer.moveReaderIndex(forwardBy: 2)
        let bytes = Array(buffer.readableBytesView.prefix(Int(length)))
        do {
            let message = try DNSWire.decode(bytes)
            if message.isResponse(to: query) {
                reply.succeed(message)
            } else {
                reply.fail(DNSTransportError.connection("the TCP answer does not match the query (ID or question)"))
            }
        } catch let error as DNSWireError {
            reply.fail(DNSTransportError.malformed(error))
        } catch {
            reply.fail(error)
        }
        context.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        reply.fail(DNSTransportError.connection("\(error)"))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        reply.fail(DNSTransportError.closedEarly)
        context.fireChannelInactive()
    }
}
