import Foundation
import PosternHost
import PosternTestSupport
import XCTest

/// A `postern serve` with the store, the queue, the DNS resolver (asking a throw-away unbound
/// that serves the block list zones below), the filter-rules plugin, and smtp listeners running
/// the `rules` filter. Remote mail stays in the queue (no smtp-client is loaded), where the tests
/// read it byte for byte.
struct RulesServer {
    let dir: TempDir
    let ports: [String: Int]
    let server: ServerProcess

    /// The block lists: 127.0.0.2 is listed in dnsbl.test (RFC 5782 §5's test entry), 127.0.0.3
    /// is not; spam.example is listed in uribl.test.
    static let zones: String = [
        #"local-zone: "dnsbl.test." static"#,
        #"local-data: "dnsbl.test. 300 IN SOA ns.dnsbl.test. hostmaster.dnsbl.test. 1 3600 600 86400 30""#,
        #"local-data: "2.0.0.127.dnsbl.test. 300 IN A 127.0.0.2""#,
        #"local-zone: "uribl.test." static"#,
        #"local-data: "uribl.test. 300 IN SOA ns.uribl.test. hostmaster.uribl.test. 1 3600 600 86400 30""#,
        #"local-data: "spam.example.uribl.test. 300 IN A 127.0.0.2""#,
    ].map { "  " + $0 }.joined(separator: "\n")

    /// `plugin`: the lines of `[plugin.filter-rules]` and its sets; `listeners`: each listener's
    /// name and `[listener.options]` lines.
    init(_ name: String, dns: UnboundServer, plugin: String, listeners: [(name: String, options: String)]) throws {
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
            [plugin.dns]
            nameservers = ["\(dns.address)"]
            [plugin.smtp]
            hostname = "mx.test.example"
            [plugin.filter-rules]
            \(plugin)

            """
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
                filters = ["rules"]
                \(listener.options)

                """
        }
        self.ports = ports
        server = try ServerProcess.start(dir, config)
    }

    func stop() {
        server.stop()
        try? FileManager.default.removeItem(atPath: dir.path)
    }

    /// Sends `message` (LF line ends, sent as CRLF) with Python's smtplib from `source` (any
    /// 127/8 address); returns each reply as a line: `MAIL 250 ...`, `DATA 550 5.7.1 ...`.
    func send(_ listener: String, from: String = "sender@remote.example", to: [String], message: String,
              source: String = "127.0.0.1") throws -> String {
        let script = dir.write("send-\(UUID().uuidString.prefix(6)).py", """
            import smtplib, sys
            s = smtplib.SMTP("127.0.0.1", \(ports[listener]!), timeout=60, source_address=(sys.argv[4], 0))
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
        let file = dir.write("message-\(UUID().uuidString.prefix(6)).eml", Self.crlf(message))
        let (_, output) = Build.run(try Build.tool("python3"), [script, from, to.joined(separator: ","), file, source])
        return output
    }

    static func crlf(_ text: String) -> String { text.replacingOccurrences(of: "\n", with: "\r\n") }

    /// Every queue entry as `postern queue list --json` gives it, with its message as queued.
    func queued() throws -> [(summary: [String: Any], message: String)] {
        let (code, output) = Build.run(Build.postern, ["queue", "list", "--json", "-c", server.configFile], cwd: dir.path)
        guard code == 0, let list = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [[String: Any]] else {
            throw SystemError.message("postern queue list: \(output)")
        }
        return list.map { entry in
            let id = entry["id"] as? String ?? ""
            let bytes = Build.runBytes(Build.postern, ["queue", "show", id, "-c", server.configFile], cwd: dir.path,
                                       environment: ProcessInfo.processInfo.environment).stdout
            return (entry, String(decoding: bytes, as: UTF8.self))
        }
    }

    /// The queued message for `recipient` whose text contains `marker` (each test's own).
    func queued(containing marker: String) throws -> (summary: [String: Any], message: String)? {
        try queued().first { $0.message.contains(marker) }
    }

    /// A message with every field a real client writes, so that the default rules stay quiet.
    static func message(subject: String, body: String, extraFields: String = "") -> String {
        """
        Date: Mon, 7 Dec 2026 10:00:00 +0000
        Message-ID: <\(UUID().uuidString)@client.test.example>
        From: Sender <sender@remote.example>
        To: rcpt@a.example
        Subject: \(subject)
        \(extraFields)MIME-Version: 1.0
        Content-Type: text/plain; charset=utf-8

        \(body)

        """
    }

    /// The queued text minus the Received field Postern put first (it may be folded).
    static func withoutReceived(_ queued: String) -> String {
        guard queued.hasPrefix("Received:") else { return queued }
        var rest = queued[...]
        repeat {
            guard let end = rest.range(of: "\r\n") else { return "" }
            rest = rest[end.upperBound...]
        } while rest.hasPrefix(" ") || rest.hasPrefix("\t")
        return String(rest)
    }
}
