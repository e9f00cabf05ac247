import Foundation

/// One HTTP/1.1 request and its answer, over a new connection (plain or through an
/// `NIOSSLContext`, which may carry a client certificate), with one deadline for connecting,
/// sending and reading, and a cap on the body read. For plugins that call a small HTTP API now and
/// then (token introspection, another node's admin API): no pooling, `Connection: close`.
public struct HTTPExchange: Sendable {
    public struct Answer: Sendable {
        public var status: Int
        public var headers: HTTPHeaders
        public var body: [UInt8]
    }

    public enum Failure: Error, CustomStringConvertible, Equatable {
        /// Nothing answered within the deadline.
        case timeout
        /// Could not connect, TLS failed, or the connection broke before a whole answer.
        case transport(String)
        /// The answer's body is longer than the cap.
        case tooLarge(Int)

        public var description: String {
            switch self {
            case .timeout: return "no answer in time"
            case .transport(let why): return why
            case .tooLarge(let cap): return "answer longer than \(cap) bytes"
            }
        }
    }

    public var host: String
    public var port: Int
    /// TLS when set; the server's name for SNI and certificate checks is `host`.
    public var tls: NIOSSLContext?
    public var timeout: TimeAmount
    public var maximumBody: Int

    public init(host: String, port: Int, tls: NIOSSLContext?, timeout: TimeAmount, maximumBody: Int = 64 * 1024) {
        self.host = host
        self.port = port
        self.tls = tls
        self.timeout = timeout
        self.maximumBody = maximumBody
    }

    /// Sends `method target` with `headers` (Host, Content-Length and Connection are added) and
    /// `body`, and returns the answer whatever its status.
    public func perform(on group: any EventLoopGroup, method: HTTPMethod, target: String, headers: HTTPHeaders = [:],
                        body: [UInt8] = []) async throws -> Answer {
        let loop = group.next()
        let promise = loop.makePromise(of: Answer.self)
        let tls = self.tls, host = self.host, cap = maximumBody
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        // An IP address is no SNI name; NIOSSL then checks it against the certificate's IP entries.
                        let name = host.contains(":") || host.allSatisfy({ $0.isNumber || $0 == "." }) ? nil : host
                        try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: name))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(AnswerCollector(promise: promise, maximumBody: cap))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: host, port: port).get()
        } catch {
            promise.fail(error)
            // NIO lists every address it tried; the last one's reason is the one to show.
            let why = (error as? NIOConnectionError)?.connectionErrors.last.map { "\($0.error)" } ?? "\(error)"
            throw Failure.transport("cannot connect to \(host):\(port): \(why)")
        }
        let deadline = loop.scheduleTask(in: timeout) {
            promise.fail(Failure.timeout)
            channel.close(promise: nil)
        }
        defer {
            deadline.cancel()
            channel.close(promise: nil)
        }
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: target)
        head.headers = headers
        head.headers.replaceOrAdd(name: "Host", value: host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)")
        head.headers.replaceOrAdd(name: "Content-Length", value: "\(body.count)")
        head.headers.replaceOrAdd(name: "Connection", value: "close")
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if !body.isEmpty { channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil) }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        return try await promise.futureResult.get()
    }
}

/// Collects one answer (head and body up to the cap) into a promise.
// @unchecked Sendable: used on its channel's event loop only
private final class AnswerCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart

    let promise: EventLoopPromise<HTTPExchange.Answer>
    let maximumBody: Int
    private var head: HTTPResponseHead?
    private var body: [UInt8] = []

    init(promise: EventLoopPromise<HTTPExchange.Answer>, maximumBody: Int) {
        self.promise = promise
        self.maximumBody = maximumBody
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
        case .body(var buffer):
            guard body.count + buffer.readableBytes <= maximumBody else {
                promise.fail(HTTPExchange.Failure.tooLarge(maximumBody))
                context.close(promise: nil)
                return
            }
            body += buffer.readBytes(length: buffer.readableBytes) ?? []
        case .end:
            if let head {
                promise.succeed(HTTPExchange.Answer(status: Int(head.status.code), headers: head.headers, body: body))
            } else {
                promise.fail(HTTPExchange.Failure.transport("the connection ended before an answer"))
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(HTTPExchange.Failure.transport("\(error)"))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(HTTPExchange.Failure.transport("the connection closed before the whole answer"))
    }
}
