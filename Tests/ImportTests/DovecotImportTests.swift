import Foundation
import PosternTestSupport
import PosternHost
import PosternImport
import XCTest

/// `postern admin import maildir` of a Maildir written by a real Dovecot (the Debian package,
/// installed by scripts/install-deps.sh): messages appended over IMAP with flags and dates, flags
/// changed with STORE, one expunged, one delivered over LMTP (left in new/), folders `Sent`,
/// `Archive.2024` and a modified UTF-7 name. Dovecot itself, read back over IMAP before it stops,
/// is the reference for flags, internal dates, UID order and content.
final class DovecotImportTests: XCTestCase {
    /// Appends, stores, expunges, delivers, then prints what Dovecot holds as JSON.
    static let client = #"""
        import base64, imaplib, json, re, smtplib, sys, time
        port, lmtp, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
        for attempt in range(100):
            try:
                m = imaplib.IMAP4("127.0.0.1", port); break
            except OSError:
                time.sleep(0.1)
        m.login("joe@example.org", "secret")
        def msg(n, body="Hello.\r\n", extra=""):
            return ("Message-ID: <%s@example.net>\r\nFrom: a@example.net\r\nTo: joe@example.org\r\nSubject: %s\r\n%s\r\n" % (n, n, extra) + body).encode()
        def append(box, flags, date, data):
            typ, resp = m.append(box, flags, imaplib.Time2Internaldate(date), data)
            assert typ == "OK", (box, resp)
            return int(re.search(rb"APPENDUID \d+ (\d+)", resp[0]).group(1))
        for box in ["Sent", "Archive.2024", "Entw&APw-rfe"]:
            assert m.create(box)[0] == "OK", box
        append("INBOX", r"(\Seen)", 1700000000, msg("one"))
        two = append("INBOX", None, 1600000000, msg("two", body="Bare LF body.\nFrom inside a body.\n"))
        gone = append("INBOX", None, 1650000000, msg("expunged"))
        append("INBOX", r"(\Draft Work)", 1710000000, msg("three", body="Umlaut: K\u00e4se\r\n"))
        fwd = append("INBOX", r"($Forwarded)", 1720000000, msg("forwarded"))
        append("Sent", r"(\Seen)", 1690000000, msg("sent-1"))
        append("Sent", r"(\Seen \Answered)", 1690000100, msg("sent-2", extra="X-Mailer: test\r\n"))
        append("Archive.2024", r"(\Seen \Flagged)", 1704067200, msg("archived", body="x" * 70000 + "\r\n"))
        append("Archive.2024", r"(\Seen)", 1704067201, msg("archived-2"))
        append("Entw&APw-rfe", r"(\Draft)", 1730000000, msg("draft"))
        m.select("INBOX")
        m.uid("STORE", str(two), "+FLAGS", r"(\Answered \Flagged)")
        m.uid("STORE", str(gone), "+FLAGS", r"(\Deleted)")
        m.expunge()
        m.uid("STORE", "1:*", "-FLAGS", "(Work)")
        m.uid("STORE", "1:*", "+FLAGS", "(Important)")
        m.uid("STORE", str(fwd), "+FLAGS", r"(\Deleted)")   # kept: \Deleted without EXPUNGE
        m.unselect()
        # Delivered over LMTP and never selected afterwards: stays in new/.
        l = smtplib.LMTP(lmtp)
        l.sendmail("a@example.net", ["joe@example.org"], msg("lmtp").replace(b"\r\n", b"\n"))
        l.quit()
        result = {}
        for box in ["INBOX", "Sent", "Archive.2024", "Entw&APw-rfe"]:
            assert m.select(box, readonly=True)[0] == "OK", box
            typ, data = m.uid("FETCH", "1:*", "(FLAGS INTERNALDATE BODY.PEEK[])")
            rows = []
            for item in data:
                if not isinstance(item, tuple):
                    continue
                head = item[0]
                uid = int(re.search(rb"UID (\d+)", head).group(1))
                flags = re.search(rb"FLAGS \(([^)]*)\)", head).group(1).decode().split()
                date = time.mktime(imaplib.Internaldate2tuple(head))
                rows.append({"uid": uid, "flags": sorted(f for f in flags if f != "\\Recent"),
                             "date": int(date), "body": base64.b64encode(item[1]).decode()})
            result[box] = sorted(rows, key=lambda r: r["uid"])
        m.logout()
        json.dump(result, open(out, "w"))
        """#

    func testImportOfADovecotMaildir() throws {
        guard getuid() == 0 else { throw XCTSkip("Dovecot is started as root (it switches to the mail user itself)") }
        let dovecot = "/usr/sbin/dovecot"
        guard FileManager.default.isExecutableFile(atPath: dovecot) else {
            return XCTFail("\(dovecot) is missing: scripts/install-deps.sh installs dovecot-imapd and dovecot-lmtpd")
        }
        let f = try AdminFixture("dovecot")
        let root = f.dir.path + "/dovecot"
        for d in ["run", "state", "mail"] { try FileManager.default.createDirectory(atPath: root + "/" + d, withIntermediateDirectories: true) }
        // The mail processes run as nobody; the login processes as dovenull, which must reach base_dir.
        chown(root + "/mail", 65534, 65534)
        chmod(f.dir.path, 0o755)
        let port = freePort()
        let config = f.dir.write("dovecot.conf", Array("""
            protocols = imap lmtp
            listen = 127.0.0.1
            base_dir = \(root)/run
            state_dir = \(root)/state
            log_path = \(root)/dovecot.log
            ssl = no
            disable_plaintext_auth = no
            auth_mechanisms = plain
            login_trusted_networks = 127.0.0.0/8
            mail_location = maildir:\(root)/mail/%u:LAYOUT=maildir++
            first_valid_uid = 1
            passdb {
              driver = static
              args = password=secret
            }
            userdb {
              driver = static
              args = uid=65534 gid=65534 home=\(root)/mail/%u
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
            service lmtp {
              unix_listener lmtp {
                mode = 0666
              }
            }

            """.utf8))
        let server = Process()
        server.executableURL = URL(fileURLWithPath: dovecot)
        server.arguments = ["-F", "-c", config]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        var stopped = false
        func stop() {
            guard !stopped else { return }
            stopped = true
            _ = Build.runBytes("/usr/bin/doveadm", ["-c", config, "stop"])
            server.waitUntilExit()
        }
        defer {
            if server.isRunning { server.terminate() }
            stop()
        }

        let script = f.dir.write("client.py", Array(Self.client.utf8))
        let expectedFile = f.dir.path + "/dovecot.json"
        let c = Build.runBytes("/usr/bin/python3", [script, String(port), root + "/run/lmtp", expectedFile])
        let log = (try? String(contentsOfFile: root + "/dovecot.log", encoding: .utf8)) ?? ""
        guard c.status == 0 else { return XCTFail("client: \(String(decoding: c.stderr, as: UTF8.self))\ndovecot log:\n\(log)") }
        stop()

        let maildir = root + "/mail/joe@example.org"
        let newFiles = (try? FileManager.default.contentsOfDirectory(atPath: maildir + "/new")) ?? []
        XCTAssertEqual(newFiles.count, 1, "the LMTP delivery should still be in new/")
        XCTAssertTrue(FileManager.default.fileExists(atPath: maildir + "/.Archive.2024/cur"))

        let r = f.admin("import", "maildir", maildir, "--user", f.user)
        XCTAssertEqual(r.status, 0, String(decoding: r.stdout + r.stderr, as: UTF8.self))
        XCTAssertEqual(String(decoding: r.stdout, as: UTF8.self), """
            INBOX: 5 messages
            Archive/2024: 2 messages
            Entwürfe: 1 message
            Sent: 2 messages
            total: 10 messages imported, 0 refused

            """)

        struct Row: Decodable { let uid: Int; let flags: [String]; let date: Int64; let body: String }
        let expected = try JSONDecoder().decode([String: [Row]].self, from: Data(contentsOf: URL(fileURLWithPath: expectedFile)))
        // Every file Dovecot wrote: the import must give back one of them, byte for byte.
        var files: [[UInt8]] = []
        for dir in ["", "/.Sent", "/.Archive.2024", "/.Entw&APw-rfe"] {
            for sub in ["/cur", "/new"] {
                for name in (try? FileManager.default.contentsOfDirectory(atPath: maildir + dir + sub)) ?? [] {
                    files.append([UInt8](FileManager.default.contents(atPath: maildir + dir + sub + "/" + name)!))
                }
            }
        }
        XCTAssertEqual(files.count, 10)
        var matched = 0
        for (dovecotName, name) in [("INBOX", "INBOX"), ("Sent", "Sent"), ("Archive.2024", "Archive/2024"), ("Entw&APw-rfe", "Entwürfe")] {
            let want = expected[dovecotName] ?? []
            let got = f.list(name)
            XCTAssertEqual(got.count, want.count, name)
            XCTAssertFalse(want.isEmpty, name)
            for (w, g) in zip(want, got) {
                let stored = f.get(name, g.uid)
                // Dovecot keeps LF on disk (mail_save_crlf = no) and adds CRs when it serves a
                // message: the import keeps the file's bytes, so the IMAP view is those with CRLF.
                XCTAssertTrue(files.contains(stored), "\(name) \(g.uid): not the bytes of any file Dovecot wrote")
                XCTAssertEqual(crlf(stored), [UInt8](Data(base64Encoded: w.body)!), "\(name) \(g.uid) (Dovecot UID \(w.uid))")
                XCTAssertEqual(g.flags, w.flags, "\(name) \(g.uid) (Dovecot UID \(w.uid))")
                XCTAssertEqual(g.date, iso(w.date), "\(name) \(g.uid) (Dovecot UID \(w.uid))")
                matched += 1
            }
        }
        XCTAssertEqual(matched, 10)
        // Spot checks of what the script did, independent of Dovecot's answers.
        XCTAssertEqual(f.list("INBOX").map(\.messageID), ["<one@example.net>", "<two@example.net>", "<three@example.net>",
                                                          "<forwarded@example.net>", "<lmtp@example.net>"])
        XCTAssertEqual(f.list("INBOX").map(\.flags), [["Important", "\\Seen"], ["Important", "\\Answered", "\\Flagged"], ["Important", "\\Draft"],
                                                      ["$Forwarded", "Important", "\\Deleted"], []])
        XCTAssertEqual(f.list("INBOX").prefix(4).map(\.date), [iso(1_700_000_000), iso(1_600_000_000), iso(1_710_000_000), iso(1_720_000_000)])
    }
}

/// Bare LFs as CRLF (what an IMAP server serves for a message stored with LF).
func crlf(_ bytes: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count + bytes.count / 40)
    var previous: UInt8 = 0
    for b in bytes {
        if b == 10 && previous != 13 { out.append(13) }
        out.append(b)
        previous = b
    }
    return out
}
