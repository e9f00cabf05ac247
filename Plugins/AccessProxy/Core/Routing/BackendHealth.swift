import Foundation
import PluginAPI

/// Which back ends answer, as this worker last saw them: a failed connection or probe marks one
/// down; a success marks it up. Logins skip a back end marked down for another of its group, and
/// answer `[UNAVAILABLE]` at once when every candidate is down, trying one again only after
/// `retryAfter` (so a store that comes back is found by the next login, not only by the probe).
/// Pure apart from its lock: times are given.
// @unchecked Sendable: `states` is only read and written under `lock`
final class BackendHealth: @unchecked Sendable {
    struct State: Equatable {
        /// When it was first seen down in this spell; nil while up.
        var downSince: Double?
        /// The last connection tried to it while down.
        var lastTry: Double = 0
    }

    let retryAfter: Double
    private let lock = NSLock()
    private var states: [String: State] = [:]

    init(retryAfter: Double) { self.retryAfter = retryAfter }

    func failed(_ backend: String, at now: Double) {
        lock.withLock {
            var s = states[backend, default: State()]
            if s.downSince == nil { s.downSince = now }
            s.lastTry = now
            states[backend] = s
        }
    }

    func succeeded(_ backend: String) {
        lock.withLock { states[backend] = State() }
    }

    func isDown(_ backend: String) -> Bool { lock.withLock { states[backend]?.downSince != nil } }

    /// The candidates a login tries, in order: those up, then (when every one is down) the first
    /// whose last try is `retryAfter` old, marked as tried now; none when all were tried lately.
    func order(_ candidates: [Backend], at now: Double) -> [Backend] {
        lock.withLock {
            let up = candidates.filter { states[$0.name]?.downSince == nil }
            if !up.isEmpty { return up + candidates.filter { states[$0.name]?.downSince != nil } }
            guard let due = candidates.first(where: { now - (states[$0.name]?.lastTry ?? 0) >= retryAfter }) else { return [] }
            states[due.name]?.lastTry = now
            return [due]
        }
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
                    health.failed(backend.name, at: Date().timeIntervalSince1970)
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
