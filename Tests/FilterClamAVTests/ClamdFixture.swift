import Foundation
import PluginAPI
import PosternHost
import PosternTestSupport
import XCTest

// A real clamd for the tests, on loopback TCP and a Unix socket, with a signature database the
// tests write themselves (signatures cannot be downloaded here), and the messages they send.

enum Signatures {
    /// The EICAR test file (68 octets).
    static let eicar = #"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"#
    /// A made-up pattern found anywhere (an .ndb body signature).
    static let pattern = "POSTERN-CLAMAV-TEST-PATTERN-7f3a91"
    /// A made-up file found only whole, by its MD5 (an .hdb file-hash signature).
    static let hashedFile = Array("Postern test file: matched by its MD5 and size, never by a pattern.\n".utf8)
    /// A header field only the whole-message scan sees (no part's body holds it).
    static let headerOnly = "X-Postern-Raw-Only-Marker-55c2"

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    static func md5(_ bytes: [UInt8]) -> String {
        hex(Array(Insecure.MD5.hash(data: bytes)))
    }
}

/// clamd with the tests' database. `ScanMail no`: clamd does not take the message apart itself,
/// so what is found in an encoded part or a uuencoded file was found by the filter's own
/// decoding, and the whole-message scan sees the bytes as sent.
final class ClamdFixture {
    let process: PeerProcess
    let port: Int
    let socket: String

    init(_ work: TempDir, streamMaxLength: String = "1M") throws {
        port = freePort()
        socket = work.path + "/clamd.sock"
        try FileManager.default.createDirectory(atPath: work.path + "/db", withIntermediateDirectories: true)
        // EICAR by its bytes anywhere (the name its real signature has), the test pattern, the
        // header marker, and the hashed file by MD5:size. clamd reports a signature from an
        // unsigned database with `.UNOFFICIAL` after its name (Eicar-Test-Signature.UNOFFICIAL).
        work.write("db/postern-test.ndb", """
            Eicar-Test-Signature:0:*:\(Signatures.hex(Array(Signatures.eicar.utf8)))
            Postern.Test.Pattern:0:*:\(Signatures.hex(Array(Signatures.pattern.utf8)))
            Postern.Test.HeaderMarker:0:*:\(Signatures.hex(Array(Signatures.headerOnly.utf8)))

            """)
        work.write("db/postern-test.hdb", "\(Signatures.md5(Signatures.hashedFile)):\(Signatures.hashedFile.count):Postern.Test.FileHash\n")
        let conf = work.write("clamd.conf", """
            Foreground yes
            DatabaseDirectory \(work.path)/db
            TCPSocket \(port)
            TCPAddr 127.0.0.1
            LocalSocket \(socket)
            ScanMail no
            StreamMaxLength \(streamMaxLength)
            LogFile \(work.path)/clamd.log
            PidFile \(work.path)/clamd.pid

            """)
        process = try PeerProcess("clamd", "/usr/sbin/clamd", ["-c", conf], dir: work.path, port: port, timeout: 120)
        // The TCP socket comes up after the Unix one; both are there now.
        guard FileManager.default.fileExists(atPath: socket) else { throw SystemError.message("clamd made no \(socket)") }
    }
}

/// Messages as the tests write them (LF line ends; sent with CRLF).
enum Fixtures {
    static func base64(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString(options: [.lineLength76Characters, .endLineWithLineFeed])
    }

    static func headers(_ subject: String, extra: String = "") -> String {
        "From: sender@remote.example\nTo: rcpt@remote.example\nSubject: \(subject)\nDate: Sun, 06 Dec 2026 12:00:00 +0000\nMessage-ID: <\(UUID().uuidString)@test.example>\n\(extra)"
    }

    static func plain(_ subject: String, body: String) -> String {
        headers(subject) + "\n" + body + "\n"
    }

    /// multipart/mixed: a text, then an attachment of `bytes` in base64.
    static func withAttachment(_ subject: String, name: String = "eicar.com", bytes: [UInt8], type: String = "application/octet-stream") -> String {
        headers(subject, extra: "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b1\"\n") + """

            --b1
            Content-Type: text/plain; charset=us-ascii

            See the attachment.
            --b1
            Content-Type: \(type); name="\(name)"
            Content-Disposition: attachment; filename="\(name)"
            Content-Transfer-Encoding: base64

            \(base64(bytes))
            --b1--

            """
    }

    /// EICAR quoted-printable: soft line breaks and encoded characters, so its bytes are not in the message.
    static let eicarQuotedPrintable = #"=58=35O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STAN="# + "\n" + #"DARD-ANTIVIRUS-TEST-FILE!$H+H=2A"#

    /// `content` uuencoded as a `begin 644 NAME` ... `end` block.
    static func uuencode(_ content: [UInt8], name: String) -> String {
        func char(_ v: UInt8) -> Character { v == 0 ? "`" : Character(UnicodeScalar(v + 32)) }
        var out = "begin 644 \(name)\n"
        var i = 0
        while i < content.count {
            let line = Array(content[i..<min(i + 45, content.count)])
            var text = String(char(UInt8(line.count)))
            var j = 0
            while j < line.count {
                let b0 = line[j], b1 = j + 1 < line.count ? line[j + 1] : 0, b2 = j + 2 < line.count ? line[j + 2] : 0
                text.append(char(b0 >> 2))
                text.append(char(((b0 & 3) << 4) | (b1 >> 4)))
                text.append(char(((b1 & 15) << 2) | (b2 >> 6)))
                text.append(char(b2 & 63))
                j += 3
            }
            out += text + "\n"
            i += 45
        }
        return out + "`\nend\n"
    }
}

/// The `DATA` line of a send's output.
func dataLine(_ output: String) -> String {
    output.split(separator: "\n").first { $0.hasPrefix("DATA ") }.map(String.init) ?? output
}
