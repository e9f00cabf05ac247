import Foundation
import PluginAPI

/// The master's side of authproxyd: spawns `postern authproxyd` (the same binary), waits for it on
/// a thread of its own (`waitpid` on its pid only, so the master's reaping of workers and probes
/// is untouched) and restarts it like a worker: at once after a long run, else with backoff
/// doubling from 50 ms to 30 s. Workers that ask meanwhile get a temporary failure.
public final class AuthProxySupervisor: @unchecked Sendable {
    // @unchecked Sendable: the mutable state (pid, stopping, failures) is only touched under `lock`
    let snapshot: String
    let origin: String
    let socket: String
    let logger = Logger(label: "master")
    private let lock = NIOLock()
    private var currentPid: pid_t?
    private var stopping = false
    private let exited = DispatchSemaphore(value: 0)
    private let restarts = Counter(label: "postern_authproxyd_restarts_total")
    private let up = Gauge(label: "postern_authproxyd_up")

    /// `snapshot`: the config text the master checked (its run directory, 0600 root), read by
    /// authproxyd before it drops privileges; `origin` names the config file in its messages.
    public init(snapshot: String, origin: String, socket: String) {
        self.snapshot = snapshot
        self.origin = origin
        self.socket = socket
    }

    /// The running authproxyd's pid, nil between a crash and the restart.
    public var pid: pid_t? { lock.withLock { currentPid } }

    public func start() {
        let thread = Thread { [self] in supervise() }
        thread.name = "authproxyd-supervisor"
        thread.start()
    }

    private func supervise() {
        var failures = 0
        while !lock.withLock({ stopping }) {
            let started = Date()
            let child: Spawner.Child
            do {
                child = try Spawner.spawn(arguments: ["authproxyd", "--config", snapshot, "--origin", origin])
            } catch {
                logger.error("cannot spawn authproxyd: \(error)")
                failures += 1
                sleepBackoff(failures)
                continue
            }
            lock.withLock { currentPid = child.pid }
            up.record(1)
            logger.info("authproxyd spawned", metadata: ["pid": "\(child.pid)"])
            var status: CInt = 0
            while waitpid(child.pid, &status, 0) < 0 && errno == EINTR {}
            lock.withLock { currentPid = nil }
            up.record(0)
            let uptime = Date().timeIntervalSince(started)
            if lock.withLock({ stopping }) {
                logger.info("authproxyd exited", metadata: ["pid": "\(child.pid)", "status": "\(Spawner.describe(status: status))"])
                break
            }
            logger.error("authproxyd exited", metadata: ["pid": "\(child.pid)", "status": "\(Spawner.describe(status: status))",
                                                         "uptime": "\(String(format: "%.1f", uptime))s"])
            failures = uptime > 10 ? 0 : failures + 1
            restarts.increment()
            sleepBackoff(failures)
        }
        exited.signal()
    }

    private func sleepBackoff(_ failures: Int) {
        let delay = failures == 0 ? 0 : min(30.0, 0.05 * pow(2, Double(failures - 1)))
        logger.info("restarting authproxyd", metadata: ["delay": "\(delay)s"])
        let until = Date().addingTimeInterval(delay)
        while Date() < until && !lock.withLock({ stopping }) { usleep(20_000) }
    }

    /// SIGTERM, then SIGKILL after `grace` seconds; returns once the supervisor thread ended.
    public func stop(grace: Double = 5) {
        let pid: pid_t? = lock.withLock {
            stopping = true
            return currentPid
        }
        if let pid { kill(pid, SIGTERM) }
        if exited.wait(timeout: .now() + grace) == .timedOut {
            if let pid = self.pid { kill(pid, SIGKILL) }
            _ = exited.wait(timeout: .now() + 5)
        }
    }

    /// authproxyd's metrics, asked over its socket; nil when it does not answer within a second.
    public func metrics() -> String? {
        guard pid != nil else { return nil }
        guard case .success(.metricsText(let text)) = AuthProxyProbe.ask(.metrics, socket: socket, timeout: 1) else { return nil }
        return text
    }
}

/// A blocking request to authproxyd, for the master (metrics) and `postern` tools.
public enum AuthProxyProbe {
    public static func ask(_ request: AuthProxyRequest, socket path: String, timeout: Double) -> Result<AuthProxyReply, SystemError> {
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .failure(.call("socket", errno)) }
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return .failure(.message("socket path too long")) }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
            raw[bytes.count] = 0
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else { return .failure(.call("connect \(path)", errno)) }
        let frame = request.encoded()
        guard frame.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == frame.count else {
            return .failure(.call("send", errno))
        }
        var decoder = AuthProxyFrameDecoder()
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            do {
                if let f = try decoder.next() { return .success(try AuthProxyReply(f)) }
            } catch {
                return .failure(.message("bad reply: \(error)"))
            }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return .failure(.message(n == 0 ? "connection closed" : String(cString: strerror(errno)))) }
            decoder.append(buffer[0..<n])
        }
    }
}
