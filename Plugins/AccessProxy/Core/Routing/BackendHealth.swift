import Foundation
import PluginAPI

/// Which back ends answer, as this worker last saw them: a failed connection or probe marks one
/// down; a success marks it up. A login tries the candidates up first, so a node of a group that
/// is down (or, worse, silent until the connect timeout) costs nobody a wait while another node
/// serves; the ones down are still tried after them, so a store that came back is found by the
/// next login, not only by the next probe. Pure apart from its lock.
// @unchecked Sendable: `down` is only read and written under `lock`
final class BackendHealth: @unchecked Sendable {
    private let lock = NSLock()
    private var down: Set<String> = []

    func failed(_ backend: String) { _ = lock.withLock { down.insert(backend) } }

    func succeeded(_ backend: String) { _ = lock.withLock { down.remove(backend) } }

    func isDown(_ backend: String) -> Bool { lock.withLock { down.contains(backend) } }

    /// The candidates in the order a login tries them: those up, then those down (each group
    /// in its given order).
    func order(_ candidates: [Backend]) -> [Backend] {
        lock.withLock { candidates.filter { !down.contains($0.name) } + candidates.filter { down.contains($0.name) } }
    }
}

/// Probes every back end's IMAP port now and then (connects, expects `* OK` or `* PREAUTH`
/// within the connect timeout) and tells `BackendHealth`.
struct BackendProbe: Sendable {
    let backends: [Backend]
    let health: BackendHealth
    let group: any EventLoopGroup
    let timeout: Double
    let logger: Logger

    func run(every interval: Double) async {
        while !Task.isCancelled {
            for backend in backends {
                let wasDown = health.isDown(backend.name)
                if await answers(backend) {
                    health.succeeded(backend.name)
                    if wasDown { logger.notice("back end up again", metadata: ["backend": "\(backend.name)"]) }
                } else {
                    health.failed(backend.name)
                    if !wasDown { logger.warning("back end down", metadata: ["backend": "\(backend.name)"]) }
                }
            }
            try? await Task.sleep(nanoseconds: UInt64(interval * 1_000_000_000))
        }
    }

    /// A TCP connection and the greeting's first bytes (over TLS for implicit-TLS back ends the
    /// connection alone counts: the handshake needs the login path's context).
    func answers(_ backend: Backend) async -> Bool {
        let loop = group.next()
        let greeting = loop.makePromise(of: Bool.self)
        do {
            let channel = try await ClientBootstrap(group: loop)
                .connectTimeout(.milliseconds(Int64(timeout * 1000)))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(GreetingReader(promise: greeting))
                    }
                }
                .connect(host: backend.host, port: backend.port).get()
            if backend.tls == .implicit {
                greeting.succeed(true)
                channel.close(promise: nil)
                return true
            }
            let deadline = loop.scheduleTask(in: .milliseconds(Int64(timeout * 1000))) { greeting.succeed(false) }
            let answered = (try? await greeting.futureResult.get()) ?? false
            deadline.cancel()
            channel.close(promise: nil)
            return answered
        } catch {
            greeting.succeed(false)
            return false
        }
    }

    /// True once the first bytes read are an IMAP greeting.
    final class GreetingReader: ChannelInboundHandler, @unchecked Sendable {   // used on its channel's loop only
        typealias InboundIn = ByteBuffer
        let promise: EventLoopPromise<Bool>
        init(promise: EventLoopPromise<Bool>) { self.promise = promise }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let bytes = unwrapInboundIn(data)
            let text = bytes.getString(at: bytes.readerIndex, length: min(bytes.readableBytes, 12)) ?? ""
            promise.succeed(text.hasPrefix("* OK") || text.hasPrefix("* PREAUTH"))
        }

        func channelInactive(context: ChannelHandlerContext) { promise.succeed(false) }
    }
}
