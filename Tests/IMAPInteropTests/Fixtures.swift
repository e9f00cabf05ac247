import Foundation
import PosternHost
import PosternTestSupport
import XCTest

/// `postern serve` with the store, the imap plugin (plain, STARTTLS and implicit-TLS listeners),
/// LMTP and the PLAIN and LOGIN mechanisms, on free ports of 127.0.0.1.
final class IMAPServerFixture {
    let dir: TempDir
    let server: ServerProcess
    let plainPort = freePort(), startTLSPort = freePort(), implicitPort = freePort(), lmtpPort = freePort()
    let certificate: (cert: String, key: String)

    init(_ name: String, workers: Int = 2, pluginSettings: String = "", listenerOptions: String = "") throws {
        dir = TempDir(name)
        certificate = try Self.makeCertificate(dir, "imap.example")
        let config = """
            data_dir = "./var"
            workers = \(workers)
            [plugins]
            load = ["sasl-plain", "sasl-login"]
            [plugin.store-sqlite]
            password_iterations = 4096
            [plugin.imap]
            \(pluginSettings)
            [[listener]]
            name = "imap"
            address = "127.0.0.1"
            port = \(plainPort)
            protocol = "imap"
            [listener.options]
            allow_plaintext_on_loopback = true
            \(listenerOptions)
            [[listener]]
            name = "imap-starttls"
            address = "127.0.0.1"
            port = \(startTLSPort)
            protocol = "imap"
            tls = "starttls"
            certificate = "\(certificate.cert)"
            key = "\(certificate.key)"
            [[listener]]
            name = "imaps"
            address = "127.0.0.1"
            port = \(implicitPort)
            protocol = "imap"
            tls = "implicit"
            certificate = "\(certificate.cert)"
            key = "\(certificate.key)"
            [[listener]]
            name = "lmtp"
            address = "127.0.0.1"
            port = \(lmtpPort)
            protocol = "lmtp"

            """
        // The store is created (and the domain added) before the workers start: two workers
        // opening a brand-new store at the same instant race to create its schema ("table domain
        // already exists"), a store-sqlite issue outside this plugin.
        let file = dir.write("postern.toml", config)
        let (code, output) = Build.run(Build.postern, ["admin", "domain", "add", "example.org", "-c", file], cwd: dir.path)
        guard code == 0 else { throw SystemError.message("postern admin domain add: \(output)") }
        server = try ServerProcess.start(dir, config)
    }

    deinit { server.stop() }

    static func makeCertificate(_ dir: TempDir, _ name: String) throws -> (cert: String, key: String) {
        let cert = dir.path + "/\(name).crt", key = dir.path + "/\(name).key"
        let (code, output) = Build.run(try Build.tool("openssl"), ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                                                                   "-out", cert, "-subj", "/CN=\(name)", "-days", "2"])
        guard code == 0 else { throw SystemError.message("openssl: \(output)") }
        return (cert, key)
    }

    @discardableResult
    func admin(_ args: [String]) throws -> String {
        let (code, output) = Build.run(Build.postern, ["admin"] + args + ["-c", server.configFile], cwd: dir.path)
        guard code == 0 else { throw SystemError.message("postern admin \(args.joined(separator: " ")): \(output)") }
        return output
    }

    /// Accounts in bulk: `postern admin user import` of a CSV (email, password, quota).
    func createAccounts(_ users: [String], password: String, quota: String? = nil) throws {
        var csv = quota == nil ? "email,password\n" : "email,password,quota\n"
        for u in users { csv += "\(u),\(password)\(quota.map { ",\($0)" } ?? "")\n" }
        let file = dir.write("users-\(UUID().uuidString.prefix(6)).csv", csv)
        try admin(["user", "import", file])
    }

    /// Runs `python3 script args`; returns the JSON object its last line prints.
    func python(_ script: String, _ args: [String], timeout: Double = 600) throws -> [String: Any] {
        let path = Build.packageRoot + "/Tests/IMAPInteropTests/Scripts/" + script
        let (code, output) = Build.run(try Build.tool("python3"), [path] + args, cwd: dir.path)
        guard code == 0, let last = output.split(separator: "\n").last,
              let object = try? JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any] else {
            throw SystemError.message("\(script) failed (\(code)):\n\(output)\n--- server log (tail) ---\n\(server.log.suffix(4000))")
        }
        return object
    }
}

/// A throw-away Dovecot (the Debian package) as the reference for the transcripts: run as root
/// (it switches to the mail user itself) on a free port, with its own config, Maildir users from
/// a passwd-file, the namespaces and special-use mailboxes Postern has, ACLs (vfile) and a
/// 100 MiB quota like the Postern accounts of the suite.
final class DovecotFixture {
    let dir: TempDir
    let port = freePort()
    let process = Process()
    let config: String
    var log: String { (try? String(contentsOfFile: dir.path + "/dovecot.log", encoding: .utf8)) ?? "" }

    init(users: [String], password: String) throws {
        dir = TempDir("dovecot-transcripts")
        let root = dir.path
        for d in ["run", "state", "mail", "shared"] { try FileManager.default.createDirectory(atPath: root + "/" + d, withIntermediateDirectories: true) }
        chown(root + "/mail", 65534, 65534)
        chown(root + "/shared", 65534, 65534)
        chmod(root, 0o755)
        let passwd = users.map { "\($0):{PLAIN}\(password):65534:65534::\(root)/mail/\($0)" }.joined(separator: "\n") + "\n"
        dir.write("users.passwd", passwd)
        config = dir.write("dovecot.conf", """
            protocols = imap
            listen = 127.0.0.1
            base_dir = \(root)/run
            state_dir = \(root)/state
            log_path = \(root)/dovecot.log
            ssl = no
            disable_plaintext_auth = no
            auth_mechanisms = plain login
            auth_failure_delay = 0
            login_trusted_networks = 127.0.0.0/8
            mail_location = maildir:\(root)/mail/%u:LAYOUT=fs
            first_valid_uid = 1
            mail_plugins = acl quota
            protocol imap {
              mail_plugins = $mail_plugins imap_acl imap_quota
              mail_max_userip_connections = 1000
            }
            namespace inbox {
              inbox = yes
              separator = /
              prefix =
              mailbox Sent {
                special_use = \\Sent
                auto = create
              }
              mailbox Drafts {
                special_use = \\Drafts
                auto = create
              }
              mailbox Trash {
                special_use = \\Trash
                auto = create
              }
              mailbox Junk {
                special_use = \\Junk
                auto = create
              }
              mailbox Archive {
                special_use = \\Archive
                auto = create
              }
            }
            namespace shared {
              type = shared
              separator = /
              prefix = Other Users/%%u/
              location = maildir:\(root)/mail/%%u:LAYOUT=fs
              subscriptions = no
              list = children
            }
            plugin {
              acl = vfile
              acl_shared_dict = file:\(root)/shared/shared-mailboxes.db
              quota = count:User quota
              quota_rule = *:storage=100M
              quota_vsizes = yes
            }
            passdb {
              driver = passwd-file
              args = \(root)/users.passwd
            }
            userdb {
              driver = passwd-file
              args = \(root)/users.passwd
            }
            service imap-login {
              inet_listener imap {
                address = 127.0.0.1
                port = \(port)
              }
              inet_listener imaps {
                port = 0
              }
            }

            """)
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/dovecot")
        process.arguments = ["-F", "-c", config]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Ready once it accepts connections.
        for _ in 0..<200 {
            if (try? RawIMAPConnection(port: port)) != nil { return }
            usleep(50_000)
        }
        throw SystemError.message("dovecot did not start:\n\(log)")
    }

    func stop() {
        guard process.isRunning else { return }
        _ = Build.run("/usr/bin/doveadm", ["-c", config, "stop"])
        process.waitUntilExit()
    }

    deinit {
        if process.isRunning { process.terminate() }
        stop()
    }
}
