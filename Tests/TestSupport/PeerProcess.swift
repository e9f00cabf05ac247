import Foundation
import PosternHost
import XCTest

// Tests against real peers (milters, clamd, rspamd): the peers as child processes started once
// per test class, with the Postern in front of them (FilterServer).

/// A child process (a milter, clamd, rspamd) with its output in a file, ended when the test class ends.
public final class PeerProcess {
    public let name: String
    public let process = Process()
    public let logFile: String

    /// Starts `executable`; throws (failing the test, never skipping it) when it is not installed
    /// or does not listen on `port` within `timeout` seconds.
    public init(_ name: String, _ executable: String, _ arguments: [String], dir: String, port: Int? = nil, unixSocket: String? = nil,
         timeout: Double = 30) throws {
        self.name = name
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw SystemError.message("\(name): \(executable) is not installed (scripts/install-deps.sh test installs it)")
        }
        logFile = dir + "/\(name).out"
        _ = FileManager.default.createFile(atPath: logFile, contents: nil)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: dir)
        let out = FileHandle(forWritingAtPath: logFile)
        process.standardOutput = out
        process.standardError = out
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let port, case .success(let fd) = connectLoopback(port: port, timeout: 1) {
                close(fd)
                return
            }
            if let unixSocket, FileManager.default.fileExists(atPath: unixSocket) { return }
            if !process.isRunning { break }
            usleep(100_000)
        }
        stop()
        throw SystemError.message("\(name) did not listen on \(unixSocket ?? "127.0.0.1:\(port ?? 0)"):\n\(output)")
    }

    public var output: String { (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "" }

    public func stop() {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit { stop() }
}

/// What a test class with real peers keeps for its run: a work directory, the peers it started, the
/// Postern in front of them, or why its setup failed (every test then fails with that error,
/// never skips).
// @unchecked Sendable: written by the class's setUp, read by its tests, one after the other
public final class PeerRig: @unchecked Sendable {
    public let work: TempDir
    public var peers: [PeerProcess] = []
    public var server: FilterServer?
    public var setupError: (any Error)?

    public init(_ name: String) { work = TempDir(name) }

    /// Runs the class's setup, keeping its server or its error.
    public func start(_ make: () throws -> FilterServer) {
        do { server = try make() } catch { setupError = error }
    }

    public func running() throws -> FilterServer {
        if let setupError { throw setupError }
        return try XCTUnwrap(server)
    }

    /// Stops Postern, then the peers in reverse start order, and removes the work directory (a
    /// static TempDir is never deinitialised).
    public func tearDown() {
        server?.stop()
        peers.reversed().forEach { $0.stop() }
        try? FileManager.default.removeItem(atPath: work.path)
    }
}
