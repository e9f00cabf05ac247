import Foundation
import PosternHost

/// A throw-away Dovecot (the Debian package), the reference for the IMAP transcripts and an IMAP
/// server of another make for the webmail: run as root
/// (it switches to the mail user itself) on a free port, with its own config, Maildir users from
/// a passwd-file, the namespaces and special-use mailboxes Postern has, ACLs (vfile) and a
/// 100 MiB quota like the Postern accounts of the suite.
public final class DovecotFixture {
    public let dir: TempDir
    public let port = freePort()
    let process = Process()
    public let config: String
    public var log: String { (try? String(contentsOfFile: dir.path + "/dovecot.log", encoding: .utf8)) ?? "" }

    /// `master`: a master user (a Dovecot master passdb, `pass = yes`: the user it acts for must
    /// exist), as an access proxy logs in with.
    public init(users: [String], password: String, master: (user: String, password: String)? = nil) throws {
        dir = TempDir("dovecot-transcripts")
        let root = dir.path
        for d in ["run", "state", "mail", "shared"] { try FileManager.default.createDirectory(atPath: root + "/" + d, withIntermediateDirectories: true) }
        chown(root + "/mail", 65534, 65534)
        chown(root + "/shared", 65534, 65534)
        chmod(root, 0o755)
        let passwd = users.map { "\($0):{PLAIN}\(password):65534:65534::\(root)/mail/\($0)" }.joined(separator: "\n") + "\n"
        dir.write("users.passwd", passwd)
        if let master { dir.write("master.passwd", "\(master.user):{PLAIN}\(master.password)\n") }
        let masterPassdb = master == nil ? "" : """
            passdb {
              driver = passwd-file
              args = \(root)/master.passwd
              master = yes
              pass = yes
            }
            """
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
              \(master == nil ? "" : "acl_user = %u   # a master login has the user's own rights (acl)")
              acl = vfile
              acl_shared_dict = file:\(root)/shared/shared-mailboxes.db
              quota = count:User quota
              quota_rule = *:storage=100M
              quota_vsizes = yes
            }
            \(masterPassdb)
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
            if case .success(let fd) = connectLoopback(port: port, timeout: 1) {
                close(fd)
                return
            }
            usleep(50_000)
        }
        throw SystemError.message("dovecot did not start:\n\(log)")
    }

    public func stop() {
        guard process.isRunning else { return }
        _ = Build.run("/usr/bin/doveadm", ["-c", config, "stop"])
        process.waitUntilExit()
    }

    deinit {
        if process.isRunning { process.terminate() }
        stop()
    }
}
