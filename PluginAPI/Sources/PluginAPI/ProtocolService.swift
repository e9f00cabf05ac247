/// How a listener protects its sessions.
public enum TLSMode: String, Sendable, Codable, CaseIterable {
    /// Plaintext only.
    case none
    /// Plaintext until the client asks for TLS (SMTP STARTTLS, IMAP STARTTLS, POP3 STLS).
    case starttls
    /// TLS from the first byte (ports 465, 993, 995).
    case implicit
}

/// A protocol plugin's service: it owns every session accepted on the listeners that name it.
///
/// The host accepts the connection, installs implicit TLS when the listener asks for it, counts and
/// logs the session, and then calls `startSession`. The service adds its handlers to the pipeline
/// and drives the protocol from there. Handlers must come from the shared NIO in PluginAPI (the
/// loader refuses a plugin that carries its own copy).
public protocol ProtocolService: AnyObject, Sendable {
    /// Sets up one accepted connection. Called on `channel.eventLoop` before the channel becomes
    /// active, so a handler added here sees `channelActive` (the place to send a greeting; with
    /// implicit TLS the greeting is held until the handshake completes).
    func startSession(on channel: any Channel, session: Session) -> EventLoopFuture<Void>
}

/// What a listener is, as its sessions see it.
public struct ListenerInfo: Sendable {
    public var name: String
    public var address: String
    public var port: Int
    public var protocolName: String
    public var tls: TLSMode
    /// `[listener.options]`, validated against the schema in the plugin's manifest, defaults applied.
    public var options: ConfigSection

    public init(name: String, address: String, port: Int, protocolName: String, tls: TLSMode, options: ConfigSection) {
        self.name = name
        self.address = address
        self.port = port
        self.protocolName = protocolName
        self.tls = tls
        self.options = options
    }
}

/// One accepted connection. Created by the host; used on the channel's event loop.
// @unchecked Sendable: drainHandlers, draining and _isSecure are guarded by `lock`; every other property is a let
public final class Session: @unchecked Sendable {
    /// A short unique id, on every log line of the session (`session=...`).
    public let id: String
    public let peer: SocketAddress?
    public let local: SocketAddress?
    public let listener: ListenerInfo
    /// Carries `session`, `peer` and `listener` metadata on every line.
    public let logger: Logger
    public let services: HostServices

    private let tlsStarter: (@Sendable (any Channel) -> EventLoopFuture<Void>)?
    private let lock = NIOLock()
    private var drainHandlers: [@Sendable () -> Void] = []
    private var draining = false
    private var _isSecure: Bool

    public init(id: String, peer: SocketAddress?, local: SocketAddress?, listener: ListenerInfo, logger: Logger,
                services: HostServices, isSecure: Bool,
                tlsStarter: (@Sendable (any Channel) -> EventLoopFuture<Void>)?) {
        self.id = id
        self.peer = peer
        self.local = local
        self.listener = listener
        self.logger = logger
        self.services = services
        self._isSecure = isSecure
        self.tlsStarter = tlsStarter
    }

    /// Whether the connection is encrypted now (implicit TLS, or STARTTLS done).
    public var isSecure: Bool { lock.withLock { _isSecure } }

    /// Whether the peer is on a loopback address (plaintext auth may be allowed there by config).
    public var isLoopback: Bool { peer?.isLoopbackPeer ?? false }

    /// Whether `startTLS` can be called: the listener is `starttls` and TLS has not started yet.
    public var canStartTLS: Bool { tlsStarter != nil && !isSecure }

    /// Puts TLS at the front of the pipeline (after the protocol's "go ahead" reply has been
    /// written). Whatever the client pipelined before the handshake must be discarded by the caller.
    public func startTLS(on channel: any Channel) -> EventLoopFuture<Void> {
        guard let tlsStarter, !isSecure else {
            return channel.eventLoop.makeFailedFuture(SessionError.tlsUnavailable)
        }
        return tlsStarter(channel).map { self.lock.withLock { self._isSecure = true } }
    }

    /// Registers what to do when the worker drains (reload or shutdown): finish the current
    /// transaction and close politely. Runs at once when the drain has already begun.
    public func onDrain(_ handler: @escaping @Sendable () -> Void) {
        let runNow = lock.withLock { () -> Bool in
            if draining { return true }
            drainHandlers.append(handler)
            return false
        }
        if runNow { handler() }
    }

    /// Whether the worker is draining: a protocol should not start a new transaction.
    public var isDraining: Bool { lock.withLock { draining } }

    /// Called by the host.
    public func beginDrain() {
        let handlers = lock.withLock { () -> [@Sendable () -> Void] in
            draining = true
            defer { drainHandlers = [] }
            return drainHandlers
        }
        handlers.forEach { $0() }
    }
}

public enum SessionError: Error, CustomStringConvertible {
    case tlsUnavailable

    public var description: String {
        switch self {
        case .tlsUnavailable: return "TLS is not available on this listener or already active"
        }
    }
}

/// TLS contexts built by the host from the configuration: per listener (with SNI certificates) and
/// one for outbound client connections.
public protocol TLSProvider: Sendable {
    /// The server context of a listener, nil when the listener has no certificate.
    func serverContext(listener: String) -> NIOSSLContext?
    /// A client context for outbound connections (SMTP to MX, LMTP, LDAP, ...).
    func clientContext() throws -> NIOSSLContext
    /// The TLS channel bindings of a listener's connections, by type (`TLSChannelBinding`);
    /// empty when the certificate depends on the client (SNI) or there is none. Default empty.
    func channelBindings(listener: String) -> [String: [UInt8]]
}

extension Channel {
    /// Asks the kernel to acknowledge the bytes received so far at once instead of delaying the
    /// ACK (TCP_QUICKACK). For a server waiting on the rest of a command after a large piece of
    /// it: a client that wrote that piece and then a short tail (imaplib sends an APPEND literal
    /// and its CRLF in two writes) holds the tail back under Nagle until the piece is
    /// acknowledged, and a delayed ACK makes that 40 ms per command. Not sticky in the kernel,
    /// so it is asked each time; failures (not TCP, e.g. a Unix socket) are ignored.
    public func acknowledgeReceivedBytes() {
        #if os(Linux)
        let quickAck = ChannelOptions.Types.SocketOption(level: .tcp, name: .init(rawValue: 12)) // TCP_QUICKACK
        setOption(quickAck, value: 1).whenFailure { _ in }
        #endif
    }
}

extension SocketAddress {
    /// Whether a peer at this address is on this machine: 127.0.0.0/8, ::1, an IPv4-mapped
    /// 127.x, or a Unix socket. What "plaintext allowed on loopback" settings test.
    public var isLoopbackPeer: Bool {
        switch self {
        case .v4(let a): return (a.address.sin_addr.s_addr.bigEndian >> 24) == 127
        case .v6: return ipAddress == "::1" || (ipAddress?.hasPrefix("::ffff:127.") ?? false)
        case .unixDomainSocket: return true
        }
    }

    /// The address without its port (`local` for a Unix socket): for logs, throttles and limits.
    public var hostText: String {
        switch self {
        case .v4(let a): return a.host
        case .v6(let a): return a.host
        case .unixDomainSocket: return "local"
        }
    }
}
