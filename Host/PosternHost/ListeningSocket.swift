import Foundation
import PluginAPI

/// Listening sockets owned by the master and inherited by workers.
public enum ListeningSocket {
    /// Binds and listens on address:port; close-on-exec (the spawner passes it on explicitly).
    public static func bind(address: String, port: Int, backlog: Int) throws -> CInt {
        var v4 = sockaddr_in()
        var v6 = sockaddr_in6()
        let family: CInt
        if inet_pton(AF_INET, address, &v4.sin_addr) == 1 {
            family = AF_INET
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = in_port_t(UInt16(port).bigEndian)
        } else if inet_pton(AF_INET6, address, &v6.sin6_addr) == 1 {
            family = AF_INET6
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = in_port_t(UInt16(port).bigEndian)
        } else {
            throw SystemError.message("\(address) is not an IP address")
        }
        let fd = socket(family, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError.call("socket", errno) }
        var one: CInt = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size))
        if family == AF_INET6 { setsockopt(fd, CInt(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<CInt>.size)) }
        let rc: CInt = family == AF_INET
            ? withUnsafePointer(to: &v4) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            : withUnsafePointer(to: &v6) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        guard rc == 0 else {
            let err = errno
            close(fd)
            throw SystemError.call("bind \(address):\(port)", err)
        }
        guard listen(fd, CInt(backlog)) == 0 else {
            let err = errno
            close(fd)
            throw SystemError.call("listen \(address):\(port)", err)
        }
        return fd
    }

    /// Binds and listens on a Unix socket, replacing a stale socket file (one nobody listens on).
    public static func bindUnix(path: String, mode: mode_t, backlog: Int) throws -> CInt {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw SystemError.message("socket path too long: \(path)") }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let fd = socket(AF_UNIX, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError.call("socket", errno) }
        let size = socklen_t(MemoryLayout<sockaddr_un>.size)
        let connectable = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, size) } } == 0
        if connectable {
            close(fd)
            throw SystemError.message("\(path) is in use by another process")
        }
        let fresh = socket(AF_UNIX, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        close(fd)
        guard fresh >= 0 else { throw SystemError.call("socket", errno) }
        unlink(path)
        let rc = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fresh, $0, size) } }
        guard rc == 0 else {
            let err = errno
            close(fresh)
            throw SystemError.call("bind \(path)", err)
        }
        chmod(path, mode)
        guard listen(fresh, CInt(backlog)) == 0 else {
            let err = errno
            close(fresh)
            throw SystemError.call("listen \(path)", err)
        }
        return fresh
    }

    /// Whether address:port could be bound now (for `check-config`).
    public static func probeAvailable(address: String, port: Int) -> String? {
        do {
            let fd = try bind(address: address, port: port, backlog: 1)
            close(fd)
            return nil
        } catch {
            return "\(error)"
        }
    }
}
