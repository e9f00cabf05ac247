import Foundation
import PosternTestSupport
import PosternHost
import XCTest

/// Real IMAP clients against the real binary: mbsync (isync) syncing both ways and again with
/// nothing to do, and mutt driven in tmux reading and moving a message.
final class IMAPClientTests: XCTestCase {
    struct Server {
        let dir: TempDir
        let process: ServerProcess
        let imapPort: Int
        let lmtpPort: Int

        func admin(_ args: [String]) -> (Int32, String) {
            Build.run(Build.postern, ["admin"] + args + ["-c", process.configFile], cwd: dir.path)
        }

        /// UID, flags and Message-ID of each message of a mailbox.
        func listing(_ user: String, _ mailbox: String = "INBOX") -> [(flags: String, id: String)] {
            admin(["message", "list", user, "--mailbox", mailbox]).1.split(separator: "\n").map { line in
                let c = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
                return (c.count > 2 ? c[2] : "", c.last ?? "")
            }
        }

        /// Delivers messages through LMTP (as the MTA would).
        func deliver(_ user: String, _ ids: [String]) throws {
            let script = dir.write("deliver.py", """
                import socket, sys
                s = socket.create_connection(("127.0.0.1", int(sys.argv[1]))); f = s.makefile("rwb")
                def cmd(line):
                    if line is not None:
                        f.write(line + b"\\r\\n"); f.flush()
                    while True:
                        l = f.readline()
                        if l[3:4] == b" ": return l
                cmd(None); cmd(b"LHLO t")
                for mid in sys.argv[3:]:
                    cmd(b"MAIL FROM:<s@remote.example>"); cmd(b"RCPT TO:<" + sys.argv[2].encode() + b">"); cmd(b"DATA")
                    f.write(b"From: s@remote.example\\r\\nTo: " + sys.argv[2].encode() + b"\\r\\nSubject: about " + mid.encode()
                            + b"\\r\\nMessage-ID: <" + mid.encode() + b">\\r\\n\\r\\nbody of " + mid.encode() + b"\\r\\n.\\r\\n"); f.flush()
                    assert cmd(None).startswith(b"250")
                cmd(b"QUIT")
                """)
            let r = Build.run(try Build.tool("python3"), [script, "\(lmtpPort)", user] + ids)
            guard r.status == 0 else { throw SystemError.message("deliver: \(r.output)") }
        }
    }

    func startServer(_ name: String) throws -> Server {
        let dir = TempDir(name)
        let imapPort = freePort(), lmtpPort = freePort()
        let process = try ServerProcess.start(dir, """
            data_dir = "./var"
            workers = 1
            [plugin.store-sqlite]
            [plugin.sasl-plain]
            [plugin.imap]
            [[listener]]
            name = "imap"
            address = "127.0.0.1"
            port = \(imapPort)
            protocol = "imap"
            [listener.options]
            allow_plaintext_on_loopback = true
            [[listener]]
            name = "lmtp"
            address = "127.0.0.1"
            port = \(lmtpPort)
            protocol = "lmtp"
            """)
        let server = Server(dir: dir, process: process, imapPort: imapPort, lmtpPort: lmtpPort)
        XCTAssertEqual(server.admin(["domain", "add", "example.org"]).0, 0)
        XCTAssertEqual(server.admin(["user", "add", "alice@example.org", "--password", "pw-alice"]).0, 0)
        return server
    }

    /// Maildir files of a local mbsync folder: (flags from the name, Message-ID inside).
    func maildir(_ path: String) -> [(flags: String, id: String)] {
        var out: [(String, String)] = []
        for sub in ["cur", "new"] {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: path + "/" + sub)) ?? [] {
                let text = (try? String(contentsOfFile: path + "/" + sub + "/" + name, encoding: .utf8)) ?? ""
                let id = text.split(separator: "\n").first { $0.lowercased().hasPrefix("message-id:") }
                    .map { $0.dropFirst(11).trimmingCharacters(in: .whitespacesAndNewlines) } ?? "?"
                let flags = name.range(of: ":2,").map { String(name[$0.upperBound...]) } ?? ""
                out.append((flags, id))
            }
        }
        return out.sorted { $0.1 < $1.1 }
    }

    func testMbsyncBothWaysAndAgainWithNothingToDo() throws {
        let server = try startServer("imap-mbsync")
        defer { server.process.stop() }
        try server.deliver("alice@example.org", ["m1@t", "m2@t", "m3@t"])
        let local = server.dir.path + "/mail"
        try FileManager.default.createDirectory(atPath: local, withIntermediateDirectories: true)
        let rc = server.dir.write("mbsyncrc", """
            IMAPAccount postern
            Host 127.0.0.1
            Port \(server.imapPort)
            User alice@example.org
            Pass pw-alice
            SSLType None
            AuthMechs LOGIN PLAIN

            IMAPStore remote
            Account postern

            MaildirStore local
            Path \(local)/
            Inbox \(local)/INBOX
            SubFolders Verbatim

            Channel sync
            Far :remote:
            Near :local:
            Patterns INBOX Archive
            Create Both
            Expunge Both
            SyncState *
            """)
        let mbsync = try Build.tool("mbsync")
        func sync() -> (Int32, String) { Build.run(mbsync, ["-c", rc, "-V", "sync"], cwd: server.dir.path, environment: ["HOME": server.dir.path]) }

        // 1. New messages reach the near side.
        var r = sync()
        XCTAssertEqual(r.0, 0, r.1)
        XCTAssertEqual(maildir(local + "/INBOX").map(\.id), ["<m1@t>", "<m2@t>", "<m3@t>"])

        // 2. Both ways: flag one locally, delete one locally, move one locally into Archive;
        //    on the server a new message arrives and one gets \Flagged.
        // New messages may sit in new/; a flagged one belongs in cur/ with its info suffix.
        let inbox = local + "/INBOX/cur"
        var files: [(dir: String, name: String)] = []
        for sub in ["cur", "new"] {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: local + "/INBOX/" + sub)) ?? [] { files.append((local + "/INBOX/" + sub, name)) }
        }
        func file(_ id: String) -> (dir: String, name: String)? {
            files.first { ((try? String(contentsOfFile: $0.dir + "/" + $0.name, encoding: .utf8)) ?? "").contains("<\(id)>") }
        }
        func withFlag(_ f: (dir: String, name: String), _ flag: Character) -> Int32 {
            let base = f.name.range(of: ":2,").map { String(f.name[..<$0.lowerBound]) } ?? f.name
            let flags = f.name.range(of: ":2,").map { String(f.name[$0.upperBound...]) } ?? ""
            return rename(f.dir + "/" + f.name, inbox + "/" + base + ":2," + String((flags + String(flag)).sorted()))
        }
        let f1 = try XCTUnwrap(file("m1@t"), "\(files)"), f2 = try XCTUnwrap(file("m2@t")), f3 = try XCTUnwrap(file("m3@t"))
        // m1: flagged locally (Maildir flag F).
        XCTAssertEqual(withFlag(f1, "F"), 0)
        // m2: deleted locally (flag T: trashed, expunged with Expunge Both).
        XCTAssertEqual(withFlag(f2, "T"), 0)
        // m3: moved locally into Archive (a new file there, the old one trashed: what MUAs do).
        let archive = local + "/Archive"
        for sub in ["cur", "new", "tmp"] { try FileManager.default.createDirectory(atPath: archive + "/" + sub, withIntermediateDirectories: true) }
        let m3 = try String(contentsOfFile: f3.dir + "/" + f3.name, encoding: .utf8)
        try m3.write(toFile: archive + "/cur/moved-m3:2,S", atomically: true, encoding: .utf8)
        XCTAssertEqual(withFlag(f3, "T"), 0)
        try server.deliver("alice@example.org", ["m4@t"])
        r = sync()
        XCTAssertEqual(r.0, 0, r.1)
        let serverInbox = server.listing("alice@example.org")
        XCTAssertEqual(serverInbox.map(\.id), ["<m1@t>", "<m4@t>"], "m2 expunged, m3 moved away, m4 new")
        XCTAssertTrue(serverInbox[0].flags.contains("\\Flagged"), "\(serverInbox)")
        XCTAssertEqual(server.listing("alice@example.org", "Archive").map(\.id), ["<m3@t>"])
        XCTAssertEqual(maildir(local + "/INBOX").map(\.id), ["<m1@t>", "<m4@t>"])

        // 3. Flag a message on the server (as another client would), sync: it shows locally.
        let script = server.dir.write("flag.py", """
            import imaplib, sys
            c = imaplib.IMAP4("127.0.0.1", int(sys.argv[1])); c.login("alice@example.org", "pw-alice"); c.select("INBOX")
            typ, data = c.search(None, "HEADER", "Message-ID", "m4@t"); c.store(data[0].decode().split()[0], "+FLAGS", "(\\\\Flagged)"); c.logout()
            """)
        XCTAssertEqual(Build.run(try Build.tool("python3"), [script, "\(server.imapPort)"]).status, 0)
        r = sync()
        XCTAssertEqual(r.0, 0, r.1)
        XCTAssertTrue(maildir(local + "/INBOX").first { $0.id == "<m4@t>" }?.flags.contains("F") == true, "\(maildir(local + "/INBOX"))")

        // 4. Again with nothing to do: nothing changes on either side.
        let before = (server.listing("alice@example.org").map { "\($0.id) \($0.flags)" }, maildir(local + "/INBOX").map { "\($0.id) \($0.flags)" })
        r = sync()
        XCTAssertEqual(r.0, 0, r.1)
        XCTAssertEqual(server.listing("alice@example.org").map { "\($0.id) \($0.flags)" }, before.0)
        XCTAssertEqual(maildir(local + "/INBOX").map { "\($0.id) \($0.flags)" }, before.1)
    }

    /// mutt in a tmux pane: opens the INBOX over IMAP, reads the message (it becomes \Seen) and
    /// saves it into another folder (it moves there).
    func testMuttReadsAndMovesAMessage() throws {
        let server = try startServer("imap-mutt")
        defer { server.process.stop() }
        try server.deliver("alice@example.org", ["hello@t"])
        XCTAssertEqual(server.admin(["mailbox", "create", "alice@example.org", "Saved"]).0, 0)
        let home = server.dir.path
        let muttrc = server.dir.write("muttrc", """
            set folder = "imap://alice%40example.org@127.0.0.1:\(server.imapPort)/"
            set spoolfile = "+INBOX"
            set imap_pass = "pw-alice"
            set ssl_starttls = no
            set ssl_force_tls = no
            set imap_check_subscribed = no
            set mail_check = 1
            set confirmappend = no
            set delete = yes
            set move = no
            set pager_stop = yes
            set header_cache = ""
            set message_cachedir = ""
            set sort = date
            """)
        let tmux = try Build.tool("tmux"), mutt = try Build.tool("mutt")
        // A private tmux server (-L) for this test, killed at the end; started through sh with its
        // output to /dev/null, since the server outlives the command and would hold a pipe open.
        let socketName = "postern-mutt-\(UUID().uuidString.prefix(6))", session = "mutt"
        let env = ["HOME": home, "TERM": "xterm"]
        func tmuxRun(_ args: [String]) -> (status: Int32, output: String) { Build.run(tmux, ["-L", socketName] + args, environment: env) }
        func send(_ keys: [String]) { _ = tmuxRun(["send-keys", "-t", session] + keys) }
        func screen() -> String { tmuxRun(["capture-pane", "-p", "-t", session]).output }
        func wait(for text: String, _ seconds: Double = 15) -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if screen().contains(text) { return true }
                usleep(200_000)
            }
            return false
        }
        // The tmux server outlives the command that starts it and would keep every descriptor it
        // inherited, among them the pipe Foundation watches to see a child exit (waitUntilExit
        // then never returns). So it is started through Python with close_fds: it inherits
        // nothing but /dev/null.
        let launcher = "import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=True).returncode)"
        let started = Build.run(try Build.tool("python3"), ["-c", launcher, tmux, "-L", socketName, "new-session", "-d", "-s", session,
                                                            "-x", "160", "-y", "40", "\(mutt) -n -F \(muttrc)"], environment: env)
        XCTAssertEqual(started.status, 0, started.output)
        defer { _ = tmuxRun(["kill-server"]) }
        XCTAssertTrue(wait(for: "about hello@t"), "mutt did not list the message:\n\(screen())")
        // Read it: Enter opens the pager.
        send(["Enter"])
        XCTAssertTrue(wait(for: "body of hello@t"), "the pager did not show the body:\n\(screen())")
        send(["q"])
        // Save (move) it into =Saved: `s`, the folder, Enter; then sync the mailbox with `$`.
        send(["s"])
        XCTAssertTrue(wait(for: "Save to mailbox"), screen())
        send(["C-u", "=Saved", "Enter"])
        usleep(500_000)
        send(["$"])
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline && !(server.listing("alice@example.org").isEmpty && server.listing("alice@example.org", "Saved").count == 1) {
            usleep(200_000)
        }
        send(["q"])
        let saved = server.listing("alice@example.org", "Saved")
        XCTAssertEqual(saved.map(\.id), ["<hello@t>"], screen())
        XCTAssertTrue(saved.first?.flags.contains("\\Seen") == true, "\(saved)")
        XCTAssertEqual(server.listing("alice@example.org").count, 0, "moved out of INBOX")
    }
}
