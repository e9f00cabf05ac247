import Foundation
#if canImport(Glibc)
import Glibc
#endif

// Helpers every test target shares: one copy, linked into each test bundle.

/// A temporary directory removed when the test ends.
public final class TempDir {
    public let path: String

    public init(_ name: String) {
        path = NSTemporaryDirectory() + "postern-\(name)-\(UUID().uuidString.prefix(8))"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// Writes `bytes` to `name` in the directory and returns the file's path.
    @discardableResult
    public func write(_ name: String, _ bytes: [UInt8]) -> String {
        let file = path + "/" + name
        precondition(FileManager.default.createFile(atPath: file, contents: Data(bytes)), "cannot write \(file)")
        return file
    }

    /// Writes `text` (UTF-8) to `name` in the directory and returns the file's path.
    @discardableResult
    public func write(_ name: String, _ text: String) -> String {
        write(name, Array(text.utf8))
    }
}

/// A free TCP port on 127.0.0.1 (bound once, then released).
/// Stops a child process: SIGTERM, then SIGKILL when it is still running after `grace` seconds,
/// then reaps it. A child started from an async test is spawned on a libdispatch worker thread
/// and inherits that thread's blocked signal mask, so SIGTERM alone may never reach it (a
/// `terminate(); waitUntilExit()` that waits forever).
public func stopChild(_ process: Process, grace: Double = 5) {
    guard process.isRunning else { return }
    process.terminate()
    let deadline = Date().addingTimeInterval(grace)
    while process.isRunning && Date() < deadline { usleep(20_000) }
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    process.waitUntilExit()
}

public func freePort() -> Int {
    let fd = socket(AF_INET, CInt(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return Int(UInt16(bigEndian: addr.sin_port))
}

// The tools' runtime (AdminContext, FirstRun's preparation), for every test that imports this.
@_exported import PosternCommands
