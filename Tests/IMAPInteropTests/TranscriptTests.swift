import Foundation
import PosternHost
import PosternTestSupport
import XCTest

/// The compliance transcripts (Transcripts.swift) against Postern, and the same against a
/// throw-away Dovecot: every transcript must pass on Postern; where Dovecot answers otherwise the
/// transcript carries an `expectedDifference` saying why, and a note Dovecot no longer needs fails
/// the suite (so the table stays true).
final class TranscriptTests: XCTestCase {
    static let password = "transcript-pw"

    static func users(_ count: Int) -> [String] {
        (0..<count).flatMap { [TranscriptRunner.user($0, 1), TranscriptRunner.user($0, 3)] }
    }

    func testTranscriptsAgainstPostern() throws {
        let transcripts = Transcripts.all
        let f = try IMAPServerFixture("imap-transcripts", workers: 2,
                                      pluginSettings: "login_failure_delay = \"0s\"\nmax_login_failures_per_ip = 0")
        try f.createAccounts(Self.users(transcripts.count), password: Self.password, quota: "100M")
        let runner = TranscriptRunner(target: TranscriptTarget(name: "postern", port: f.plainPort, password: Self.password))
        var failed = 0
        for (i, t) in transcripts.enumerated() {
            if let problem = runner.run(t, index: i) {
                failed += 1
                XCTFail("transcript \(i) \"\(t.name)\" on Postern: \(problem)")
            }
        }
        print("transcripts on Postern: \(transcripts.count - failed) of \(transcripts.count) pass")
        XCTAssertGreaterThanOrEqual(transcripts.count, 150)
    }

    /// The same transcripts against a store that keeps its mail in PostgreSQL (store-postgres on
    /// the server the tests start): IMAP must not tell the two stores apart.
    func testTranscriptsAgainstThePostgresStore() throws {
        let transcripts = Transcripts.all
        let db = try PostgresServer.shared.createDatabase("imap_transcripts")
        let f = try IMAPServerFixture("imap-transcripts-pg", workers: 2,
                                      pluginSettings: "login_failure_delay = \"0s\"\nmax_login_failures_per_ip = 0",
                                      store: """
                                          [plugin.store-postgres]
                                          host = "\(db.host)"
                                          port = \(db.port)
                                          user = "\(db.user)"
                                          database = "\(db.name)"
                                          password_iterations = 4096
                                          """)
        try f.createAccounts(Self.users(transcripts.count), password: Self.password, quota: "100M")
        let runner = TranscriptRunner(target: TranscriptTarget(name: "postern-postgres", port: f.plainPort, password: Self.password))
        var failed = 0
        for (i, t) in transcripts.enumerated() {
            if let problem = runner.run(t, index: i) {
                failed += 1
                XCTFail("transcript \(i) \"\(t.name)\" on the PostgreSQL store: \(problem)")
            }
        }
        print("transcripts on the PostgreSQL store: \(transcripts.count - failed) of \(transcripts.count) pass")
        XCTAssertGreaterThanOrEqual(transcripts.count, 150)
    }

    /// The same transcripts through the access proxy (imap-proxy) in front of a Postern store:
    /// after login the proxy passes bytes untouched, and before it answers as the store does, so
    /// every transcript must pass as it does on the store.
    func testTranscriptsThroughTheProxy() throws {
        let transcripts = Transcripts.all
        let users = Self.users(transcripts.count)
        let master = "proxy@example.org", masterPassword = "proxy-master-pw"
        let store = try IMAPServerFixture("imap-transcripts-store", workers: 2,
                                          pluginSettings: "login_failure_delay = \"0s\"\nmax_login_failures_per_ip = 0",
                                          listenerOptions: "master_users = [\"\(master)\"]")
        try store.createAccounts(users, password: Self.password, quota: "100M")
        try store.createAccounts([master], password: masterPassword)
        // The proxy's own account database (a site would use its directory): the same users.
        let dir = TempDir("imap-transcripts-proxy")
        let port = freePort()
        let config = """
            data_dir = "./var"
            workers = 2
            [plugins]
            load = ["sasl-plain", "sasl-login"]
            [plugin.store-sqlite]
            password_iterations = 4096
            [plugin.access-proxy]
            master_user = "\(master)"
            master_password = "\(masterPassword)"
            login_failure_delay = "0s"
            max_login_failures = 1000000
            max_login_failures_per_account = 0
            [[plugin.access-proxy.backend]]
            name = "store"
            host = "127.0.0.1"
            port = \(store.plainPort)
            [[listener]]
            name = "imap"
            address = "127.0.0.1"
            port = \(port)
            protocol = "imap-proxy"
            [listener.options]
            allow_plaintext_on_loopback = true
            """
        let file = dir.write("postern.toml", config)
        var csv = "email,password\n"
        for u in users { csv += "\(u),\(Self.password)\n" }
        let usersFile = dir.write("users.csv", csv)
        for args in [["domain", "add", "example.org"], ["user", "import", usersFile]] {
            let (code, output) = Build.run(Build.postern, ["admin"] + args + ["-c", file], cwd: dir.path)
            guard code == 0 else { throw SystemError.message("postern admin \(args): \(output)") }
        }
        let proxy = try ServerProcess.start(dir, config)
        defer { proxy.stop() }
        let runner = TranscriptRunner(target: TranscriptTarget(name: "proxy", port: port, password: Self.password))
        var passed = 0
        for (i, t) in transcripts.enumerated() {
            if let problem = runner.run(t, index: i) {
                XCTFail("transcript \(i) \"\(t.name)\" through the proxy: \(problem)")
            } else {
                passed += 1
            }
        }
        print("FIGURES transcripts through the proxy: \(passed) of \(transcripts.count) pass")
    }

    func testTranscriptsAgainstDovecot() throws {
        guard getuid() == 0 else { throw XCTSkip("Dovecot is started as root (it switches to the mail user itself)") }
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/dovecot") else {
            return XCTFail("/usr/sbin/dovecot is missing: scripts/install-deps.sh installs dovecot-imapd")
        }
        let transcripts = Transcripts.all
        let dovecot = try DovecotFixture(users: Self.users(transcripts.count), password: Self.password)
        defer { dovecot.stop() }
        let runner = TranscriptRunner(target: TranscriptTarget(name: "dovecot", port: dovecot.port, password: Self.password))
        var same = 0, explained = 0, skipped = 0
        var report: [String] = []
        for (i, t) in transcripts.enumerated() {
            if let why = t.postternOnly {
                skipped += 1
                report.append("skip  \(i) \(t.name): \(why)")
                continue
            }
            let problem = runner.run(t, index: i)
            switch (problem, t.expectedDifference) {
            case (nil, nil):
                same += 1
            case (nil, let note?):
                XCTFail("transcript \(i) \"\(t.name)\": Dovecot now answers like Postern; drop the note \"\(note)\"")
            case (let p?, nil):
                XCTFail("transcript \(i) \"\(t.name)\" differs on Dovecot and has no expectedDifference: \(p)")
                report.append("DIFF  \(i) \(t.name): \(p)")
            case (_?, let note?):
                explained += 1
                report.append("known \(i) \(t.name): \(note)")
            }
        }
        print("transcripts on Dovecot: \(same) alike, \(explained) explained differences, \(skipped) Postern-only, of \(transcripts.count)")
        print(report.joined(separator: "\n"))
    }
}
