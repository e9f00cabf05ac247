import PluginAPI
import XCTest

@testable import PosternFilterDisclaimerCore

/// Byte-level helpers: messages written with LF in the source, sent with CRLF; the filter's
/// modifications applied the way the SMTP session applies a chain's (`MessageEdits`).
enum Fixture {
    /// `text` with every LF as CRLF, as bytes.
    static func crlf(_ text: String) -> [UInt8] { Array(text.replacingOccurrences(of: "\n", with: "\r\n").utf8) }

    /// `bytes` (Latin-1 text) with LF as CRLF.
    static func crlf(latin1 bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        for b in bytes { if b == 10 { out += [13, 10] } else { out.append(b) } }
        return out
    }

    static func connection(_ direction: FilterDirection = .outbound) -> FilterConnection {
        FilterConnection(peerAddress: "127.0.0.1", listener: "submission", direction: direction, isSecure: false)
    }

    static func message(_ bytes: [UInt8], sender: String = "alice@example.org", recipients: [String] = ["bob@remote.example"],
                        direction: FilterDirection = .outbound) -> FilterMessage {
        FilterMessage(bytes: bytes, sender: sender, recipients: recipients, connection: connection(direction))
    }

    /// The message after `modifications`: header fields arranged by `MessageEdits`, the new body
    /// or the old one.
    static func applied(_ modifications: [FilterModification], to message: [UInt8]) -> [UInt8] {
        let edits = MessageEdits(merging: [(filter: "disclaimer", modifications: modifications)])
        let block = MailHeaderBlock(parsing: message)
        var out: [UInt8] = []
        for field in edits.arrange(receivedNames: block.fields.map(\.name)) {
            switch field {
            case .received(let i): out += Array(block.fields[i].name.utf8) + [58] + block.fields[i].rawValue + [13, 10]
            case .new(let f): out += Array("\(f.name): \(f.value)\r\n".utf8)
            }
        }
        return out + [13, 10] + edits.body(from: Array(message[block.bodyOffset...]))
    }

    static func string(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    /// The part numbered `index` of `bytes`.
    static func part(_ bytes: [UInt8], _ index: Int) throws -> MIMEPart {
        try XCTUnwrap(MIMEMessage(parsing: bytes).root.allParts.first { $0.index == index }, "no part \(index)")
    }
}
