import Foundation
import PluginAPI

// One connection to one milter: NIO moves the bytes, MilterConversation decides what they mean.
// A step's answer is awaited under the milter's own timeout, which PROGRESS restarts (and which
// restarts the filter chain's deadline too, so a milter that says it is working is not cut off).

/// Where a milter listens: `inet:HOST:PORT` / `HOST:PORT` / `inet6:[ADDR]:PORT`, or `unix:PATH` / `/PATH`.
enum MilterAddress: Sendable, Equatable, CustomStringConvertible {
    case tcp(host: String, port: Int)
    case unix(path: String)

    init?(_ text: String) {
        var s = text
        for prefix in ["unix:", "local:"] where s.hasPrefix(prefix) {
            self = .unix(path: String(s.dropFirst(prefix.count)))
            return
        }
        if s.hasPrefix("/") {
            self = .unix(path: s)
            return
        }
        for prefix in ["inet:", "inet6:"] where s.hasPrefix(prefix) { s = String(s.dropFirst(prefix.count)) }
        // Sendmail's own form is PORT@HOST.
        if let at = s.firstIndex(of: "@"), let port = Int(s[..<at]) {
            self = .tcp(host: String(s[s.index(after: at)...]), port: port)
            return
        }
        guard let colon = s.lastIndex(of: ":"), let port = Int(s[s.index(after: colon)...]), (1...65535).contains(port) else { return nil }
        var host = String(s[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        self = .tcp(host: host, port: port)
    }

    var description: String {
        switch self {
        case .tcp(let host, let port): return "inet:\(host):\(port)"
        case .unix(let path): return "unix:\(path)"
        }
    }
}

enum MilterLinkError: Error, CustomStringConvertible {
    case closed
    case timedOut(String)

    var description: String {
        switch self {
        case .closed: return "the milter closed the connection"
        case .timedOut(let step): return "no answer from the milter at \(step)"
        }
    }
}

// @unchecked Sendable: `conversation` and `iterator` are used by one stage at a time (the filter
// chain awaits each stage of a session before the next); `channel` is let
final class MilterLink: @unchecked Sendable {
    private let channel: any Channel
    private var iterator: AsyncStream<[UInt8]>.AsyncIterator
    private var conversation = MilterConversation()
    private let timeout: Double

    private init(channel: any Channel, stream: AsyncStream<[UInt8]>, timeout: Double) {
        self.channel = channel
        iterator = stream.makeAsyncIterator()
        self.timeout = timeout
    }

    /// Connects (within `connectTimeout`) and negotiates options (within `timeout`).
    static func open(_ address: MilterAddress, group: any EventLoopGroup, connectTimeout: Double, timeout: Double) async throws -> MilterLink {
        let (stream, continuation) = AsyncStream<[UInt8]>.makeStream()
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(.milliseconds(Int64(connectTimeout * 1000)))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteStreamInboundHandler(continuation))
                }
            }
        let channel: any Channel
        switch address {
        case .tcp(let host, let port): channel = try await bootstrap.connect(host: host, port: port).get()
        case .unix(let path): channel = try await bootstrap.connect(unixDomainSocketPath: path).get()
        }
        let link = MilterLink(channel: channel, stream: stream, timeout: timeout)
        do {
            try await link.write(link.conversation.negotiate())
            guard try await link.awaitEvent("negotiation") == .negotiated else { throw MilterLinkError.closed }
        } catch {
            link.close()
            throw error
        }
        return link
    }

    var negotiatedActions: MilterActions { conversation.actions }
    var negotiatedFlags: MilterProtocolFlags { conversation.flags }
    var bodySkipped: Bool { conversation.bodySkipped }

    /// Sends a step; returns the milter's answer, or nil when the milter does not answer this step.
    func step(_ step: MilterStep, macros: [(name: String, value: String)] = []) async throws -> MilterAnswer? {
        let (bytes, awaits) = conversation.send(step, macros: macros)
        if !bytes.isEmpty { try await write(bytes) }
        guard awaits else { return nil }
        guard case .answer(let answer) = try await awaitEvent(step.name) else { throw MilterLinkError.closed }
        return answer
    }

    func close() {
        channel.close(promise: nil)
    }

    private func write(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes)).get()
    }

    /// Reads until the conversation reports negotiation or an answer. PROGRESS restarts both this
    /// link's timeout and the chain's deadline for the stage.
    private func awaitEvent(_ step: String) async throws -> MilterEvent {
        let outer = FilterStageClock.current
        while true {
            let next = await withFilterDeadline(timeout) { [self] in await self.readEvents() }
            guard let next else {
                close()
                throw MilterLinkError.timedOut(step)
            }
            let events = try next.get()
            for e in events where e != .progress { return e }
            outer?.progress()
        }
    }

    /// The next events: reads until at least one arrives. Runs in the deadline's task, which is the
    /// only reader while the stage waits.
    private func readEvents() async -> Result<[MilterEvent], any Error> {
        while true {
            guard let bytes = await iterator.next() else { return .failure(MilterLinkError.closed) }
            do {
                // Progress is reported at once so that it restarts the timeout it arrived within.
                var events = try conversation.receive(bytes)
                if let p = events.firstIndex(of: .progress), events.count > 1 { events.remove(at: p) }
                if !events.isEmpty { return .success(events) }
            } catch {
                return .failure(error)
            }
        }
    }
}
