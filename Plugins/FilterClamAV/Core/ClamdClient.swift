import Foundation
import PluginAPI

// One INSTREAM scan over one connection to clamd: NIO moves the bytes (as the milter plugin's
// MilterLink does), ClamdProtocol.swift says what they mean.

/// Where clamd listens: `unix:/PATH` (or `/PATH`), `inet:HOST:PORT` (or `HOST:PORT`, `[ADDR]:PORT`).
enum ClamdAddress: Sendable, Equatable, CustomStringConvertible {
    case tcp(host: String, port: Int)
    case unix(path: String)

    init?(_ text: String) {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            guard path.hasPrefix("/") else { return nil }
            self = .unix(path: path)
            return
        }
        if text.hasPrefix("/") {
            self = .unix(path: text)
            return
        }
        var s = Substring(text)
        for prefix in ["inet:", "inet6:", "tcp:"] where s.hasPrefix(prefix) { s = s.dropFirst(prefix.count) }
        guard let colon = s.lastIndex(of: ":"), let port = Int(s[s.index(after: colon)...]), (1...65535).contains(port) else { return nil }
        var host = s[..<colon]
        if host.hasPrefix("[") && host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        guard !host.isEmpty else { return nil }
        self = .tcp(host: String(host), port: port)
    }

    var description: String {
        switch self {
        case .tcp(let host, let port): return host.contains(":") ? "inet:[\(host)]:\(port)" : "inet:\(host):\(port)"
        case .unix(let path): return "unix:\(path)"
        }
    }
}

/// Why a scan has no verdict.
enum ClamdScanError: Error, Equatable, CustomStringConvertible {
    case unreachable(String)
    case timedOut
    case closed
    case sizeLimitExceeded
    case failed(String)
    case malformed(String)

    var description: String {
        switch self {
        case .unreachable(let why): return "clamd cannot be reached: \(why)"
        case .timedOut: return "no answer from clamd in time"
        case .closed: return "clamd closed the connection without answering"
        case .sizeLimitExceeded: return "clamd refused the data: over its StreamMaxLength"
        case .failed(let text): return "clamd could not scan: \(text)"
        case .malformed(let text): return "clamd's reply makes no sense: \(text)"
        }
    }
}

/// How to reach clamd and how long to wait for it.
struct ClamdClient: Sendable {
    let address: ClamdAddress
    let group: any EventLoopGroup
    let connectTimeout: Double
    /// The longest a scan may take, from connecting to the reply.
    let timeout: Double

    /// Scans `data`: nil when it is clean, the virus name when clamd found one.
    func scan(_ data: [UInt8]) async throws -> String? {
        let result: Result<String?, any Error>? = await withFilterDeadline(timeout) { [self] in
            do { return .success(try await self.scanOnce(data)) } catch { return .failure(error) }
        }
        guard let result else { throw ClamdScanError.timedOut }
        return try result.get()
    }

    private func scanOnce(_ data: [UInt8]) async throws -> String? {
        let (stream, continuation) = AsyncStream<[UInt8]>.makeStream()
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(.milliseconds(Int64(connectTimeout * 1000)))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteStreamInboundHandler(continuation))
                }
            }
        let channel: any Channel
        do {
            switch address {
            case .tcp(let host, let port): channel = try await bootstrap.connect(host: host, port: port).get()
            case .unix(let path): channel = try await bootstrap.connect(unixDomainSocketPath: path).get()
            }
        } catch {
            throw ClamdScanError.unreachable("\(address): \(error)")
        }
        // Closed however the scan ends (a reply, an error, the deadline cancelling this task).
        defer { channel.close(promise: nil) }
        await withTaskCancellationHandler {
            // clamd answers as soon as it has a verdict or an error (over StreamMaxLength it
            // answers and closes mid-stream): a failed write is not the end, the reply is read.
            do {
                try await channel.writeAndFlush(ByteBuffer(bytes: ClamdInstream.command)).get()
                var start = 0
                while start < data.count {
                    let end = min(start + ClamdInstream.chunkSize, data.count)
                    try await channel.writeAndFlush(ByteBuffer(bytes: ClamdInstream.frame(data[start..<end]))).get()
                    start = end
                }
                try await channel.writeAndFlush(ByteBuffer(bytes: ClamdInstream.terminator)).get()
            } catch {}
        } onCancel: {
            channel.close(promise: nil)
        }
        var reader = ClamdReplyReader()
        var reply: ClamdReply?
        for await bytes in stream {
            if case .reply(let r) = reader.feed(bytes) {
                reply = r
                break
            }
        }
        if Task.isCancelled { throw ClamdScanError.timedOut }
        switch reply ?? reader.finish() {
        case .clean?: return nil
        case .infected(let virus)?: return virus
        case .sizeLimitExceeded?: throw ClamdScanError.sizeLimitExceeded
        case .failed(let text)?: throw ClamdScanError.failed(text)
        case .malformed(let text)?: throw ClamdScanError.malformed(text)
        case nil: throw ClamdScanError.closed
        }
    }
}
