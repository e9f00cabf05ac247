import Foundation
import PosternTestSupport
import PosternHost
import XCTest

/// A new user's first start, on the shipped `Config/all-in-one.toml` (only its ports moved to free
/// ones): the first account is created with a generated password, a self-signed certificate is
/// made, and clients that insist on TLS log in trusting that certificate: msmtp (`tls on`,
/// `auth on`), fetchmail with its defaults (STARTTLS when offered, certificate checked) and mbsync
/// (`SSLType STARTTLS`).
final class FirstRunTests: XCTestCase {
    /// The default config with every `port = N` and the metrics address moved to free ports; the
    /// data directory inside the test's directory.
    static func defaultConfig(ports: inout [Int: Int]) throws -> String {
        let text = try shippedConfig("all-in-one.toml", ports: &ports)
        XCTAssertTrue(text.contains("tls = \"starttls\""), "the default config offers STARTTLS")
        return text
    }

    func testDefaultConfigFirstStartServesTLSClientsWithTheFirstAccount() throws {
        let dir = TempDir("first-run")
        var ports: [Int: Int] = [:]
        let config = try Self.defaultConfig(ports: &ports)
        let server = try ServerProcess.start(dir, config)
        defer { server.stop() }
        let submission = try XCTUnwrap(ports[2587]), pop3 = try XCTUnwrap(ports[2110]), imap = try XCTUnwrap(ports[2143])

        // The account and where its password went, said in the log; the file is the owner's only.
        XCTAssertTrue(server.log.contains("first run: created the domain "), server.log)
        let file = dir.path + "/var/first-account.txt"
        var st = stat()
        XCTAssertEqual(stat(file, &st), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o600)
        let lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 2)
        let login = lines[0], password = lines[1]
        XCTAssertTrue(login.hasPrefix("postmaster@"), login)
        XCTAssertGreaterThanOrEqual(password.count, 20)
        let certificate = dir.path + "/var/tls/self-signed.crt"
        XCTAssertTrue(FileManager.default.fileExists(atPath: certificate))
        XCTAssertTrue(server.log.contains("TLS: made a self-signed certificate"), server.log)
        XCTAssertEqual(stat(dir.path + "/var/tls/self-signed.key", &st), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o600)

        // msmtp: STARTTLS required, the certificate verified against that file, then AUTH.
        let msmtprc = dir.write("msmtprc", """
            account first
            host 127.0.0.1
            port \(submission)
            tls on
            tls_starttls on
            tls_trust_file \(certificate)
            auth on
            user \(login)
            password \(password)
            from \(login)
            account default : first
            """)
        chmod(msmtprc, 0o600)
        let message = dir.write("message.txt", "From: \(login)\r\nTo: \(login)\r\nSubject: first mail\r\nMessage-ID: <first@run.test>\r\n\r\nhello from msmtp\r\n")
        let msmtp = Build.run("/bin/sh", ["-c", "\(try Build.tool("msmtp")) -C \(msmtprc) --read-envelope-from -t < \(message)"])
        XCTAssertEqual(msmtp.status, 0, msmtp.output)
        let deadline = Date().addingTimeInterval(20)
        while !Build.run(Build.postern, ["admin", "message", "list", login, "-c", server.configFile], cwd: dir.path).output.contains("<first@run.test>")
                && Date() < deadline { usleep(100_000) }

        // mbsync over STARTTLS, trusting the certificate file.
        let local = dir.path + "/mail"
        try FileManager.default.createDirectory(atPath: local, withIntermediateDirectories: true)
        let mbsyncrc = dir.write("mbsyncrc", """
            IMAPAccount first
            Host 127.0.0.1
            Port \(imap)
            User \(login)
            Pass \(password)
            SSLType STARTTLS
            CertificateFile \(certificate)

            IMAPStore remote
            Account first

            MaildirStore local
            Path \(local)/
            Inbox \(local)/INBOX

            Channel sync
            Far :remote:
            Near :local:
            Patterns INBOX
            Create Near
            SyncState *
            """)
        let mbsync = Build.run(try Build.tool("mbsync"), ["-c", mbsyncrc, "sync"], cwd: dir.path, environment: ["HOME": dir.path])
        XCTAssertEqual(mbsync.status, 0, mbsync.output)
        let synced = ((try? FileManager.default.contentsOfDirectory(atPath: local + "/INBOX/new")) ?? [])
            + ((try? FileManager.default.contentsOfDirectory(atPath: local + "/INBOX/cur")) ?? [])
        XCTAssertEqual(synced.count, 1, "the message msmtp sent, synced by mbsync")

        // fetchmail with its defaults: it upgrades to TLS because the server offers STLS, and
        // checks the certificate (given as the one to trust). It matches DNS names only, not the
        // certificate's IP address, so it is told the name to expect for 127.0.0.1.
        let out = dir.path + "/fetched.mbox"
        let fetchmailrc = dir.write("fetchmailrc", """
            set no syslog
            poll 127.0.0.1 port \(pop3) protocol pop3
              user "\(login)" password "\(password)" is "tester" here
              sslcertfile "\(certificate)"
              sslcommonname "localhost"
              keep
              mda "/bin/sh -c 'cat >> \(out)'"
            """)
        chmod(fetchmailrc, 0o600)
        let fetchmail = Build.run(try Build.tool("fetchmail"), ["-f", fetchmailrc, "--nodetach", "--nosyslog", "-v"], cwd: dir.path,
                                  environment: ["HOME": dir.path, "FETCHMAILHOME": dir.path, "PATH": "/usr/bin:/bin"])
        XCTAssertEqual(fetchmail.status, 0, fetchmail.output)
        XCTAssertTrue(fetchmail.output.contains("STLS"), "fetchmail upgraded the session: \(fetchmail.output)")
        XCTAssertTrue(((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").contains("hello from msmtp"), fetchmail.output)

        // A second start on the same data creates nothing new.
        server.stop()
        let again = try ServerProcess.start(dir, config)
        defer { again.stop() }
        XCTAssertEqual(again.log.components(separatedBy: "first run: created").count - 1, 1, "one first account, ever")
        XCTAssertEqual(try String(contentsOfFile: file, encoding: .utf8), "\(login)\n\(password)\n")
    }

    func testFirstDomainIsTheHostNameOrLocaldomain() {
        XCTAssertEqual(FirstRun.defaultDomain(hostName: "mail.example.org"), "mail.example.org")
        XCTAssertEqual(FirstRun.defaultDomain(hostName: "MAIL.Example.ORG."), "mail.example.org")
        XCTAssertEqual(FirstRun.defaultDomain(hostName: "box"), "box.localdomain")
        XCTAssertEqual(FirstRun.defaultDomain(hostName: ""), "localhost.localdomain")
        XCTAssertEqual(FirstRun.defaultDomain(hostName: "weird_name"), "localhost.localdomain")
        let a = FirstRun.generatePassword(), b = FirstRun.generatePassword()
        XCTAssertEqual(a.count, 20)
        XCTAssertNotEqual(a, b)
    }
}

/// The start order a real worker computes for the shipped plugins, read from its log.
final class StartOrderTests: XCTestCase {
    func testShippedPluginsStartAfterWhatTheyUse() throws {
        let dir = TempDir("start-order")
        var ports: [Int: Int] = [:]
        let server = try ServerProcess.start(dir, try FirstRunTests.defaultConfig(ports: &ports))
        defer { server.stop() }
        let line = try XCTUnwrap(server.log.split(separator: "\n").first { $0.contains("plugins started") }, server.log)
        let order = try XCTUnwrap(line.components(separatedBy: "order=\"").last?.components(separatedBy: "\"").first)
            .components(separatedBy: ", ")
        // No lmtp plugin: the smtp plugin serves the lmtp listener (HostConfig.servicesOfOtherPlugins).
        XCTAssertEqual(Set(order), ["sasl-plain", "sasl-login", "sasl-scram", "store-sqlite", "dns", "smtp-client", "queue", "smtp", "pop3", "imap", "webmail", "admin"])
        func before(_ a: String, _ b: String, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertLessThan(order.firstIndex(of: a)!, order.firstIndex(of: b)!, "\(a) starts before \(b): \(order)", file: file, line: line)
        }
        before("store-sqlite", "queue")
        before("smtp-client", "queue")
        before("dns", "smtp-client")
        before("queue", "smtp")
        for reader in ["imap", "pop3", "smtp"] { before("store-sqlite", reader) }
        before("sasl-plain", "imap")
        before("store-sqlite", "admin")
        before("queue", "admin")
        // The activation order, by contrast, had the queue before the store (the old bug's window).
        let activated = server.log.split(separator: "\n").filter { $0.contains("plugin activated") }
            .compactMap { $0.components(separatedBy: "plugin=").last?.split(separator: " ").first.map(String.init) }
        XCTAssertLessThan(activated.firstIndex(of: "queue")!, activated.firstIndex(of: "store-sqlite")!, "\(activated)")
    }
}

/// Every command finds its config the same way from any directory (ConfigLocator), and relative
/// paths in the config are relative to the file, not to where the command runs.
final class ConfigDiscoveryTests: XCTestCase {
    func testAdminCommandsFindTheConfigFromAnyDirectory() throws {
        let dir = TempDir("discovery")
        let home = TempDir("discovery-home")
        let config = dir.write("postern.toml", """
            data_dir = "./var"
            first_account = false
            [plugin.store-sqlite]
            """)
        func postern(_ args: [String], cwd: String, env: [String: String] = [:]) -> (status: Int32, output: String) {
            Build.run(Build.postern, args, cwd: cwd, environment: ["POSTERN_CONFIG": "", "HOME": home.path].merging(env) { _, b in b })
        }
        XCTAssertEqual(postern(["admin", "domain", "add", "example.org", "-c", config], cwd: "/").status, 0)
        XCTAssertEqual(postern(["admin", "user", "add", "ann@example.org", "--password", "pw", "-c", config], cwd: home.path).status, 0)
        // The data went next to the config, not into the directories the commands ran from.
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.path + "/var/store/index.sqlite"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: home.path + "/var"))

        // $POSTERN_CONFIG, from / and from $HOME.
        for cwd in ["/", home.path] {
            let r = postern(["admin", "user", "list"], cwd: cwd, env: ["POSTERN_CONFIG": config])
            XCTAssertEqual(r.status, 0, r.output)
            XCTAssertTrue(r.output.contains("ann@example.org"), "from \(cwd): \(r.output)")
        }
        // ./postern.toml in the working directory.
        var r = postern(["admin", "user", "list"], cwd: dir.path)
        XCTAssertTrue(r.output.contains("ann@example.org"), r.output)
        // A relative -c from elsewhere.
        r = postern(["admin", "user", "list", "-c", String(config.dropFirst(NSTemporaryDirectory().count))], cwd: NSTemporaryDirectory())
        XCTAssertTrue(r.output.contains("ann@example.org"), r.output)
        // check-config says which file and why.
        r = postern(["check-config"], cwd: "/", env: ["POSTERN_CONFIG": config])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("using \(config) (from $POSTERN_CONFIG)"), r.output)
        r = postern(["check-config"], cwd: dir.path)
        XCTAssertTrue(r.output.contains("using \(config) (from ./postern.toml)"), r.output)
    }

    func testBuiltInDefaultIsWrittenOnceAndIsAValidConfig() throws {
        let home = TempDir("builtin-home")
        let empty = TempDir("builtin-cwd")
        let found = try ConfigLocator.locate(explicit: nil, environment: ["HOME": home.path], workingDirectory: empty.path,
                                             isRoot: false, systemFile: empty.path + "/no-such-system-file")
        XCTAssertEqual(found.origin, .builtIn)
        XCTAssertEqual(found.path, home.path + "/.local/share/postern/postern.toml")
        guard case .success(let config) = HostConfig.load(file: found.path) else { return XCTFail("the built-in default does not load") }
        XCTAssertEqual(config.role, "all-in-one")
        XCTAssertEqual(config.dataDirectory, home.path + "/.local/share/postern")
        XCTAssertTrue(config.listeners.allSatisfy { $0.tls == .starttls })
        // Edited by the user, it is kept.
        try "role = \"store\"\n".write(toFile: found.path, atomically: true, encoding: .utf8)
        _ = try ConfigLocator.locate(explicit: nil, environment: ["HOME": home.path], workingDirectory: empty.path,
                                     isRoot: false, systemFile: empty.path + "/no-such-system-file")
        XCTAssertEqual(try String(contentsOfFile: found.path, encoding: .utf8), "role = \"store\"\n")
        XCTAssertEqual(ConfigLocator.defaultDataDirectory(environment: [:], isRoot: true), "/var/lib/postern")
        // Precedence: -c, then $POSTERN_CONFIG, then ./postern.toml.
        let local = empty.path + "/postern.toml"
        try "".write(toFile: local, atomically: true, encoding: .utf8)
        XCTAssertEqual(try ConfigLocator.locate(explicit: nil, environment: [:], workingDirectory: empty.path).origin, .workingDirectory)
        XCTAssertEqual(try ConfigLocator.locate(explicit: nil, environment: ["POSTERN_CONFIG": "/x.toml"], workingDirectory: empty.path).path, "/x.toml")
        XCTAssertEqual(try ConfigLocator.locate(explicit: "a.toml", environment: ["POSTERN_CONFIG": "/x.toml"], workingDirectory: "/etc").path, "/etc/a.toml")
    }
}
