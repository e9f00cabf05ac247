import Foundation

/// Changes to the parts of a received message (a part removed and replaced by a notice, a text
/// appended to a body, a part added), turned into the `FilterModification`s a filter returns at
/// end of message. Every offset is the received message's, so a content filter describes its
/// changes against what it saw and the chain merges them (`MessageEdits`).
public enum MIMERewrite {
    public enum Change: Sendable, Equatable {
        /// Replace the whole part, header and body, by `bytes` (a header block, an empty line, a body).
        case replacePart(index: Int, bytes: [UInt8])
        /// Replace the part's body only; its header stays.
        case replaceBody(index: Int, bytes: [UInt8])
        /// Add a part (header block, empty line, body) after the last part of a multipart.
        case appendPart(multipart: Int, bytes: [UInt8])
    }

    /// The fields that describe a part's content: what replacing the message's own top part changes in its header.
    public static let contentFields = ["Content-Type", "Content-Transfer-Encoding", "Content-Disposition", "Content-Description", "Content-ID"]

    /// The modifications that make `changes` to `message`: `editBody` ranges of the body, which
    /// merge with other filters' changes to other parts. Changes inside a part another change
    /// replaces are dropped (the outer one wins); replacing part 0 (the message itself) changes
    /// its content fields and replaces the whole body.
    public static func modifications(_ changes: [Change], message: [UInt8], mime: MIMEMessage) -> [FilterModification] {
        let parts = mime.root.allParts
        func part(_ index: Int) -> MIMEPart? { parts.first { $0.index == index } }
        var splices: [(range: Range<Int>, bytes: [UInt8])] = []
        var headerEdits: [FilterModification] = []
        var wholeBody: [UInt8]?
        for change in changes {
            switch change {
            case .replacePart(let index, let bytes) where index == 0:
                let block = MailHeaderBlock(parsing: bytes)
                var seen: [String: Int] = [:]
                for f in mime.root.fields {
                    let n = (seen[f.name.lowercased()] ?? 0) + 1
                    seen[f.name.lowercased()] = n
                    if contentFields.contains(where: { f.hasName($0) }) {
                        headerEdits.append(.changeHeader(name: f.name, index: n, value: nil))
                    }
                }
                for f in block.fields { headerEdits.append(.addHeader(name: f.name, value: f.text.trimmingLeadingBlanks)) }
                wholeBody = Array(bytes[min(block.bodyOffset, bytes.count)...])
            case .replacePart(let index, let bytes):
                guard let p = part(index) else { continue }
                splices.append((p.headerOffset..<(p.bodyOffset + p.bodySize), bytes))
            case .replaceBody(let index, let bytes):
                guard let p = part(index) else { continue }
                splices.append((p.bodyOffset..<(p.bodyOffset + p.bodySize), bytes))
            case .appendPart(let index, let bytes):
                guard let p = part(index), p.isMultipart, let boundary = p.contentType.boundary else { continue }
                // After the last part's body, before the line end that belongs to the close delimiter.
                let at = p.children.last.map { $0.bodyOffset + $0.bodySize } ?? (p.bodyOffset + p.bodySize)
                splices.append((at..<at, Array("\r\n--".utf8) + boundary + Array("\r\n".utf8) + bytes))
            }
        }
        if let wholeBody { return headerEdits + [.replaceBody(wholeBody)] }
        guard !splices.isEmpty else { return [] }
        let bodyStart = min(mime.root.bodyOffset, message.count)
        // Outer changes first at a position; a change inside one already kept is dropped.
        splices.sort { $0.range.lowerBound != $1.range.lowerBound ? $0.range.lowerBound < $1.range.lowerBound
                                                                 : $0.range.count > $1.range.count }
        var edits: [FilterModification] = []
        var cursor = bodyStart
        for s in splices {
            let lower = min(max(s.range.lowerBound, bodyStart), message.count), upper = min(max(s.range.upperBound, lower), message.count)
            guard lower >= cursor else { continue }
            edits.append(.editBody(range: (lower - bodyStart)..<(upper - bodyStart), bytes: s.bytes))
            cursor = upper
        }
        return edits
    }

    /// A text/plain part in UTF-8, quoted-printable: the notice that stands where a part was removed.
    public static func textPart(_ text: String, fileName: String? = nil) -> [UInt8] {
        var header = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n"
        if let fileName { header += "Content-Disposition: inline; filename=\"\(fileName.replacingOccurrences(of: "\"", with: ""))\"\r\n" }
        let body = QuotedPrintableEncoder.encode(Array(text.replacingOccurrences(of: "\r\n", with: "\n")
            .replacingOccurrences(of: "\n", with: "\r\n").utf8))
        return Array(header.utf8) + [13, 10] + body
    }
}

extension String {
    var trimmingLeadingBlanks: String { String(drop { $0 == " " || $0 == "\t" }) }
}
