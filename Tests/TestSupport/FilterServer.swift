import Foundation
import PosternHost

/// A `postern serve` for filter tests: the store, the queue, SASL PLAIN, the filter plugins the
/// test configures, and smtp listeners each with its own options (its `filters` list among
/// them). Remote mail stays in the queue (no smtp-client is loaded), where the tests read it
/// byte for byte.
public struct FilterServer {
    public let dir: TempDir
    public let ports: [String: Int]
    public let metricsPort = freePort()
    public let server: ServerProcess

    /// `plugins`: the config sections of the filter plugins and of what they use (`[plugin.dns]`,
    /// say), as TOML; `listeners`: each listener's name and `[listener.options]` lines.
    public init(_ name: String, plugins: String, listeners: [(name: String, options: String)]) throws {
        let dir = TempDir(name)
        self.dir = dir
        let (config, ports) = Self.config(metricsPort: metricsPort, plugins: plugins, listeners: listeners)
        self.ports = ports
        server = try ServerProcess.start(dir, config)
        for args in [["domain", "add", "example.org"], ["user", "add", "alice@example.org", "--password", "alice-pw"]] {
            let (code, output) = Build.run(Build.postern, ["admin"] + args + ["-c", server.configFile], cwd: dir.path)
            guard code == 0 else { throw SystemError.message("postern admin \(args): \(output)") }
        }
    }

    /// The server's config, and the port it gives each listener: also for a test that only checks a
    /// config (`postern check-config`) or starts a server it expects to fail.
    public static func config(metricsPort: Int = freePort(), plugins: String,
                              listeners: [(name: String, options: String)]) -> (text: String, ports: [String: Int]) {
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
        config += plugins + "\n"
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
        return (config, ports)
    }

    /// Sends one command line and returns the last line of its (possibly multi-line) reply.
    public static func command(_ client: LineClient, _ line: String) throws -> String {
        try client.send(line)
        return try reply(client)
    }

    /// The last line of the next reply.
    public static func reply(_ client: LineClient) throws -> String {
        while true {
            let line = try client.readLine()
            if line.count < 4 || line[line.index(line.startIndex, offsetBy: 3)] != "-" { return line }
        }
    }

    /// The master's `/metrics` exposition (every worker's samples merged in).
    public func metrics() throws -> String { try httpGet(port: metricsPort, path: "/metrics") }

    /// Stops the server and removes its directory (a test class keeps its server in a static,
    /// which is never deinitialised).
    public func stop() {
        server.stop()
        try? FileManager.default.removeItem(atPath: dir.path)
    }

    /// Sends `message` (LF line ends, sent as CRLF) with Python's smtplib, logged in as alice when
    /// `login`, from `source` (any 127/8 address) when given; returns the reply to each command as a
    /// line: `MAIL 250 ...`, `DATA 554 5.7.1 ...`, or `MAIL closed ...`.
    public func send(_ listener: String, from: String = "sender@remote.example", to: [String] = ["rcpt@remote.example"],
                     message: String, login: Bool = false, source: String? = nil) throws -> String {
        try send(listener, from: from, to: to, message: Array(message.replacingOccurrences(of: "\n", with: "\r\n").utf8),
                 login: login, source: source)
    }

    /// Sends `message` as it is (CRLF line ends already), as `send(_:from:to:message:login:source:)`.
    public func send(_ listener: String, from: String = "sender@remote.example", to: [String] = ["rcpt@remote.example"],
                     message: [UInt8], login: Bool = false, source: String? = nil) throws -> String {
        let script = dir.write("send-\(UUID().uuidString.prefix(6)).py", """
            import smtplib, sys
            source = (sys.argv[4], 0) if sys.argv[4] else None
            s = smtplib.SMTP("127.0.0.1", \(ports[listener]!), timeout=60, source_address=source)
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
        let file = dir.write("message-\(UUID().uuidString.prefix(6)).eml", message)
        let (_, output) = Build.run(try Build.tool("python3"), [script, from, to.joined(separator: ","), file, source ?? ""])
        return output
    }

    /// Every queued message, raw, as `postern queue show` prints it.
    public func queued() throws -> [[UInt8]] { try queuedEntries().map(\.message) }

    /// Every queue entry as `postern queue list --json` gives it, with its message.
    public func queuedEntries() throws -> [(summary: [String: Any], message: [UInt8])] {
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

    /// The first queue entry whose message contains `marker` (a subject or body text the test
    /// made its own), or nil.
    public func queuedEntry(containing marker: String) throws -> (summary: [String: Any], message: [UInt8])? {
        try queuedEntries().first { String(decoding: $0.message, as: UTF8.self).contains(marker) }
    }
}
