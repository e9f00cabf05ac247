import Foundation
import PluginAPI

/// `postern authproxyd`: the process that alone holds privileged secrets (ARCHITECTURE.md,
/// "authproxyd"). Started by the master as root, it binds its Unix socket (mode 0660, owned by its
/// user and the workers' group), drops to its own user, loads its backend plugins and answers the
/// workers' requests (AuthProxyWire) on one thread per connection: backends may block on a KDC.
public final class AuthProxyServer: @unchecked Sendable {
    // @unchecked Sendable: config and logger are let; `connections` is only touched under `lock`
    let config: HostConfig
    let proxy: AuthProxyConfig
    let logger = Logger(label: "authproxyd")
    private let lock = NIOLock()
    private var connections = 0
    private var backends: [any AuthProxyBackend] = []

    private let served = [
        "ok": Counter(label: "postern_authproxyd_served_total", dimensions: [("result", "ok")]),
        "refused": Counter(label: "postern_authproxyd_served_total", dimensions: [("result", "refused")]),
        "bad_frame": Counter(label: "postern_authproxyd_served_total", dimensions: [("result", "bad_frame")]),
        "busy": Counter(label: "postern_authproxyd_served_total", dimensions: [("result", "busy")]),
    ]

    public init(config: HostConfig, proxy: AuthProxyConfig) {
        self.config = config
        self.proxy = proxy
    }

    /// Who authproxyd runs as when started as root: `[authproxyd] user`, never root.
    static func identity(_ proxy: AuthProxyConfig, _ config: HostConfig) throws -> (uid: uid_t, gid: gid_t, socketGroup: gid_t)? {
        guard geteuid() == 0 else { return nil }
        guard let user = proxy.user else {
            throw SystemError.message("[authproxyd] user is required when postern runs as root: authproxyd must not share the workers' identity")
        }
        guard user != "root", let pw = getpwnam(user), pw.pointee.pw_uid != 0 else {
            throw SystemError.message("[authproxyd] user '\(user)' does not exist or is root")
        }
        let (uid, gid) = (pw.pointee.pw_uid, pw.pointee.pw_gid)
        var socketGroup: gid_t
        if let name = proxy.group ?? config.workerGroup {
            guard let gr = getgrnam(name) else { throw SystemError.message("[authproxyd] group '\(name)' does not exist") }
            socketGroup = gr.pointee.gr_gid
        } else if let worker = config.workerUser, let wpw = getpwnam(worker) {
            socketGroup = wpw.pointee.pw_gid
        } else {
            socketGroup = gid
        }
        if let worker = config.workerUser, worker == user {
            throw SystemError.message("[authproxyd] user '\(user)' is the workers' user; authproxyd needs a user of its own")
        }
        return (uid, gid, socketGroup)
    }

    /// Runs until killed; returns an exit status (78 for a refused config or plugin).
    public func run() -> Int32 {
        let listener: CInt
        do {
            let who = try Self.identity(proxy, config)
            listener = try bind(owner: who.map { ($0.uid, $0.socketGroup) })
            if let who {
                try Privileges.drop(user: proxy.user, group: nil)
                logger.info("running as \(proxy.user ?? "?") (uid \(who.uid))")
            }
        } catch {
            logger.critical("cannot start: \(error)")
            return 78
        }
        // Die with the master: a master that is gone (SIGKILLed) leaves no one to supervise us,
        // and a new master would start its own authproxyd on the same socket.
        let master = getppid()
        let watchdog = Thread {
            while getppid() == master { sleep(1) }
            Foundation.exit(0)
        }
        watchdog.start()

        let loader = PluginLoader(configuredPath: config.pluginPath)
        let (loaded, refused) = loader.loadAll(proxy.backends)
        if !refused.isEmpty {
            refused.forEach { logger.critical("\($0)") }
            return 78
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            let services = HostServices(tls: try HostTLS(listeners: []))
            let lifecycle = try PluginLifecycle(activating: loaded, role: config.role, dataDirectory: config.dataDirectory,
                                                sections: proxy.sections, group: group, services: services, logger: logger)
            try lifecycle.start(logger: logger)
            backends = services.credentialBackends.compactMap { $0.backend as? any AuthProxyBackend }
        } catch {
            logger.critical("cannot start the backends: \(error)")
            return 78
        }
        logger.info("authproxyd ready", metadata: ["socket": "\(proxy.socket)", "backends": "\(loaded.map(\.manifest.name))"])
        acceptLoop(listener)
        return 0
    }

    /// Creates the socket's directory and the socket, as root, for `owner` (uid, socket group).
    func bind(owner: (uid: uid_t, gid: gid_t)?) throws -> CInt {
        let directory = (proxy.socket as NSString).deletingLastPathComponent
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            chmod(directory, 0o750)
            if let owner { _ = chown(directory, owner.uid, owner.gid) }
        }
        unlink(proxy.socket)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError.call("socket", errno) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let path = Array(proxy.socket.utf8)
        guard path.count < MemoryLayout.size(ofValue: address.sun_path) else { throw SystemError.message("socket path too long: \(proxy.socket)") }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in path.enumerated() { raw[i] = b }
            raw[path.count] = 0
        }
        // Nobody may connect before the mode and owner are right.
        let old = umask(0o177)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        umask(old)
        guard bound == 0 else { close(fd); throw SystemError.call("bind \(proxy.socket)", errno) }
        if let owner { guard chown(proxy.socket, owner.uid, owner.gid) == 0 else { close(fd); throw SystemError.call("chown \(proxy.socket)", errno) } }
        guard chmod(proxy.socket, 0o660) == 0 else { close(fd); throw SystemError.call("chmod \(proxy.socket)", errno) }
        guard listen(fd, 128) == 0 else { close(fd); throw SystemError.call("listen", errno) }
        return fd
    }

    private func acceptLoop(_ listener: CInt) {
        while true {
            let fd = accept(listener, nil, nil)
            if fd >= 0 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
            if fd < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                logger.critical("accept failed: \(String(cString: strerror(errno)))")
                return
            }
            let admitted: Bool = lock.withLock {
                guard connections < proxy.maxConnections else { return false }
                connections += 1
                return true
            }
            guard admitted else {
                served["busy"]?.increment()
                let reply = AuthProxyReply.refused(.temporary, reason: "authproxyd is busy").encoded()
                _ = reply.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                close(fd)
                continue
            }
            let thread = Thread { [self] in
                serve(fd)
                close(fd)
                lock.withLock { connections -= 1 }
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// One connection: requests in order, each answered before the next is read.
    func serve(_ fd: CInt) {
        var tv = timeval(tv_sec: Int(proxy.idleTimeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var decoder = AuthProxyFrameDecoder()
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let frame: AuthProxyFrame?
            do {
                frame = try decoder.next()
            } catch {
                served["bad_frame"]?.increment()
                logger.warning("closing a connection that sent a bad frame: \(error)")
                return
            }
            if let frame {
                let reply: AuthProxyReply
                do {
                    reply = answer(try AuthProxyRequest(frame))
                } catch {
                    served["bad_frame"]?.increment()
                    logger.warning("closing a connection that sent a bad request: \(error)")
                    return
                }
                if case .refused = reply { served["refused"]?.increment() } else { served["ok"]?.increment() }
                let bytes = reply.encoded()
                var sent = 0
                while sent < bytes.count {
                    let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    if n < 0 && errno == EINTR { continue }
                    guard n > 0 else { return }
                    sent += n
                }
                continue
            }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return }
            decoder.append(buffer[0..<n])
        }
    }

    func answer(_ request: AuthProxyRequest) -> AuthProxyReply {
        switch request {
        case .ping: return .pong
        case .metrics: return .metricsText(PosternMetrics.exposition())
        default:
            for backend in backends {
                if let reply = backend.handle(request) { return reply }
            }
            return .refused(.unsupported, reason: "no backend of authproxyd handles this request")
        }
    }
}
