import Foundation
import PluginAPI

/// master -> worker, one JSON object per line on the worker's status channel. A line that does not
/// decode (an unknown request among them) is logged and answered by nothing.
struct WorkerRequest: Codable {
    enum Kind: String, Codable {
        /// The session count.
        case report
        /// The session count and the worker's Prometheus text.
        case metrics
        /// Stop accepting and drain (a reload); answered once no new session can start here, so
        /// the master's "reloaded" means every new connection meets the new generation.
        case drain
        /// The answer to the worker's `reloadRequest` with the same id.
        case reloaded
    }
    var id: Int
    var request: Kind
    /// With `reloaded`: the master's reply.
    var reply: HostControlReply?
}

/// worker -> master.
struct WorkerMessage: Codable {
    enum Event: String, Codable {
        /// Every plugin started and every listener accepts.
        case ready
        /// The answer to a `WorkerRequest`.
        case report
        /// A plugin asks for a reload (the admin console's button): answered by `reloaded`.
        case reloadRequest
    }
    var event: Event
    var id: Int?
    var sessions: Int?
    var metrics: String?
}

/// What `postern ctl` asks the master.
public enum ControlCommand: String, Codable, Sendable, CaseIterable {
    case status, reload, stop
}

/// `postern ctl` -> master, one JSON line on the control socket. An unknown command does not
/// decode, and the master answers that it is unknown.
public struct ControlRequest: Codable, Sendable {
    public var command: ControlCommand
    public init(command: ControlCommand) { self.command = command }
}

public struct ControlResponse: Codable, Sendable {
    public var ok: Bool
    public var message: String
    public var errors: [String]
    public var status: StatusSnapshot?

    public init(ok: Bool, message: String, errors: [String] = [], status: StatusSnapshot? = nil) {
        self.ok = ok
        self.message = message
        self.errors = errors
        self.status = status
    }
}

public struct StatusSnapshot: Codable, Sendable {
    public struct Worker: Codable, Sendable {
        public var pid: Int32
        public var generation: Int
        public var index: Int
        public var state: String
        public var sessions: Int?
        public var uptimeSeconds: Double
    }

    public struct Listener: Codable, Sendable {
        public var name: String
        public var address: String
        public var port: Int
        public var plugin: String
        public var tls: String
    }

    public var pid: Int32
    public var role: String
    public var configFile: String
    public var uptimeSeconds: Double
    public var generation: Int
    public var workers: [Worker]
    public var plugins: [ProbeReport.PluginInfo]
    public var listeners: [Listener]
    public var reloads: Int
    public var failedReloads: Int
    public var workerRestarts: Int
}

enum JSONLines {
    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return e
    }()

    static func encode<T: Encodable>(_ value: T) -> ByteBuffer {
        var data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        data.append(UInt8(ascii: "\n"))
        return ByteBuffer(bytes: data)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8]) -> T? {
        try? JSONDecoder().decode(type, from: Data(bytes))
    }
}

/// Hands each JSON line of a channel to `onMessage`, a line that is not a `Message` to `onInvalid`
/// (with why), and EOF to `onClose`.
// @unchecked Sendable: its closures are let and only called by NIO on the channel's event loop (ChannelHandler)
final class JSONLineHandler<Message: Decodable>: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = LineSplitter.Event
    let onMessage: (Message, ChannelHandlerContext) -> Void
    let onInvalid: (String, ChannelHandlerContext) -> Void
    let onClose: () -> Void

    init(onMessage: @escaping (Message, ChannelHandlerContext) -> Void,
         onInvalid: @escaping (String, ChannelHandlerContext) -> Void,
         onClose: @escaping () -> Void = {}) {
        self.onMessage = onMessage
        self.onInvalid = onInvalid
        self.onClose = onClose
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .line(let bytes) = unwrapInboundIn(data), !bytes.isEmpty else { return }
        do {
            onMessage(try JSONDecoder().decode(Message.self, from: Data(bytes)), context)
        } catch {
            onInvalid("\(error)", context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        onClose()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// The log format of every Postern process: one line per event, metadata as key=value, so that
/// `grep session=abc` follows one session across the master and the workers.
public struct PosternLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    let label: String
    static let lock = NIOLock()
    static let process: String = "\(CommandLine.arguments.dropFirst().first ?? "postern")[\(getpid())]"

    public init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?,
                    source: String, file: String, function: String, line: UInt) {
        var all = metadata
        explicit?.forEach { all[$0.key] = $0.value }
        let now = Date()
        let stamp = ISO8601DateFormatter.string(from: now, timeZone: TimeZone(identifier: "UTC")!,
                                                formatOptions: [.withInternetDateTime, .withFractionalSeconds])
        var text = "\(stamp) \(Self.process) \(level.rawValue) \(label): \(message)"
        for key in all.keys.sorted() {
            let value = "\(all[key]!)"
            text += value.contains(" ") ? " \(key)=\"\(value)\"" : " \(key)=\(value)"
        }
        text += "\n"
        // The throwing write: a closed stderr must not take the process down with it.
        Self.lock.withLock { try? FileHandle.standardError.write(contentsOf: Data(text.utf8)) }
    }

    /// Installs this handler for the process (once).
    public static func bootstrap(level: Logger.Level) {
        bootstrapOnce.withLockedValue { done in
            guard !done else { return }
            LoggingSystem.bootstrap { PosternLogHandler(label: $0, level: level) }
            done = true
        }
    }

    static let bootstrapOnce = NIOLockedValueBox(false)
}
