import Foundation
import PosternHost
import PosternTestSupport
import XCTest

// Real milters from Debian, each started once per test class on loopback with a config the test
// writes: OpenDKIM signing on the submission listener, rspamd's proxy in milter mode, and
// clamav-milter in front of a clamd whose signature database the test writes itself. A peer that
// is not installed fails the class (scripts/install-deps.sh test installs them), never skips it.

/// A message with a plain text body.
func plainMessage(from: String, subject: String, body: String) -> String {
    "From: \(from)\nTo: rcpt@remote.example\nSubject: \(subject)\nDate: Sun, 06 Dec 2026 12:00:00 +0000\nMessage-ID: <\(UUID().uuidString)@test.example>\n\n\(body)\n"
}

final class OpenDKIMMilterTests: XCTestCase {
    static let rig = PeerRig("opendkim")
    static var work: TempDir { rig.work }

    override class func setUp() {
        super.setUp()
        do {
            let port = freePort()
            let (code, output) = Build.run("/usr/sbin/opendkim-genkey", ["-D", work.path, "-d", "example.org", "-s", "test"])
            guard code == 0 else { throw SystemError.message("opendkim-genkey: \(output)") }
            let conf = work.write("opendkim.conf", """
                Syslog no
                Socket inet:\(port)@127.0.0.1
                Domain example.org
                Selector test
                KeyFile \(work.path)/test.private
                Mode sv
                Canonicalization simple/simple
                InternalHosts 127.0.0.1
                RequireSafeKeys false
                PidFile \(work.path)/opendkim.pid

                """)
            rig.peers.append(try PeerProcess("opendkim", "/usr/sbin/opendkim", ["-f", "-x", conf], dir: work.path, port: port))
            rig.server = try MilterServer("milter-opendkim", milters: ["opendkim": "address = \"inet:127.0.0.1:\(port)\""], listeners: [
                ("submission", "mode = \"submission\"\nallow_plaintext_auth_on_loopback = true\nfilters = [\"opendkim\"]\ndirection = \"outbound\""),
                ("mx", "filters = []"),
            ])
        } catch {
            rig.setupError = error
        }
    }

    override class func tearDown() {
        rig.tearDown()
        super.tearDown()
    }

    func running() throws -> MilterServer { try Self.rig.running() }

    /// Verifies `message`'s DKIM signature with python3-dkim against the public key opendkim-genkey
    /// wrote (served to dkim.verify instead of DNS); returns the verifier's verdict.
    func dkimVerify(_ message: [UInt8]) throws -> String {
        let file = Self.work.write("signed-\(UUID().uuidString.prefix(6)).eml", message)
        let script = Self.work.write("verify.py", """
            import re, sys, dkim
            record = "".join(re.findall(r'"([^"]*)"', open(sys.argv[1]).read()))
            def dns(name, timeout=5):
                return record.encode() if name == b"test._domainkey.example.org." else None
            print("pass" if dkim.verify(open(sys.argv[2], "rb").read(), dnsfunc=dns) else "fail")
            """)
        guard FileManager.default.fileExists(atPath: "/usr/bin/python3") else { throw SystemError.message("/usr/bin/python3 (python3-dkim) missing") }
        return Build.run("/usr/bin/python3", [script, Self.work.path + "/test.txt", file]).output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func testSubmissionIsSignedAndTheSignatureVerifies() throws {
        let s = try running()
        let before = try s.queued().count
        let output = try s.send("submission", from: "alice@example.org",
                                message: plainMessage(from: "alice@example.org", subject: "signed, with a subject long enough\n\tto be folded",
                                                      body: "Signed by OpenDKIM."), login: true)
        XCTAssertTrue(output.contains("DATA 250"), output)
        let queued = try s.queued()
        XCTAssertEqual(queued.count, before + 1)
        let message = try XCTUnwrap(queued.last)
        let text = String(decoding: message, as: UTF8.self)
        XCTAssertTrue(text.hasPrefix("DKIM-Signature: v=1; a=rsa-sha256;"), "OpenDKIM inserts its field first:\n\(text)")
        XCTAssertTrue(text.contains("d=example.org"), text)
        // Simple canonicalization signs the fields byte for byte, the fold included: the milter
        // was given the field as received.
        XCTAssertTrue(text.contains("c=simple/simple"), text)
        XCTAssertTrue(text.contains("Subject: signed, with a subject long enough\r\n\tto be folded\r\n"), text)
        XCTAssertEqual(try dkimVerify(message), "pass", text)
        // A changed body no longer verifies: the signature covers what was queued.
        let tampered = Array(text.replacingOccurrences(of: "Signed by OpenDKIM.", with: "Signed by someone.").utf8)
        XCTAssertEqual(try dkimVerify(tampered), "fail")
    }

    func testMXListenerWithoutTheMilterIsNotSigned() throws {
        let s = try running()
        let output = try s.send("mx", from: "alice@example.org",
                                message: plainMessage(from: "alice@example.org", subject: "inbound", body: "Not signed."))
        XCTAssertTrue(output.contains("DATA 250"), output)
        let text = String(decoding: try XCTUnwrap(try s.queued().last), as: UTF8.self)
        XCTAssertTrue(text.contains("Subject: inbound"), text)
        XCTAssertFalse(text.contains("DKIM-Signature"), text)
    }
}

final class RspamdMilterTests: XCTestCase {
    static let rig = PeerRig("rspamd")
    static var work: TempDir { rig.work }

    override class func setUp() {
        super.setUp()
        do {
            let proxy = freePort(), normal = freePort(), controller = freePort()
            for d in ["local/override.d", "local/local.d", "db", "run", "log"] {
                try FileManager.default.createDirectory(atPath: work.path + "/" + d, withIntermediateDirectories: true)
            }
            // The proxy worker in milter mode scans itself (self_scan): no separate scanner needed.
            work.write("local/override.d/worker-proxy.inc", """
                bind_socket = "127.0.0.1:\(proxy)";
                milter = yes;
                timeout = 120s;
                upstream "local" { default = yes; self_scan = yes; }
                count = 1;
                """)
            work.write("local/override.d/worker-normal.inc", "bind_socket = \"127.0.0.1:\(normal)\";\ncount = 1;\n")
            work.write("local/override.d/worker-controller.inc", "bind_socket = \"127.0.0.1:\(controller)\";\ncount = 1;\n")
            work.write("local/override.d/logging.inc", "type = \"file\";\nfilename = \"\(work.path)/log/rspamd.log\";\nlevel = \"info\";\n")
            // GTUBE is a test pattern; rspamd 3 only acts on it when test patterns are enabled.
            work.write("local/local.d/options.inc", "enable_test_patterns = true;\n")
            let vars = ["LOCAL_CONFDIR=\(work.path)/local", "DBDIR=\(work.path)/db", "RUNDIR=\(work.path)/run", "LOGDIR=\(work.path)/log"]
            // Started as root in the suite: rspamd refuses that without -i and an explicit user.
            rig.peers.append(try PeerProcess("rspamd", "/usr/bin/rspamd", ["-f", "-i", "-u", "root", "-g", "root"] + vars.map { "--var=\($0)" },
                                   dir: work.path, port: proxy, timeout: 180))
            rig.server = try MilterServer("milter-rspamd", milters: ["rspamd": "address = \"inet:127.0.0.1:\(proxy)\"\ntimeout = \"120s\""],
                                      listeners: [("mx", "filters = [\"rspamd\"]")])
        } catch {
            rig.setupError = error
        }
    }

    override class func tearDown() {
        rig.tearDown()
        super.tearDown()
    }

    func running() throws -> MilterServer { try Self.rig.running() }

    static let gtube = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

    func testGTUBEIsRejected() throws {
        let s = try running()
        let before = try s.queued().count
        let output = try s.send("mx", message: plainMessage(from: "sender@remote.example", subject: "spam", body: "Buy now.\n\(Self.gtube)\n"))
        let data = output.split(separator: "\n").first { $0.hasPrefix("DATA ") }.map(String.init) ?? output
        // rspamd's reject action, with the reply its GTUBE rule gives (SMFIR_REPLYCODE).
        XCTAssertEqual(data, "DATA 554 5.7.1 Gtube pattern", output)
        XCTAssertEqual(try s.queued().count, before, "a refused message is not queued")
    }

    func testCleanMessagePasses() throws {
        let s = try running()
        let before = try s.queued().count
        let output = try s.send("mx", message: plainMessage(from: "sender@remote.example", subject: "hello", body: "Just a note."))
        XCTAssertTrue(output.contains("DATA 250"), output)
        XCTAssertEqual(try s.queued().count, before + 1)
    }
}

final class ClamAVMilterTests: XCTestCase {
    static let rig = PeerRig("clamav")
    static var work: TempDir { rig.work }
    /// The EICAR test file (68 octets).
    static let eicar = #"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"#

    override class func setUp() {
        super.setUp()
        do {
            let clamdPort = freePort(), milterPort = freePort()
            try FileManager.default.createDirectory(atPath: work.path + "/db", withIntermediateDirectories: true)
            // Signatures cannot be downloaded here: EICAR's MD5 (a file hash) and its bytes as a
            // body pattern, so the test file is found as an attachment and anywhere in a part.
            work.write("db/postern-test.hdb", "44d88612fea8a8f36de82e1278abb02f:68:Postern-Test-EICAR\n")
            let hex = Self.eicar.utf8.map { String(format: "%02x", $0) }.joined()
            work.write("db/postern-test.ndb", "Postern-Test-EICAR-Pattern:0:*:\(hex)\n")
            let clamd = work.write("clamd.conf", """
                Foreground yes
                DatabaseDirectory \(work.path)/db
                TCPSocket \(clamdPort)
                TCPAddr 127.0.0.1
                LogFile \(work.path)/clamd.log
                PidFile \(work.path)/clamd.pid

                """)
            let milter = work.write("clamav-milter.conf", """
                Foreground yes
                MilterSocket inet:\(milterPort)@127.0.0.1
                ClamdSocket tcp:127.0.0.1:\(clamdPort)
                OnInfected Reject
                RejectMsg Rejecting harmful e-mail: %v found.
                AddHeader Replace
                LogFile \(work.path)/clamav-milter.log
                PidFile \(work.path)/clamav-milter.pid

                """)
            rig.peers.append(try PeerProcess("clamd", "/usr/sbin/clamd", ["-c", clamd], dir: work.path, port: clamdPort, timeout: 120))
            rig.peers.append(try PeerProcess("clamav-milter", "/usr/sbin/clamav-milter", ["-c", milter], dir: work.path, port: milterPort))
            rig.server = try MilterServer("milter-clamav", milters: ["clamav": "address = \"inet:127.0.0.1:\(milterPort)\""],
                                      listeners: [("mx", "filters = [\"clamav\"]")])
        } catch {
            rig.setupError = error
        }
    }

    override class func tearDown() {
        rig.tearDown()
        super.tearDown()
    }

    func running() throws -> MilterServer { try Self.rig.running() }

    func testEICARAttachmentIsRejected() throws {
        let s = try running()
        let before = try s.queued().count
        let attachment = Data(Self.eicar.utf8).base64EncodedString()
        let message = """
            From: sender@remote.example
            To: rcpt@remote.example
            Subject: invoice
            MIME-Version: 1.0
            Content-Type: multipart/mixed; boundary="b1"

            --b1
            Content-Type: text/plain

            See the attachment.
            --b1
            Content-Type: application/octet-stream; name="eicar.com"
            Content-Disposition: attachment; filename="eicar.com"
            Content-Transfer-Encoding: base64

            \(attachment)
            --b1--
            """
        let output = try s.send("mx", message: message)
        let data = output.split(separator: "\n").first { $0.hasPrefix("DATA ") }.map(String.init) ?? output
        XCTAssertTrue(data.hasPrefix("DATA 5"), output)
        // The milter's own reply (SMFIR_REPLYCODE) names the signature from the test's database.
        XCTAssertTrue(data.hasPrefix("DATA 550 5.7.1 Rejecting harmful e-mail: Postern-Test-EICAR"), output)
        XCTAssertEqual(try s.queued().count, before)
    }

    func testCleanMessageIsTaggedAndQueued() throws {
        let s = try running()
        let output = try s.send("mx", message: plainMessage(from: "sender@remote.example", subject: "clean", body: "Nothing to see."))
        XCTAssertTrue(output.contains("DATA 250"), output)
        let text = String(decoding: try XCTUnwrap(try s.queued().last), as: UTF8.self)
        XCTAssertTrue(text.contains("Subject: clean"), text)
        XCTAssertTrue(text.contains("X-Virus-Status: Clean"), "clamav-milter's header change was applied:\n\(text)")
    }
}
