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

/// A `postern serve` with the store, the queue, SASL PLAIN and the milter plugin, and smtp
/// listeners each with its own options (its `filters` list among them). Remote mail stays in the
/// queue (no smtp-client is loaded), where the tests read it byte for byte.
struct MilterServer {
    let dir: TempDir
    let ports: [String: Int]
    let metricsPort = freePort()
    let server: ServerProcess

    /// `milters`: `[plugin.milter.milters.NAME]` bodies by name; `listeners`: each listener's name
    /// and `[listener.options]` lines.
    init(_ name: String, milters: [String: String], listeners: [(name: String, options: String)]) throws {
        let dir = TempDir(name)
        self.dir = dir
        var ports: [String: Int] = [:]
        var config = """
            data_dir = "./var"
            workers = 1
            [metrics]
            listen = "127.0.0.1:\(metricsPort)"
            [plugin.store-sqlite]
            [plugin.sasl-plain]
            [plugin.queue]
            min_backoff = "1h"
            max_backoff = "1h"
            [plugin.smtp]
            hostname = "mx.test.example"

            """
        for (milter, body) in milters.sorted(by: { $0.key < $1.key }) {
            config += "[plugin.milter.milters.\(milter)]\n\(body)\n"
        }
        for listener in listeners {
            let port = freePort()
            ports[listener.name] = port
            config += """
                [[listener]]
                name = "\(listener.name)"
                address = "127.0.0.1"
                port = \(port)
                protocol = "smtp"
                [listener.options]
                trust_loopback = true
                \(listener.options)

                """
        }
        self.ports = ports
        server = try ServerProcess.start(dir, config)
        for args in [["domain", "add", "example.org"], ["user", "add", "alice@example.org", "--password", "alice-pw"]] {
            let (code, output) = Build.run(Build.postern, ["admin"] + args + ["-c", server.configFile], cwd: dir.path)
            guard code == 0 else { throw SystemError.message("postern admin \(args): \(output)") }
        }
    }

    /// Sends one command line and returns the last line of its (possibly multi-line) reply.
    static func command(_ client: LineClient, _ line: String) throws -> String {
        try client.send(line)
        return try reply(client)
    }

    /// The last line of the next reply.
    static func reply(_ client: LineClient) throws -> String {
        while true {
            let line = try client.readLine()
            if line.count < 4 || line[line.index(line.startIndex, offsetBy: 3)] != "-" { return line }
        }
    }

    /// The master's `/metrics` exposition (every worker's samples merged in).
    func metrics() throws -> String { try httpGet(port: metricsPort, path: "/metrics") }

    /// Stops the server and removes its directory (a test class keeps its server in a static,
    /// which is never deinitialised).
    func stop() {
        server.stop()
        try? FileManager.default.removeItem(atPath: dir.path)
    }

    /// Sends `message` with Python's smtplib; returns the reply to each command as JSON-ish text
    /// lines: `MAIL 250`, `DATA 554 5.7.1 ...`, or `REFUSED ...`.
    func send(_ listener: String, from: String = "sender@remote.example", to: [String] = ["rcpt@remote.example"],
              message: String, login: Bool = false) throws -> String {
        let script = dir.write("send-\(UUID().uuidString.prefix(6)).py", """
            import smtplib, sys
            s = smtplib.SMTP("127.0.0.1", \(ports[listener]!), timeout=60)
            s.ehlo("client.test.example")
            if \(login ? "True" : "False"):
                s.login("alice@example.org", "alice-pw")
            try:
                code, text = s.mail(sys.argv[1])
            except smtplib.SMTPServerDisconnected as e:
                print("MAIL closed", e)
                sys.exit(0)
            print("MAIL", code, text.decode())
            if code != 250:
                sys.exit(0)
            for r in sys.argv[2].split(","):
                code, text = s.rcpt(r)
                print("RCPT", code, text.decode())
            try:
                code, text = s.data(open(sys.argv[3], "rb").read())
            except smtplib.SMTPResponseException as e:
                code, text = e.smtp_code, e.smtp_error
            print("DATA", code, text.decode())
            try:
                s.quit()
            except smtplib.SMTPServerDisconnected:
                pass
            """)
        let file = dir.write("message-\(UUID().uuidString.prefix(6)).eml", message.replacingOccurrences(of: "\n", with: "\r\n"))
        let (_, output) = Build.run(try Build.tool("python3"), [script, from, to.joined(separator: ","), file])
        return output
    }

    /// Every queued message, raw, as `postern queue show` prints it.
    func queued() throws -> [[UInt8]] { try queuedEntries().map(\.message) }

    /// Every queue entry as `postern queue list --json` gives it, with its message.
    func queuedEntries() throws -> [(summary: [String: Any], message: [UInt8])] {
        let (code, output) = Build.run(Build.postern, ["queue", "list", "--json", "-c", server.configFile], cwd: dir.path)
        guard code == 0, let list = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [[String: Any]] else {
            throw SystemError.message("postern queue list: \(output)")
        }
        return list.map { entry in
            let id = entry["id"] as? String ?? ""
            return (entry, [UInt8](Build.runBytes(Build.postern, ["queue", "show", id, "-c", server.configFile], cwd: dir.path,
                                                  environment: ProcessInfo.processInfo.environment).stdout))
        }
    }
}
