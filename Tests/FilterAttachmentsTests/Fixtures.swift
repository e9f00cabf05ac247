import Foundation
import PluginAPI
@testable import PosternFilterAttachmentsCore
import ZIPFoundation

/// Byte-level fixtures shared by the test classes: contents with known magic bytes, ZIP archives
/// built here with ZIPFoundation, messages with CRLF line ends, and the message the queue would
/// get after a filter's modifications.
enum Fixture {
    /// A minimal Windows PE: `MZ`, `e_lfanew` = 0x40, `PE\0\0` there.
    static var windowsExecutable: [UInt8] {
        var b = [UInt8](repeating: 0, count: 0x80)
        b[0] = 0x4d; b[1] = 0x5a
        b[0x3c] = 0x40
        b[0x40] = 0x50; b[0x41] = 0x45
        return b + Array("This program cannot be run in DOS mode.".utf8)
    }

    static let elfExecutable: [UInt8] = [0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0] + [UInt8](repeating: 0, count: 56)
    static let png: [UInt8] = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13] + Array("IHDR".utf8) + [UInt8](repeating: 1, count: 20)
    static let pdf: [UInt8] = Array("%PDF-1.7\n1 0 obj\n<<>>\nendobj\n%%EOF\n".utf8)

    /// A ZIP archive of `members` (path, content), deflated or stored.
    static func zip(_ members: [(String, [UInt8])], compressed: Bool = true) throws -> [UInt8] {
        let archive = try Archive(data: Data(), accessMode: .create)
        for (path, content) in members {
            let data = Data(content)
            try archive.addEntry(with: path, type: .file, uncompressedSize: Int64(data.count),
                                 compressionMethod: compressed ? .deflate : .none) { position, size in
                data.subdata(in: Int(position)..<Int(position) + size)
            }
        }
        return [UInt8](archive.data ?? Data())
    }

    /// `zip` with bit 0 (encrypted) set in every local and central directory header, as a
    /// password-protected archive has it (the content itself is not encrypted: only the names
    /// matter here).
    static func markedEncrypted(_ zip: [UInt8]) -> [UInt8] {
        var b = zip
        var i = 0
        while i + 10 < b.count {
            if b[i] == 0x50 && b[i + 1] == 0x4b {
                if b[i + 2] == 3 && b[i + 3] == 4 { b[i + 6] |= 1 }
                if b[i + 2] == 1 && b[i + 3] == 2 { b[i + 8] |= 1 }
            }
            i += 1
        }
        return b
    }

    /// Base64 in lines ended by LF (`crlf` makes them CRLF with the rest of a fixture).
    static func base64(_ bytes: [UInt8]) -> String {
        String(decoding: Base64Encoder.encode(bytes), as: UTF8.self).replacingOccurrences(of: "\r\n", with: "\n")
    }

    /// `text` with every LF made CRLF, each character one Latin-1 byte (a fixture in ISO-8859-1).
    static func latin1(_ text: String) -> [UInt8] {
        text.replacingOccurrences(of: "\n", with: "\r\n").unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) }
    }

    /// `text` with every LF made CRLF, as bytes.
    static func crlf(_ text: String) -> [UInt8] { Array(text.replacingOccurrences(of: "\n", with: "\r\n").utf8) }

    /// A uuencoded block of `content` (`begin 644 NAME` ... `end`), LF line ends.
    static func uuencode(_ content: [UInt8], name: String) -> String {
        func char(_ v: UInt8) -> Character { v == 0 ? "`" : Character(UnicodeScalar(v + 32)) }
        var out = "begin 644 \(name)\n"
        var i = 0
        while i < content.count {
            let line = Array(content[i..<min(i + 45, content.count)])
            var text = String(char(UInt8(line.count)))
            var j = 0
            while j < line.count {
                let a = line[j], b = j + 1 < line.count ? line[j + 1] : 0, c = j + 2 < line.count ? line[j + 2] : 0
                text.append(char(a >> 2)); text.append(char((a & 3) << 4 | b >> 4))
                text.append(char((b & 15) << 2 | c >> 6)); text.append(char(c & 63))
                j += 3
            }
            out += text + "\n"
            i += 45
        }
        return out + "`\nend\n"
    }

    /// The message a `FilterMessage` of `bytes` to `recipients` from `sender` on an inbound listener.
    static func message(_ bytes: [UInt8], sender: String = "sender@remote.example", recipients: [String] = ["rcpt@example.org"],
                        direction: FilterDirection = .inbound) -> FilterMessage {
        FilterMessage(bytes: bytes, sender: sender, recipients: recipients,
                      connection: FilterConnection(peerAddress: "192.0.2.1", listener: "mx", direction: direction, isSecure: false))
    }

    /// `bytes` after `modifications`, as the SMTP session writes the spool file (MessageEdits).
    static func applying(_ modifications: [FilterModification], to bytes: [UInt8]) -> [UInt8] {
        let edits = MessageEdits(merging: [("attachments", modifications)])
        let block = MailHeaderBlock(parsing: bytes)
        var out: [UInt8] = []
        for arranged in edits.arrange(receivedNames: block.fields.map(\.name)) {
            switch arranged {
            case .received(let i):
                let f = block.fields[i]
                out += Array(f.name.utf8) + [58] + f.rawValue + [13, 10]
            case .new(let f):
                out += Array("\(f.name): \(f.value)\r\n".utf8)
            }
        }
        out += [13, 10]
        out += edits.body(from: Array(bytes[min(block.bodyOffset, bytes.count)...]))
        return out
    }

    static func inspector(_ settings: AttachmentSettings = AttachmentSettings()) -> AttachmentInspector {
        AttachmentInspector(settings: settings)
    }
}

extension Array where Element == UInt8 {
    var text: String { String(decoding: self, as: UTF8.self) }

    func contains(_ needle: String) -> Bool {
        let n = Array(needle.utf8)
        guard n.count <= count else { return false }
        return (0...(count - n.count)).contains { self[$0..<($0 + n.count)].elementsEqual(n) }
    }
}
