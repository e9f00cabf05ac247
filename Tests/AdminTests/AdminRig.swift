import Foundation
import PosternHost
import PosternTestSupport

/// The server both admin test classes run: the store, a queue whose relayhost refuses (so remote
/// mail waits in the deferred queue), a submission listener, and admin listeners; accounts added
/// with `postern admin` as a site would.
struct AdminRig {
    let dir: TempDir
    let server: ServerProcess
    let admin: Int
    let submission: Int

    /// `adminSettings` goes into `[plugin.admin]`; `listeners` is added after the loopback admin
    /// listener (whose requests are not rate limited: the tests make many).
    init(_ name: String, adminSettings: String = "", listeners: String = "") throws {
        dir = TempDir(name)
        admin = freePort()
        submission = freePort()
        server = try ServerProcess.start(dir, """
            data_dir = "./var"
            workers = 1
            [plugin.store-sqlite]
            password_iterations = 4096
            [plugin.sasl-plain]
            [plugin.queue]
            relayhost = "[127.0.0.1]:1"
            min_backoff = "1h"
            [plugin.smtp-client]
            [plugin.smtp]
            hostname = "mail.a.example"
            [plugin.admin]
            login_failure_delay = "10ms"
            \(adminSettings)
            [[listener]]
            name = "submission"
            address = "127.0.0.1"
            port = \(submission)
            protocol = "smtp"
            [listener.options]
            mode = "submission"
            allow_plaintext_auth_on_loopback = true
            [[listener]]
            name = "admin"
            address = "127.0.0.1"
            port = \(admin)
            protocol = "admin"
            [listener.options]
            requests_per_second = 100000
            request_burst = 100000
            \(listeners)
            """)
    }

    /// Domains, then accounts `(name, password, level)`, through `postern admin`.
    func populate(domains: [String], accounts: [(String, String, String)]) throws {
        func postern(_ args: [String]) throws {
            let (status, output) = Build.run(Build.postern, ["admin"] + args + ["-c", server.configFile], cwd: dir.path)
            guard status == 0 else { throw SystemError.message("postern admin \(args): \(output)") }
        }
        for domain in domains { try postern(["domain", "add", domain]) }
        for (name, password, level) in accounts { try postern(["user", "add", name, "--password", password, "--admin", level]) }
    }

    /// Runs one of Scripts/ with Debian's Python (the one python3-selenium is for) and the
    /// settings as JSON; returns the JSON object it printed.
    func script(_ name: String, _ arguments: [String], settings: [String: Any]) throws -> [String: Any] {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Scripts/" + name).path
        let json = String(decoding: try JSONSerialization.data(withJSONObject: settings), as: UTF8.self)
        let (status, stdout, stderr) = Build.runSeparately("/usr/bin/python3", [path] + arguments + [json])
        guard status == 0, let object = try? JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: Any] else {
            throw SystemError.message("\(name) \(arguments) failed (\(status)):\n\(stderr)\n\(stdout)\nserver log:\n\(server.log.suffix(4000))")
        }
        return object
    }
}
