import Foundation
import PosternHost
import PosternTestSupport
import XCTest

/// A `postern serve` with the store, the queue and the content filter plugins, and smtp
/// listeners each with its own options (its `filters` list and `direction`). Remote mail stays in
/// the queue (no smtp-client is loaded), where the tests read it byte for byte.
struct ContentFilterServer {
    let dir: TempDir
    let ports: [String: Int]
    let server: ServerProcess

    /// `plugins`: the filter plugins' sections; `listeners`: each listener's name and
    /// `[listener.options]` lines.
    init(_ name: String, plugins: String, listeners: [(name: String, options: String)]) throws {
        let dir = TempDir(name)
        self.dir = dir
        var ports: [String: Int] = [:]
        var config = """
            data_dir = "./var"
            workers = 1
            [plugin.store-sqlite]
            [plugin.queue]
            min_backoff = "1h"
            max_backoff = "1h"
            [plugin.smtp]
            hostname = "mx.test.example"

            """ + plugins
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
    }

    /// Stops the server and removes its directory (a test class keeps its server in a static,
    /// which is never deinitialised).
    func stop() {
        server.stop()
        try? FileManager.default.removeItem(atPath: dir.path)
    }

    /// Sends `message` (LF line ends, sent as CRLF) with Python's smtplib; returns the reply to
    /// each command as lines: `MAIL 250 ...`, `RCPT 250 ...`, `DATA 550 5.7.1 ...`.
    func send(_ listener: String, from: String, to: [String] = ["rcpt@remote.example"], message: String) throws -> String {
        let script = dir.write("send-\(UUID().uuidString.prefix(6)).py", """
            import smtplib, sys
            s = smtplib.SMTP("127.0.0.1", \(ports[listener]!), timeout=60)
            s.ehlo("client.test.example")
            code, text = s.mail(sys.argv[1])
            print("MAIL", code, text.decode())
            for r in sys.argv[2].split(","):
                code, text = s.rcpt(r)
                print("RCPT", code, text.decode())
            try:
                code, text = s.data(open(sys.argv[3], "rb").read())
            except smtplib.SMTPResponseException as e:
                code, text = e.smtp_code, e.smtp_error
            print("DATA", code, text.decode())
            s.quit()
            """)
        let file = dir.write("message-\(UUID().uuidString.prefix(6)).eml", message.replacingOccurrences(of: "\n", with: "\r\n"))
        return Build.run(try Build.tool("python3"), [script, from, to.joined(separator: ","), file]).output
    }

    /// Every queue entry as `postern queue list --json` gives it, with its message as `queue show` prints it.
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
