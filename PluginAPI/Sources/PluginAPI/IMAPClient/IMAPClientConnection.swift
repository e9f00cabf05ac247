// An IMAP client: the webmail's, and `postern admin user move`'s. It lives in PluginAPI, not in a
// plugin, because a plugin's core is linked into that plugin alone (like the SMTP client beside it).

/// The IMAP server a client connects to: any IMAP server (this node's imap listener, the access
/// proxy, or another product's server), reached as a remote client would.
public struct IMAPEndpoint: Sendable, Equatable {
    public enum Security: String, Sendable { case none, tls, starttls }
    public var host: String
    public var port: Int
    public var security: Security
    /// Check the server's certificate (off only for a self-signed certificate on loopback).
    public var verifyCertificate: Bool
    public var connectTimeout: Double = 10
    public var commandTimeout: Double = 60

    public init(host: String, port: Int, security: Security, verifyCertificate: Bool,
                connectTimeout: Double = 10, commandTimeout: Double = 60) {
        self.host = host
        self.port = port
        self.security = security
        self.verifyCertificate = verifyCertificate
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
    }
}

public enum IMAPClientError: Error, CustomStringConvertible {
    case connectionClosed
    case timeout(String)
    /// The server answered NO or BAD: its text is for the user.
    case refused(IMAPServerResponse.Status, code: String?, text: String)
    case protocolError(String)

    public var description: String {
        switch self {
        case .connectionClosed: return "the IMAP server closed the connection"
        case .timeout(let what): return "the IMAP server did not answer \(what) in time"
        case .refused(let status, let code, let text): return "IMAP \(status.rawValue)\(code.map { " [\($0)]" } ?? ""): \(text)"
        case .protocolError(let why): return "IMAP protocol error: \(why)"
        }
    }
}

/// A piece of a command: text as is, or a string sent as a literal (the server's LITERAL+ lets
/// it go without waiting for `+`).
public enum IMAPCommandPart: Sendable {
    case text(String)
    case literal([UInt8])
}

/// The answer to one command: the untagged data it caused, and its tagged status.
public struct IMAPCommandResult: Sendable {
    public var data: [IMAPServerResponse]
    public var code: String?
    public var text: String
}

/// One client connection to an IMAP server, one command at a time (the actor serialises them).
public actor IMAPClientConnection {
    private let channel: any Channel
    private let responses: ResponseIterator
    private let endpoint: IMAPEndpoint
    private var nextTag = 1
    public private(set) var capabilities: Set<String> = []
    public private(set) var isClosed = false

    private init(channel: any Channel, responses: AsyncThrowingStream<IMAPServerResponse, any Error>, endpoint: IMAPEndpoint) {
        self.channel = channel
        self.responses = ResponseIterator(responses.makeAsyncIterator())
        self.endpoint = endpoint
    }

    /// Connects, reads the greeting, and upgrades with STARTTLS when the endpoint asks for it.
    public static func connect(to endpoint: IMAPEndpoint, group: any EventLoopGroup) async throws -> IMAPClientConnection {
        let (stream, continuation) = AsyncThrowingStream<IMAPServerResponse, any Error>.makeStream()
        let tls = endpoint.security == .tls ? try makeTLSContext(endpoint) : nil
        let channel = try await ClientBootstrap(group: group)
            .connectTimeout(.milliseconds(Int64(endpoint.connectTimeout * 1000)))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: tls, serverHostname: endpoint.verifyCertificate ? endpoint.host : nil))
                    }
                    try channel.pipeline.syncOperations.addHandler(IMAPClientHandler(continuation: continuation))
                }
            }
            .connect(host: endpoint.host, port: endpoint.port).get()
        let connection = IMAPClientConnection(channel: channel, responses: stream, endpoint: endpoint)
        do {
            try await connection.readGreeting()
            if endpoint.security == .starttls { try await connection.startTLS() }
            if await connection.capabilities.isEmpty { _ = try await connection.run([.text("CAPABILITY")]) }
        } catch {
            await connection.close()
            throw error
        }
        return connection
    }

    private static func makeTLSContext(_ endpoint: IMAPEndpoint) throws -> NIOSSLContext {
        var config = TLSConfiguration.makeClientConfiguration()
        if !endpoint.verifyCertificate { config.certificateVerification = .none }
        return try NIOSSLContext(configuration: config)
    }

    private func readGreeting() async throws {
        let greeting = try await nextResponse("the greeting")
        switch greeting {
        case .untaggedStatus(.ok, let code, _), .untaggedStatus(.preauth, let code, _):
            noteCapabilities(code)
        case .untaggedStatus(.bye, _, let text):
            throw IMAPClientError.refused(.bye, code: nil, text: text)
        default:
            throw IMAPClientError.protocolError("unexpected greeting")
        }
    }

    private func startTLS() async throws {
        _ = try await run([.text("STARTTLS")])
        let context = try Self.makeTLSContext(endpoint)
        let channel = self.channel, hostname = endpoint.verifyCertificate ? endpoint.host : nil
        try await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: hostname), position: .first)
        }.get()
        // What the server said before TLS may have been forged (RFC 3501 §6.2.1): ask again.
        capabilities = []
    }

    private func noteCapabilities(_ code: String?) {
        guard let code, code.uppercased().hasPrefix("CAPABILITY ") else { return }
        capabilities = Set(code.dropFirst("CAPABILITY ".count).split(separator: " ").map { $0.uppercased() })
    }

    private func nextResponse(_ what: String) async throws -> IMAPServerResponse {
        let timeout = endpoint.commandTimeout
        let channel = self.channel
        let timer = channel.eventLoop.scheduleTask(in: .milliseconds(Int64(timeout * 1000))) {
            channel.close(promise: nil)
        }
        defer { timer.cancel() }
        do {
            guard let response = try await responses.next() else {
                isClosed = true
                throw IMAPClientError.connectionClosed
            }
            return response
        } catch let error as IMAPClientError {
            throw error
        } catch {
            isClosed = true
            throw error
        }
    }

    /// Runs one command and returns its data; NO and BAD throw `.refused`.
    @discardableResult
    public func run(_ parts: [IMAPCommandPart]) async throws -> IMAPCommandResult {
        guard !isClosed else { throw IMAPClientError.connectionClosed }
        let tag = "W\(nextTag)"
        nextTag += 1
        let literalPlus = capabilities.contains("LITERAL+")
        var buffer = ByteBuffer(string: tag + " ")
        var collected: [IMAPServerResponse] = []
        for part in parts {
            switch part {
            case .text(let text):
                buffer.writeString(text)
            case .literal(let bytes):
                if literalPlus {
                    buffer.writeString("{\(bytes.count)+}\r\n")
                    buffer.writeBytes(bytes)
                } else {
                    buffer.writeString("{\(bytes.count)}\r\n")
                    try await channel.writeAndFlush(buffer)
                    buffer = ByteBuffer()
                    // Untagged data may come before the go-ahead; keep it for the result.
                    waiting: while true {
                        let response = try await nextResponse("a literal")
                        switch response {
                        case .continuation: break waiting
                        case .tagged(_, let status, let code, let text): throw IMAPClientError.refused(status, code: code, text: text)
                        default: collected.append(response)
                        }
                    }
                    buffer.writeBytes(bytes)
                }
            }
        }
        buffer.writeString("\r\n")
        try await channel.writeAndFlush(buffer)
        while true {
            let response = try await nextResponse(tag)
            switch response {
            case .tagged(let t, let status, let code, let text) where t == tag:
                noteCapabilities(code)
                guard status == .ok else { throw IMAPClientError.refused(status, code: code, text: text) }
                return IMAPCommandResult(data: collected, code: code, text: text)
            case .data(_, "CAPABILITY", let values):
                capabilities = Set(values.compactMap { $0.text?.uppercased() })
                collected.append(response)
            case .untaggedStatus(.bye, _, _):
                isClosed = true
                collected.append(response)
            default:
                collected.append(response)
            }
        }
    }

    /// Sends LOGOUT (best effort) and closes.
    public func close() async {
        if !isClosed {
            isClosed = true
            let tag = "W\(nextTag)"
            try? await channel.writeAndFlush(ByteBuffer(string: "\(tag) LOGOUT\r\n"))
        }
        try? await channel.close()
    }
}

/// The stream's iterator, advanced from the actor (an actor cannot call a mutating async method
/// on its own stored property).
// @unchecked Sendable: only the owning IMAPClientConnection calls next(), one command at a time
private final class ResponseIterator: @unchecked Sendable {
    private var iterator: AsyncThrowingStream<IMAPServerResponse, any Error>.AsyncIterator
    init(_ iterator: AsyncThrowingStream<IMAPServerResponse, any Error>.AsyncIterator) { self.iterator = iterator }
    func next() async throws -> IMAPServerResponse? { try await iterator.next() }
}

/// Frames and parses what the server sends and hands whole responses to the connection.
private final class IMAPClientHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    private let continuation: AsyncThrowingStream<IMAPServerResponse, any Error>.Continuation
    // Only the channel's event loop touches it; the lock (never contended) makes that Sendable.
    private let state = NIOLockedValueBox(IMAPResponseFramer())

    init(continuation: AsyncThrowingStream<IMAPServerResponse, any Error>.Continuation) {
        self.continuation = continuation
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        do {
            let frames = try state.withLockedValue { try $0.feed(buffer.readableBytesView) }
            for frame in frames { continuation.yield(try IMAPResponseParser.parse(frame)) }
        } catch {
            continuation.finish(throwing: IMAPClientError.protocolError("\(error)"))
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        continuation.finish()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        continuation.finish(throwing: error)
        context.close(promise: nil)
    }
}
