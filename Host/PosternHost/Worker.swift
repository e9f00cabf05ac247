import Foundation
import PluginAPI

/// A worker process: loads the plugins, serves its generation's listeners on sockets inherited from
/// the master, reports to the master over its status channel, and drains on SIGTERM (or when the
/// master goes away): stop accepting, let sessions finish within `drain_timeout`, then exit.
// @unchecked Sendable: acceptors, draining and plugins only under `lock`; signalSources only touched by run()'s thread; rest let
public final class Worker: @unchecked Sendable {
    let config: HostConfig
    let generation: Int
    let index: Int
    let statusFD: CInt
    let listenerFDs: [CInt]
    let logger: Logger
    let sessions: SessionTable
    private let lock = NIOLock()
    private var acceptors: [Acceptor] = []
    private var draining = false
    private let finished = DispatchSemaphore(value: 0)
    private var plugins: PluginLifecycle?

    public init(config: HostConfig, generation: Int, index: Int, statusFD: CInt, listenerFDs: [CInt]) {
        self.config = config
        self.generation = generation
        self.index = index
        self.statusFD = statusFD
        self.listenerFDs = listenerFDs
        var logger = Logger(label: "worker")
        logger[metadataKey: "generation"] = "\(generation)"
        self.logger = logger
        self.sessions = SessionTable()
    }

    /// Runs until drained; returns the process exit status (78, EX_CONFIG, when the plugins or the
    /// config are refused, so the master does not restart it in a loop).
    public func run() -> Int32 {
        // Keys are read before the privilege drop, as Postfix and Dovecot do: a key may be
        // readable by root alone (mode 0600, or 0640 root:ssl-cert).
        let tls: HostTLS
        do {
            tls = try HostTLS(listeners: config.listeners)
        } catch {
            logger.critical("cannot load the TLS certificates: \(error)")
            return 78
        }
        do {
            try Privileges.drop(user: config.workerUser, group: config.workerGroup)
        } catch {
            logger.critical("cannot drop privileges: \(error)")
            return 78
        }
        let loader = PluginLoader(configuredPath: config.pluginPath)
        let (loaded, refused) = loader.loadAll(config.requestedPlugins)
        let issues = Probe.validate(config: config, loaded: loaded, refusedNames: Set(refused.map(\.plugin)))
        if !refused.isEmpty || !issues.isEmpty {
            refused.forEach { logger.critical("\($0)") }
            issues.forEach { logger.critical("\(config.diagnostic($0))") }
            return 78
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, System.coreCount))
        do {
            let services = HostServices(tls: tls)
            services.hostControl = hostControl
            let lifecycle = try PluginLifecycle(activating: loaded, config: config, group: group, services: services, logger: logger)
            lock.withLock { plugins = lifecycle }
            // Every plugin is active: background work may start, then listeners accept.
            try lifecycle.start(logger: logger)
            for (listener, fd) in zip(config.listeners, listenerFDs) {
                let manifest = loaded.first { $0.manifest.name == listener.plugin }!.manifest
                let (serviceName, schema) = Probe.serviceSchema(manifest, listener.service)!
                guard let service = lifecycle.services(of: listener.plugin)?.lazy.compactMap({ s -> (any ProtocolService)? in
                    if case .protocolService(let n, let svc) = s, n == serviceName { return svc } else { return nil }
                }).first else {
                    throw SystemError.message("plugin '\(listener.plugin)' declared protocol service '\(serviceName)' but did not register it")
                }
                let info = ListenerInfo(name: listener.name, address: listener.address, port: listener.port,
                                        protocolName: serviceName, tls: listener.tls,
                                        options: ConfigSection(schema.applyingDefaults(to: listener.options)))
                let acceptor = try serve(listener: listener, info: info, service: service, fd: fd, group: group, services: services)
                lock.withLock { acceptors.append(acceptor) }
            }
        } catch {
            logger.critical("\(error)")
            lock.withLock { plugins }?.shutdown()
            try? group.syncShutdownGracefully()
            return 78
        }

        installSignalHandlers()
        do {
            try connectStatusChannel(group: group)
        } catch {
            logger.critical("cannot open the status channel to the master: \(error)")
            return 1
        }
        logger.info("worker ready", metadata: ["listeners": "\(config.listeners.map(\.name))"])
        finished.wait()
        lock.withLock { plugins }?.shutdown()
        try? group.syncShutdownGracefully()
        logger.info("worker stopped")
        return 0
    }

    /// Serves one inherited listening socket: an `Acceptor` takes connections off it and each
    /// becomes a NIO channel on one of the worker's event loops.
    private func serve(listener: ListenerConfig, info: ListenerInfo, service: any ProtocolService, fd: CInt,
                       group: any EventLoopGroup, services: HostServices) throws -> Acceptor {
        let tlsContext = services.tls.serverContext(listener: listener.name)
        let sessions = self.sessions
        let logger = self.logger
        let dimensions = [("listener", listener.name), ("plugin", listener.plugin)]
        let connections = Counter(label: "postern_connections_total", dimensions: dimensions)
        let refusedCounter = Counter(label: "postern_connections_refused_total", dimensions: dimensions)
        let errors = Counter(label: "postern_session_errors_total", dimensions: dimensions)
        let active = Gauge(label: "postern_sessions_active", dimensions: dimensions)
        let maxConnections = listener.maxConnections
        let bootstrap = ClientBootstrap(group: group)
            .channelInitializer { channel in
                var sessionLogger = Logger(label: "session")
                sessionLogger[metadataKey: "session"] = "\(SessionTable.newID())"
                sessionLogger[metadataKey: "peer"] = "\(channel.remoteAddress.map(Self.describe) ?? "unknown")"
                sessionLogger[metadataKey: "listener"] = "\(listener.name)"
                let starter: (@Sendable (any Channel) -> EventLoopFuture<Void>)?
                if listener.tls == .starttls, let tlsContext {
                    starter = { ch in
                        ch.eventLoop.makeCompletedFuture {
                            try ch.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tlsContext), position: .first)
                        }
                    }
                } else {
                    starter = nil
                }
                let session = Session(id: "\(sessionLogger[metadataKey: "session"]!)", peer: channel.remoteAddress,
                                      local: channel.localAddress, listener: info, logger: sessionLogger,
                                      services: services, isSecure: listener.tls == .implicit, tlsStarter: starter)
                let opened = DispatchTime.now()
                sessions.add(session, channel: channel)
                active.record(sessions.count(listener: listener.name))
                sessionLogger.info("session opened")
                channel.closeFuture.whenComplete { _ in
                    sessions.remove(channel)
                    active.record(sessions.count(listener: listener.name))
                    let seconds = Double(DispatchTime.now().uptimeNanoseconds - opened.uptimeNanoseconds) / 1e9
                    sessionLogger.info("session closed", metadata: ["seconds": "\(String(format: "%.3f", seconds))"])
                }
                do {
                    if listener.tls == .implicit, let tlsContext {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tlsContext))
                    }
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
                return service.startSession(on: channel, session: session).flatMapThrowing {
                    try channel.pipeline.syncOperations.addHandler(SessionErrorCounter(errors: errors, logger: sessionLogger))
                }
            }
        let acceptor = try Acceptor(fd: fd, name: listener.name) { connection in
            connections.increment()
            if sessions.count(listener: listener.name) >= maxConnections {
                refusedCounter.increment()
                logger.warning("connection limit reached, closing", metadata: ["listener": "\(listener.name)"])
                close(connection)
                return
            }
            var one: CInt = 1
            setsockopt(connection, SOL_SOCKET, SO_KEEPALIVE, &one, socklen_t(MemoryLayout<CInt>.size))
            // Counted until its session is in the table: a drain waits for it too.
            sessions.connectionAccepted()
            let starting = bootstrap.withConnectedSocket(connection)
            starting.whenFailure { error in
                errors.increment()
                logger.warning("cannot start session: \(error)", metadata: ["listener": "\(listener.name)"])
            }
            starting.whenComplete { _ in sessions.connectionStarted() }
        }
        acceptor.start()
        return acceptor
    }

    static func describe(_ address: SocketAddress) -> String {
        if let ip = address.ipAddress, let port = address.port { return address.protocol == .inet6 ? "[\(ip)]:\(port)" : "\(ip):\(port)" }
        return address.description
    }

    private func installSignalHandlers() {
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [weak self] in self?.drain(reason: sig == SIGTERM ? "SIGTERM" : "SIGINT") }
            source.resume()
            signalSources.append(source)
        }
    }

    private var signalSources: [any DispatchSourceSignal] = []
    /// What its plugins may ask of the master (the admin console's reload button).
    let hostControl = WorkerHostControl()

    private func connectStatusChannel(group: any EventLoopGroup) throws {
        let sessions = self.sessions
        _ = try ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineFrameDecoder(maxLength: 1 << 20)))
                    try channel.pipeline.syncOperations.addHandler(JSONLineHandler<WorkerRequest>(
                        onMessage: { [weak self] request, context in
                            if request.request == .reloaded {
                                self?.hostControl.answer(request.id, request.reply ?? HostControlReply(ok: false, message: "the master gave no reply"))
                                return
                            }
                            if request.request == .drain {
                                // Stopping the acceptors waits for their threads: not on the event loop.
                                let channel = context.channel
                                let worker = self
                                DispatchQueue.global().async {
                                    worker?.drain(reason: "reload")
                                    let reply = WorkerMessage(event: .report, id: request.id, sessions: sessions.count)
                                    channel.writeAndFlush(JSONLines.encode(reply), promise: nil)
                                }
                                return
                            }
                            let reply = WorkerMessage(event: .report, id: request.id, sessions: sessions.count,
                                                      metrics: request.request == .metrics ? PosternMetrics.exposition() : nil)
                            context.writeAndFlush(NIOAny(JSONLines.encode(reply)), promise: nil)
                        },
                        onInvalid: { [weak self] why, _ in
                            self?.logger.error("the master sent a status line that is not a worker request: \(why)")
                        },
                        onClose: { [weak self] in
                            self?.hostControl.disconnected()
                            self?.drain(reason: "master went away")
                        }))
                }
            }
            .withConnectedSocket(statusFD)
            .flatMap { [hostControl] channel in
                hostControl.connected(channel)
                return channel.writeAndFlush(JSONLines.encode(WorkerMessage(event: .ready)))
            }
            .wait()
    }

    /// Stops accepting, asks every session to finish, and exits once they have or the drain
    /// timeout has passed.
    func drain(reason: String) {
        let acceptors: [Acceptor]? = lock.withLock {
            if draining { return nil }
            draining = true
            return self.acceptors
        }
        guard let acceptors else { return }
        logger.info("draining", metadata: ["reason": "\(reason)", "sessions": "\(sessions.count)"])
        // Connections still in the kernel's queue stay there for the next generation: the
        // listening socket lives on in the master and the other workers.
        for acceptor in acceptors { acceptor.stop() }
        sessions.beginDrain()
        let deadline = Date().addingTimeInterval(config.drainTimeout)
        DispatchQueue.global().async { [self] in
            if !sessions.waitUntilEmpty(deadline: deadline) {
                logger.warning("drain timeout, closing sessions", metadata: ["sessions": "\(sessions.count)"])
                sessions.closeAll()
                _ = sessions.waitUntilEmpty(deadline: Date().addingTimeInterval(1))
            }
            finished.signal()
        }
    }
}

/// The sessions of a worker, for drain and for the per-listener connection limit.
// @unchecked Sendable: every stored property but `lock` is only read and written under `lock`
final class SessionTable: @unchecked Sendable {
    private let lock = NIOLock()
    private var sessions: [ObjectIdentifier: (session: Session, channel: any Channel)] = [:]
    private var perListener: [String: Int] = [:]
    private var emptyWaiters: [DispatchSemaphore] = []
    /// Connections accepted whose channel is not set up yet (their session is not in the table).
    private var starting = 0
    private var draining = false

    private var isIdle: Bool { sessions.isEmpty && starting == 0 }

    var count: Int { lock.withLock { sessions.count } }

    func count(listener: String) -> Int { lock.withLock { perListener[listener, default: 0] } }

    func add(_ session: Session, channel: any Channel) {
        let late: Bool = lock.withLock {
            sessions[ObjectIdentifier(channel)] = (session, channel)
            perListener[session.listener.name, default: 0] += 1
            return draining
        }
        // Accepted just before the drain began: it is told at once, like the others were.
        if late { session.beginDrain() }
    }

    func connectionAccepted() {
        lock.withLock { starting += 1 }
    }

    /// Its channel is set up (the session is in the table) or failed to be.
    func connectionStarted() {
        let waiters: [DispatchSemaphore] = lock.withLock {
            starting = max(0, starting - 1)
            return takeWaitersIfIdle()
        }
        waiters.forEach { $0.signal() }
    }

    func remove(_ channel: any Channel) {
        let waiters: [DispatchSemaphore] = lock.withLock {
            if let entry = sessions.removeValue(forKey: ObjectIdentifier(channel)) {
                perListener[entry.session.listener.name, default: 1] -= 1
            }
            return takeWaitersIfIdle()
        }
        waiters.forEach { $0.signal() }
    }

    /// Under `lock`.
    private func takeWaitersIfIdle() -> [DispatchSemaphore] {
        guard isIdle else { return [] }
        defer { emptyWaiters.removeAll() }
        return emptyWaiters
    }

    /// Blocks until the last session has gone (woken by `remove`, no polling) or `deadline`
    /// passes; true when none is left.
    func waitUntilEmpty(deadline: Date) -> Bool {
        let semaphore = DispatchSemaphore(value: 0)
        let empty: Bool = lock.withLock {
            if isIdle { return true }
            emptyWaiters.append(semaphore)
            return false
        }
        if empty { return true }
        let seconds = max(0, deadline.timeIntervalSinceNow)
        _ = semaphore.wait(timeout: .now() + seconds)
        return lock.withLock { isIdle }
    }

    func beginDrain() {
        lock.withLock {
            draining = true
            return sessions.values.map(\.session)
        }.forEach { $0.beginDrain() }
    }

    func closeAll() {
        lock.withLock { sessions.values.map(\.channel) }.forEach { $0.close(promise: nil) }
    }

    /// 12 characters of base32 from 60 random bits.
    static func newID() -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567")
        var n = UInt64.random(in: 0...UInt64.max)
        var out = ""
        for _ in 0..<12 {
            out.append(alphabet[Int(n & 31)])
            n >>= 5
        }
        return out
    }
}

/// The last handler of every session: counts errors no protocol handler dealt with, logs them and
/// closes the connection (a protocol plugin handles its own errors first).
// @unchecked Sendable: stored properties are let (a Counter, a Logger), and NIO calls it only on its channel's event loop
final class SessionErrorCounter: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = NIOAny
    let errors: Counter
    let logger: Logger

    init(errors: Counter, logger: Logger) {
        self.errors = errors
        self.logger = logger
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if Self.isOrdinaryDisconnect(error) {
            // A client that drops the connection (a reset, a TLS session cut without close_notify)
            // is what clients do every day: logged, not counted as an error.
            logger.info("client disconnected: \(error)")
        } else {
            errors.increment()
            logger.warning("session error: \(error)")
        }
        context.close(promise: nil)
    }

    static func isOrdinaryDisconnect(_ error: any Error) -> Bool {
        if let io = error as? IOError { return [ECONNRESET, EPIPE, ETIMEDOUT, ECONNABORTED].contains(io.errnoCode) }
        if let ssl = error as? NIOSSLError, case .uncleanShutdown = ssl { return true }
        if let channel = error as? ChannelError {
            switch channel {
            case .eof, .ioOnClosedChannel, .outputClosed, .alreadyClosed, .inputClosed: return true
            default: return false
            }
        }
        return false
    }
}

/// Takes connections off a listening socket shared with the master and other workers.
///
/// Every process polls the same socket, so a connection wakes several of them and all but one
/// find nothing to accept: `EAGAIN` here is normal and ignored. (NIO's ServerSocketChannel treats
/// such an empty wake-up as a bug and traps in debug builds, which is why the workers do not use
/// `ServerBootstrap.withBoundSocket` on inherited sockets.) Stopping closes nothing shared: the
/// thread just stops taking connections and leaves them queued for the processes that go on.
// @unchecked Sendable: `stopped` is under `lock`, the rest is let; onConnection only runs on the accept thread
final class Acceptor: @unchecked Sendable {
    let fd: CInt
    let name: String
    let onConnection: (CInt) -> Void
    private let wake: [CInt]
    private let lock = NIOLock()
    private var stopped = false
    private let exited = DispatchSemaphore(value: 0)

    init(fd: CInt, name: String, onConnection: @escaping (CInt) -> Void) throws {
        self.fd = fd
        self.name = name
        self.onConnection = onConnection
        var pipeFDs: [CInt] = [0, 0]
        guard pipe(&pipeFDs) == 0 else { throw SystemError.call("pipe", errno) }
        for p in pipeFDs {
            _ = fcntl(p, F_SETFD, FD_CLOEXEC)
            _ = fcntl(p, F_SETFL, O_NONBLOCK)
        }
        wake = pipeFDs
        // Non-blocking: after a shared wake-up another process may have taken the connection.
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    }

    func start() {
        let thread = Thread { [self] in run() }
        thread.name = "accept-\(name)"
        thread.start()
    }

    /// Stops taking connections and returns once the accept thread is done (at most a second):
    /// after this no connection of this acceptor starts a session.
    func stop() {
        lock.withLock { stopped = true }
        var byte: UInt8 = 1
        _ = write(wake[1], &byte, 1)
        _ = exited.wait(timeout: .now() + 1)
    }

    private func run() {
        defer { exited.signal() }
        var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: wake[0], events: Int16(POLLIN), revents: 0)]
        while true {
            fds[0].revents = 0
            fds[1].revents = 0
            let n = poll(&fds, 2, -1)
            if n < 0 {
                if errno == EINTR { continue }
                return
            }
            if fds[1].revents != 0 { return }
            guard fds[0].revents & Int16(POLLIN) != 0 else {
                if fds[0].revents & Int16(POLLNVAL | POLLERR) != 0 { return }
                continue
            }
            // Take what is queued, up to a batch, then poll again (fairness with other workers).
            for _ in 0..<64 {
                if lock.withLock({ stopped }) { return }
                let connection = accept(fd, nil, nil)
                if connection >= 0 {
                    // Workers spawn nothing, so setting close-on-exec after accept races with no exec.
                    _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
                    _ = fcntl(connection, F_SETFL, fcntl(connection, F_GETFL) | O_NONBLOCK)
                    onConnection(connection)
                    continue
                }
                // EAGAIN: another process was faster. ECONNABORTED: the client gave up. EMFILE and
                // friends: back off briefly rather than spin.
                if errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM { usleep(50_000) }
                break
            }
        }
    }
}
