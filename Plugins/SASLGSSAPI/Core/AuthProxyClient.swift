import Foundation
import PluginAPI

// The worker's side of the authproxyd socket: one request, one reply, each on a fresh connection
// (so a restarted authproxyd is simply reached again), bounded by a deadline so that a crashed or
// hung authproxyd costs a session at most `timeout` and gives it a temporary failure.

enum AuthProxyClientError: Error, Equatable, CustomStringConvertible {
    /// No authproxyd listening (not started yet, restarting, crashed).
    case unreachable(String)
    /// No complete reply within the timeout.
    case timeout
    /// The connection ended before a whole reply.
    case closed
    /// A reply that does not decode.
    case protocolError(String)

    var description: String {
        switch self {
        case .unreachable(let why): return "authproxyd unreachable: \(why)"
        case .timeout: return "authproxyd did not answer in time"
        case .closed: return "authproxyd closed the connection before answering"
        case .protocolError(let why): return "authproxyd sent a malformed reply: \(why)"
        }
    }
}

/// Talks to authproxyd at `socketPath`.
struct AuthProxyClient: Sendable {
    let socketPath: String
    let timeout: TimeInterval

    private static let requests = Counter(label: "postern_authproxyd_requests_total", dimensions: [("result", "ok")])
    private static let failures = [
        "unreachable": Counter(label: "postern_authproxyd_requests_total", dimensions: [("result", "unreachable")]),
        "timeout": Counter(label: "postern_authproxyd_requests_total", dimensions: [("result", "timeout")]),
        "closed": Counter(label: "postern_authproxyd_requests_total", dimensions: [("result", "closed")]),
        "protocol": Counter(label: "postern_authproxyd_requests_total", dimensions: [("result", "protocol")]),
    ]

    /// Sends `request` and waits for the reply, off the cooperative thread pool (the socket calls
    /// block, each for at most the time left before the deadline).
    func send(_ request: AuthProxyRequest) async -> Result<AuthProxyReply, AuthProxyClientError> {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<AuthProxyReply, AuthProxyClientError>, Never>) in
            DispatchQueue.global().async { continuation.resume(returning: self.sendBlocking(request)) }
        }
        switch result {
        case .success: Self.requests.increment()
        case .failure(.unreachable): Self.failures["unreachable"]?.increment()
        case .failure(.timeout): Self.failures["timeout"]?.increment()
        case .failure(.closed): Self.failures["closed"]?.increment()
        case .failure(.protocolError): Self.failures["protocol"]?.increment()
        }
        return result
    }

    func sendBlocking(_ request: AuthProxyRequest) -> Result<AuthProxyReply, AuthProxyClientError> {
        let deadline = Date().addingTimeInterval(timeout)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .failure(.unreachable("socket: \(String(cString: strerror(errno)))")) }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let path = Array(socketPath.utf8)
        guard path.count < MemoryLayout.size(ofValue: address.sun_path) else { return .failure(.unreachable("socket path too long")) }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in path.enumerated() { raw[i] = b }
            raw[path.count] = 0
        }
        setTimeout(fd, deadline)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else { return .failure(.unreachable("\(socketPath): \(String(cString: strerror(errno)))")) }

        let frame = request.encoded()
        var sent = 0
        while sent < frame.count {
            guard setTimeout(fd, deadline) else { return .failure(.timeout) }
            let n = frame[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(errno == EAGAIN || errno == EWOULDBLOCK ? .timeout : .closed)
            }
            sent += n
        }
        var decoder = AuthProxyFrameDecoder()
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            do {
                if let reply = try decoder.next() { return Result { try AuthProxyReply(reply) }.mapError { .protocolError("\($0)") } }
            } catch {
                return .failure(.protocolError("\(error)"))
            }
            guard setTimeout(fd, deadline) else { return .failure(.timeout) }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(errno == EAGAIN || errno == EWOULDBLOCK ? .timeout : .closed)
            }
            if n == 0 { return .failure(.closed) }
            decoder.append(buffer[0..<n])
        }
    }

    /// Sets the socket's send and receive timeouts to what is left before `deadline`; false when
    /// nothing is left.
    @discardableResult
    private func setTimeout(_ fd: CInt, _ deadline: Date) -> Bool {
        let left = deadline.timeIntervalSinceNow
        guard left > 0 else { return false }
        var tv = timeval(tv_sec: Int(left), tv_usec: Int((left - Double(Int(left))) * 1_000_000))
        if tv.tv_sec == 0 && tv.tv_usec == 0 { tv.tv_usec = 1000 }
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        return true
    }
}
