import Foundation
import PluginAPI
import PosternHost
import PosternTestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

// The built plugins loaded as a worker loads them, and the real peers the transports talk to:
// a throw-away Postfix (as root), Postfix's smtp-sink, and `postern serve` for LMTP.

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Whether something accepts TCP connections on `address`:`port`.
func acceptsTCP(_ address: String, _ port: Int) -> Bool {
    let fd = socket(AF_INET, CInt(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr(address)
    addr.sin_port = UInt16(port).bigEndian
    return withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    } == 0
}

/// Waits until `condition` holds or `seconds` pass; returns whether it held.
func waitUntil(_ seconds: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(20_000)
    }
    return condition()
}

/// `libPosternDNS.so` and `libPosternSMTPClient.so` (plus whatever else is asked for), found
/// beside the test bundle, checked and activated in dependency order with config sections
/// validated against their manifests, as a worker does.
final class PluginFixture {
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    let services: HostServices
    private let plugins: PluginLifecycle

    /// `serving`: start the plugins after activating them, as a worker does (the queue delivers).
    init(_ sections: [String: [String: ConfigValue]], dataDirectory: String = NSTemporaryDirectory(), serving: Bool = false) throws {
        PosternMetrics.bootstrap()
        services = HostServices(tls: try HostTLS(listeners: []))
        let (loaded, refused) = PluginLoader(configuredPath: []).loadAll(Array(sections.keys).sorted())
        if let refusal = refused.first { throw TestFailure("plugin refused: \(refusal)") }
        plugins = try PluginLifecycle(activating: loaded, role: "all-in-one", dataDirectory: dataDirectory, sections: sections,
                                      group: Self.group, services: services)
        if serving { try plugins.start(logger: Logger(label: "fixture")) }
    }

    /// The transports with `[plugin.dns]` asking `nameserver` and `smtpClient` as `[plugin.smtp-client]`.
    convenience init(nameserver: String, smtpClient: [String: ConfigValue]) throws {
        try self.init(["dns": ["nameservers": .array([.string(nameserver)]), "timeout": .string("2s"), "attempts": .integer(1)],
                       "smtp-client": smtpClient])
    }

    var smtp: any Transport { services.transport(named: "smtp")! }
    var lmtp: any Transport { services.transport(named: "lmtp")! }

    deinit { plugins.shutdown() }
}

/// `postern serve -c CONFIG` run in `dir`, its output in `dir/postern.log`; `stop()` asks it to
/// stop (`postern ctl stop`) and waits for it.
final class PosternServe {
    let config: String
    let dir: String
    private let process = Process()

    init(config: String, in dir: String) throws {
        self.config = config
        self.dir = dir
        process.executableURL = URL(fileURLWithPath: Build.postern)
        process.arguments = ["serve", "-c", config]
        process.currentDirectoryURL = URL(fileURLWithPath: dir)
        let log = dir + "/postern.log"
        FileManager.default.createFile(atPath: log, contents: nil)
        process.standardOutput = FileHandle(forWritingAtPath: log)
        process.standardError = FileHandle(forWritingAtPath: log)
        try process.run()
    }

    /// What the server has logged so far.
    var log: String { (try? String(contentsOfFile: dir + "/postern.log", encoding: .utf8)) ?? "" }

    func stop() {
        _ = Build.run(Build.postern, ["ctl", "stop", "-c", config], cwd: dir)
        process.waitUntilExit()
    }
}

/// The client's outbound counters on this process's metrics exposition.
func outboundSessions(tls: Bool) -> Int {
    let line = PosternMetrics.exposition().split(separator: "\n").first {
        $0.hasPrefix("postern_outbound_sessions_total{") && $0.contains("transport=\"smtp\"") && $0.contains("tls=\"\(tls ? "yes" : "no")\"")
    }
    return line.flatMap { Double($0.split(separator: " ").last!) }.map { Int($0) } ?? 0
}

/// A message file for a `QueuedMessage`.
func queued(_ dir: TempDir, _ bytes: [UInt8], from sender: String = "sender@client.test", to recipients: [String],
            nextHop: String? = nil, envelope: (inout Envelope) -> Void = { _ in }) -> QueuedMessage {
    let path = dir.write("msg-\(UUID().uuidString.prefix(8))", bytes)
    let rcpts = recipients.map { EnvelopeRecipient(address: $0) }
    var env = Envelope(sender: sender, recipients: rcpts)
    envelope(&env)
    return QueuedMessage(id: "TEST\(UUID().uuidString.prefix(6))", envelope: env, path: path, size: bytes.count, pending: rcpts,
                         attempts: 1, nextHop: nextHop)
}

/// A message with the header fields Postfix would otherwise add (so what arrives can be compared).
func testMessage(_ subject: String, body: String = "Hello.\r\n", extraHeader: String = "") -> [UInt8] {
    Array(("From: Sender <sender@client.test>\r\nTo: alice@example.test\r\nSubject: \(subject)\r\n"
           + "Date: Sat, 28 Nov 2026 10:00:00 +0000\r\nMessage-ID: <\(UUID().uuidString)@client.test>\r\n\(extraHeader)\r\n" + body).utf8)
}

/// The message without the trace fields a delivering MTA puts on top, with LF line ends.
func withoutTraceFields(_ bytes: [UInt8]) -> String {
    var lines = String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: "\r\n", with: "\n").components(separatedBy: "\n")
    let trace = ["return-path:", "x-original-to:", "delivered-to:", "received:"]
    var skipping = false
    var out: [String] = []
    var inHeader = true
    for line in lines {
        if inHeader {
            if line.isEmpty { inHeader = false }
            if line.first == " " || line.first == "\t" { if skipping { continue } } else {
                skipping = trace.contains { line.lowercased().hasPrefix($0) }
                if skipping { continue }
            }
        }
        out.append(line)
    }
    lines = out
    return lines.joined(separator: "\n")
}

// MARK: - Postfix

/// A throw-away Postfix instance (Debian package `postfix`, see scripts/install-deps.sh): its own
/// config directory with main.cf and master.cf, its own queue and data directories, `smtpd` on
/// 127.0.0.1 at a free port with STARTTLS (a self-signed certificate for mx.example.test), and
/// delivery of the virtual domain `example.test` into Maildirs under the temporary directory.
/// Started with `postfix -c DIR start`, which needs root (the master drops to the `postfix`
/// user itself); no chroot.
final class PostfixServer {
    let dir: TempDir
    let port: Int
    let domain: String
    let users: [String]
    var certificate: String { dir.path + "/cert.pem" }
    var mailRoot: String { dir.path + "/mail" }
    var log: String { (try? String(contentsOfFile: dir.path + "/maillog", encoding: .utf8)) ?? "(no maillog)" }
    private var running = false

    static var postfix: String { "/usr/sbin/postfix" }

    /// `extraMainCF`: more main.cf lines (a transport map to another host, relay domains).
    init(domain: String = "example.test", users: [String], messageSizeLimit: Int = 10_240_000, extraMainCF: String = "") throws {
        guard FileManager.default.isExecutableFile(atPath: Self.postfix) else {
            throw TestFailure("\(Self.postfix) is missing: scripts/install-deps.sh installs postfix")
        }
        self.domain = domain
        self.users = users
        dir = TempDir("postfix")
        port = freePort()
        let d = dir.path
        let openssl = Build.run("/usr/bin/openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", d + "/key.pem", "-out", d + "/cert.pem",
                                                     "-days", "2", "-subj", "/CN=mx.\(domain)", "-addext", "subjectAltName=DNS:mx.\(domain),IP:127.0.0.1"])
        guard openssl.status == 0 else { throw TestFailure("openssl req failed: \(openssl.output)") }
        guard let postfixUser = getpwnam("postfix")?.pointee, let nobody = getpwnam("nobody")?.pointee else {
            throw TestFailure("the users postfix and nobody must exist (the postfix package creates the first)")
        }
        for sub in ["queue", "data", "mail"] { try FileManager.default.createDirectory(atPath: d + "/" + sub, withIntermediateDirectories: true) }
        chown(d + "/data", postfixUser.pw_uid, postfixUser.pw_gid)
        chown(d + "/mail", nobody.pw_uid, nobody.pw_gid)
        dir.write("vmailbox", users.map { "\($0)@\(domain) \($0)/\n" }.joined())
        dir.write("main.cf", """
            compatibility_level = 3.6
            queue_directory = \(d)/queue
            data_directory = \(d)/data
            mail_owner = postfix
            setgid_group = postdrop
            inet_interfaces = 127.0.0.1
            inet_protocols = ipv4
            myhostname = mx.\(domain)
            mydomain = \(domain)
            mydestination =
            mynetworks = 127.0.0.0/8
            local_header_rewrite_clients =
            message_size_limit = \(messageSizeLimit)
            virtual_mailbox_domains = \(domain)
            virtual_mailbox_base = \(d)/mail
            virtual_mailbox_maps = texthash:\(d)/vmailbox
            virtual_uid_maps = static:\(nobody.pw_uid)
            virtual_gid_maps = static:\(nobody.pw_gid)
            alias_maps =
            alias_database =
            maillog_file = \(d)/maillog
            maillog_file_prefixes = \(d)
            smtpd_tls_cert_file = \(d)/cert.pem
            smtpd_tls_key_file = \(d)/key.pem
            smtpd_tls_security_level = may
            smtpd_tls_received_header = yes
            biff = no
            \(extraMainCF)

            """)
        // One line per service Postfix needs to accept and deliver locally; chroot off ("n").
        dir.write("master.cf", """
            127.0.0.1:\(port) inet n - n - - smtpd
            pickup    unix  n       -       n       60      1       pickup
            cleanup   unix  n       -       n       -       0       cleanup
            qmgr      unix  n       -       n       300     1       qmgr
            tlsmgr    unix  -       -       n       1000?   1       tlsmgr
            rewrite   unix  -       -       n       -       -       trivial-rewrite
            bounce    unix  -       -       n       -       0       bounce
            defer     unix  -       -       n       -       0       bounce
            trace     unix  -       -       n       -       0       bounce
            verify    unix  -       -       n       -       1       verify
            flush     unix  n       -       n       1000?   0       flush
            proxymap  unix  -       -       n       -       -       proxymap
            smtp      unix  -       -       n       -       -       smtp
            showq     unix  n       -       n       -       -       showq
            error     unix  -       -       n       -       -       error
            retry     unix  -       -       n       -       -       error
            discard   unix  -       -       n       -       -       discard
            virtual   unix  -       n       n       -       -       virtual
            anvil     unix  -       -       n       -       1       anvil
            scache    unix  -       -       n       -       1       scache
            postlog   unix-dgram n  -       n       -       1       postlogd

            """)
        let start = Build.run(Self.postfix, ["-c", d, "start"])
        running = true
        guard start.status == 0, waitUntil(30, { acceptsTCP("127.0.0.1", port) }) else {
            stop()
            throw TestFailure("postfix did not start on 127.0.0.1:\(port) (status \(start.status)) \(start.output)\n\(log)")
        }
    }

    func stop() {
        guard running else { return }
        running = false
        Build.run(Self.postfix, ["-c", dir.path, "stop"])
        _ = waitUntil(10) { !acceptsTCP("127.0.0.1", port) }
    }

    /// Starts it again after `stop()` (same ports, same queue).
    func restart() throws {
        guard !running else { return }
        let start = Build.run(Self.postfix, ["-c", dir.path, "start"])
        running = true
        guard start.status == 0, waitUntil(30, { acceptsTCP("127.0.0.1", port) }) else {
            throw TestFailure("postfix did not restart: \(start.output)\n\(log)")
        }
    }

    deinit { stop() }

    /// The messages in `user`'s Maildir (new/), each as stored.
    func messages(of user: String) -> [[UInt8]] {
        let new = "\(mailRoot)/\(user)/new"
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: new)) ?? []).sorted()
        return names.compactMap { FileManager.default.contents(atPath: "\(new)/\($0)").map { Array($0) } }
    }

    /// The message of `user` whose text contains `marker` (a Message-ID), once it has arrived.
    func message(of user: String, containing marker: String, within seconds: Double = 15) async -> [UInt8]? {
        let deadline = Date().addingTimeInterval(seconds)
        repeat {
            if let found = messages(of: user).first(where: { String(decoding: $0, as: UTF8.self).contains(marker) }) { return found }
            try? await Task.sleep(nanoseconds: 50_000_000)
        } while Date() < deadline
        let new = "\(mailRoot)/\(user)/new"
        do {
            let names = try FileManager.default.contentsOfDirectory(atPath: new)
            print("no message with \(marker) among \(names.count) in \(new): \(messages(of: user).map { String(decoding: $0.prefix(800), as: UTF8.self) })")
        } catch {
            print("cannot list \(new): \(error)")
        }
        return nil
    }
}

/// The Message-ID of a test message, to find it again on the other side.
func messageID(_ bytes: [UInt8]) -> String {
    let text = String(decoding: bytes, as: UTF8.self)
    guard let range = text.range(of: "Message-ID: ") else { return "" }
    // "\r\n" is one Character: it is neither "\r" nor "\n".
    return String(text[range.upperBound...].prefix { !$0.isNewline })
}

// MARK: - smtp-sink

/// Postfix's `smtp-sink` test server as a child process on `address`:`port`, dumping each
/// transaction into a file under its directory (`-d`). `options` make it refuse or drop commands,
/// or leave out extensions (see `man smtp-sink`). Needs no root, except that as root it must be
/// told a user to run as (`-u nobody`).
final class SMTPSink {
    let dir: TempDir
    let address: String
    let port: Int
    private let process = Process()
    private let logPath: String

    struct Transaction {
        /// The `X-Mail-Args:` and `X-Rcpt-Args:` lines smtp-sink records.
        var mailArguments: String
        var recipientArguments: [String]
        var heloArguments: String?
        /// The message as received, with LF line ends (the dump's).
        var message: String
    }

    init(address: String = "127.0.0.1", port: Int, options: [String] = []) throws {
        let binary = "/usr/sbin/smtp-sink"
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw TestFailure("\(binary) is missing: scripts/install-deps.sh installs postfix, which ships it")
        }
        self.address = address
        self.port = port
        dir = TempDir("smtp-sink")
        try FileManager.default.createDirectory(atPath: dir.path + "/dump", withIntermediateDirectories: true)
        var asUser: [String] = []
        if getuid() == 0, let nobody = getpwnam("nobody")?.pointee {
            chown(dir.path + "/dump", nobody.pw_uid, nobody.pw_gid)
            asUser = ["-u", "nobody"]
        }
        logPath = dir.path + "/sink.log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = asUser + options + ["-d", dir.path + "/dump/%M.", "\(address):\(port)", "20"]
        let log = FileHandle(forWritingAtPath: logPath)
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        guard waitUntil(20, { acceptsTCP(address, port) }) else {
            stop()
            throw TestFailure("smtp-sink did not start on \(address):\(port): \(self.log)")
        }
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Every transaction dumped so far.
    func transactions() -> [Transaction] {
        let dump = dir.path + "/dump"
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: dump)) ?? []).sorted()
        return names.compactMap { name in
            guard let data = FileManager.default.contents(atPath: "\(dump)/\(name)") else { return nil }
            return Self.parse(String(decoding: data, as: UTF8.self))
        }
    }

    /// Splits a dump file: smtp-sink's own `X-` records and its three-line `Received:`, then the
    /// message, then one empty line.
    static func parse(_ text: String) -> Transaction? {
        var lines = text.replacingOccurrences(of: "\r\n", with: "\n").components(separatedBy: "\n")
        var mail = "", helo: String?
        var rcpts: [String] = []
        while let line = lines.first, !line.hasPrefix("Received:") {
            lines.removeFirst()
            if line.hasPrefix("X-Mail-Args: ") { mail = String(line.dropFirst(13)) }
            if line.hasPrefix("X-Rcpt-Args: ") { rcpts.append(String(line.dropFirst(13))) }
            if line.hasPrefix("X-Helo-Args: ") { helo = String(line.dropFirst(13)) }
        }
        guard !lines.isEmpty else { return nil }
        lines.removeFirst()
        while let line = lines.first, line.first == " " || line.first == "\t" { lines.removeFirst() }
        // The file ends with the message's last line end, the dump's empty line and its line end.
        var message = lines.joined(separator: "\n")
        if message.hasSuffix("\n\n") { message.removeLast() }
        return Transaction(mailArguments: mail, recipientArguments: rcpts, heloArguments: helo, message: message)
    }

    /// Waits for `count` transactions.
    func waitForTransactions(_ count: Int, within seconds: Double = 10) -> [Transaction] {
        _ = waitUntil(seconds) { transactions().count >= count }
        return transactions()
    }

    /// SIGKILL: a sink started from the test process may inherit a signal mask that blocks
    /// SIGTERM (seen: a sink that outlived its test, and the test waiting for it).
    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    deinit { stop() }
}

// MARK: - unbound zones

/// Test zones served by a throw-away unbound: MX records pointing at loopback addresses, where
/// 127.0.0.1 runs a peer and 127.0.0.2/127.0.0.3 (also loopback on Linux) run nothing unless a
/// test starts a sink there.
enum TestZones {
    static let lines = [
        #"local-zone: "example.test." static"#,
        #"local-data: "example.test. 300 IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 60""#,
        #"local-data: "example.test. 300 IN MX 10 mx.example.test.""#,
        #"local-data: "mx.example.test. 300 IN A 127.0.0.1""#,
        // The first MX (127.0.0.2) does not answer; the second is the real one.
        #"local-zone: "backup.test." static"#,
        #"local-data: "backup.test. 300 IN MX 10 down.backup.test.""#,
        #"local-data: "backup.test. 300 IN MX 20 mx.example.test.""#,
        #"local-data: "down.backup.test. 300 IN A 127.0.0.2""#,
        // Every MX down.
        #"local-zone: "dead.test." static"#,
        #"local-data: "dead.test. 300 IN MX 10 a.dead.test.""#,
        #"local-data: "dead.test. 300 IN MX 20 b.dead.test.""#,
        #"local-data: "a.dead.test. 300 IN A 127.0.0.2""#,
        #"local-data: "b.dead.test. 300 IN A 127.0.0.3""#,
        // No MX: the implicit MX is the domain's own address.
        #"local-zone: "implicit.test." static"#,
        #"local-data: "implicit.test. 300 IN SOA ns.implicit.test. hostmaster.implicit.test. 1 3600 600 86400 60""#,
        #"local-data: "implicit.test. 300 IN A 127.0.0.1""#,
        // A null MX (RFC 7505); and a zone where names do not exist (NXDOMAIN).
        #"local-zone: "nullmx.test." static"#,
        #"local-data: "nullmx.test. 300 IN MX 0 .""#,
        #"local-zone: "missing.test." static"#,
        #"local-data: "missing.test. 300 IN SOA ns.missing.test. hostmaster.missing.test. 1 3600 600 86400 60""#,
        // A greeting that refuses (127.0.0.2 runs a sink answering 4xx) before the good host.
        #"local-zone: "greylist.test." static"#,
        #"local-data: "greylist.test. 300 IN MX 10 refusing.greylist.test.""#,
        #"local-data: "greylist.test. 300 IN MX 20 good.greylist.test.""#,
        #"local-data: "refusing.greylist.test. 300 IN A 127.0.0.2""#,
        #"local-data: "good.greylist.test. 300 IN A 127.0.0.1""#,
    ].map { "  " + $0 }.joined(separator: "\n")
}
