import Foundation
import PosternHost
import PosternTestSupport
import XCTest

// The milters the tests talk to, each a real program started on loopback with a config the test
// writes, and the Postern side: a server with the milter plugin and its listeners.

/// A child process (a milter, clamd, rspamd) with its output in a file, ended when the test class ends.
final class PeerProcess {
    let name: String
    let process = Process()
    let logFile: String

    /// Starts `executable`; throws (failing the test, never skipping it) when it is not installed
    /// or does not listen on `port` within `timeout` seconds.
    init(_ name: String, _ executable: String, _ arguments: [String], dir: String, port: Int? = nil, unixSocket: String? = nil,
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

    var output: String { (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "" }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit { stop() }
}

/// What a real-milter test class keeps for its run: a work directory, the peers it started, the
/// Postern in front of them, or why its setup failed (every test then fails with that error,
/// never skips).
// @unchecked Sendable: written by the class's setUp, read by its tests, one after the other
/// The milter plugin's server: each milter a `[plugin.milter.milters.NAME]` section.
typealias MilterServer = FilterServer

extension FilterServer {
    /// `milters`: `[plugin.milter.milters.NAME]` bodies by name.
    init(_ name: String, milters: [String: String], listeners: [(name: String, options: String)]) throws {
        let config = milters.sorted(by: { $0.key < $1.key }).map { "[plugin.milter.milters.\($0.key)]\n\($0.value)\n" }.joined()
        try self.init(name, plugins: config, listeners: listeners)
    }
}

final class PeerRig: @unchecked Sendable {
    let work: TempDir
    var peers: [PeerProcess] = []
    var server: MilterServer?
    var setupError: (any Error)?

    init(_ name: String) { work = TempDir(name) }

    func running() throws -> MilterServer {
        if let setupError { throw setupError }
        return try XCTUnwrap(server)
    }

    /// Stops Postern, then the peers in reverse start order, and removes the work directory (a
    /// static TempDir is never deinitialised).
    func tearDown() {
        server?.stop()
        peers.reversed().forEach { $0.stop() }
        try? FileManager.default.removeItem(atPath: work.path)
    }
}

