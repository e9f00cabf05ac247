/// Makes an 8-bit message 7-bit for a server that does not announce 8BITMIME (RFC 6152 §3 leaves
/// the client two choices: convert or return the message). Pure: message bytes in, bytes out.
///
/// MIME-aware, part by part, everything else copied byte for byte:
/// - a text part with 8-bit octets is re-encoded as quoted-printable (its line ends are hard
///   breaks), any other leaf part as base64; its Content-Transfer-Encoding field is replaced, or
///   added at the end of its header;
/// - a quoted-printable part with raw 8-bit octets (malformed, but seen) gets those octets escaped;
/// - multiparts and message/rfc822 parts are walked into; a `8bit`/`binary` label on them
///   becomes `7bit`, since what they hold is 7-bit afterwards;
/// - a message without `MIME-Version:` gets one, so readers honour the new encoding.
/// It fails when 8-bit octets are where no encoding can reach them: in a header (the message's
/// own or a part's), a preamble or epilogue, a base64 part, or a container the parser could not
/// open (no boundary, too deep).
public enum EightBitDowngrade {
    public enum Failure: Error, Sendable, Equatable, CustomStringConvertible {
        case eightBitHeader(part: Int)
        case eightBitInEncodedPart(part: Int, encoding: String)
        case unparsedContainer(part: Int)
        case eightBitOutsideParts

        public var description: String {
            switch self {
            case .eightBitHeader(let part): return part == 0 ? "8-bit octets in the message header" : "8-bit octets in the header of MIME part \(part)"
            case .eightBitInEncodedPart(let part, let encoding): return "8-bit octets in MIME part \(part), encoded as \(encoding)"
            case .unparsedContainer(let part): return "8-bit octets in MIME part \(part), whose structure could not be parsed"
            case .eightBitOutsideParts: return "8-bit octets outside any MIME part (preamble or epilogue)"
            }
        }
    }

    /// One change to the original: `range` replaced by `bytes` (an empty range inserts).
    private struct Edit {
        var range: Range<Int>
        var bytes: [UInt8]
        var order: Int
    }

    public static func convert(_ message: [UInt8]) -> Result<[UInt8], Failure> {
        let parsed = MIMEMessage(parsing: message)
        var edits: [Edit] = []
        do {
            try visit(parsed.root, in: message, edits: &edits)
        } catch let failure as Failure {
            return .failure(failure)
        } catch {
            preconditionFailure("\(error)")
        }
        guard !edits.isEmpty else {
            // Nothing to encode: the caller saw 8-bit octets, so they are outside every part.
            return message.contains(where: { $0 >= 0x80 }) ? .failure(.eightBitOutsideParts) : .success(message)
        }
        if parsed.root.field("MIME-Version") == nil {
            let at = headerInsertionPoint(parsed.root, in: message)
            edits.append(Edit(range: at..<at, bytes: Array("MIME-Version: 1.0\r\n".utf8), order: -1))
        }
        edits.sort { ($0.range.lowerBound, $0.order) < ($1.range.lowerBound, $1.order) }
        var out: [UInt8] = []
        out.reserveCapacity(message.count + message.count / 3 + 64)
        var position = 0
        for edit in edits {
            out += message[position..<edit.range.lowerBound]
            out += edit.bytes
            position = edit.range.upperBound
        }
        out += message[position...]
        if out.contains(where: { $0 >= 0x80 }) { return .failure(.eightBitOutsideParts) }
        return .success(out)
    }

    private static func visit(_ part: MIMEPart, in message: [UInt8], edits: inout [Edit]) throws {
        let header = message[part.headerOffset..<(part.headerOffset + part.headerSize)]
        if header.contains(where: { $0 >= 0x80 }) { throw Failure.eightBitHeader(part: part.index) }
        let encoding = part.contentTransferEncoding?.lowercased()
        if part.isMultipart || part.isMessage {
            for child in part.children { try visit(child, in: message, edits: &edits) }
            if encoding == "8bit" || encoding == "binary" {
                replaceEncoding(of: part, with: "7bit", in: message, edits: &edits)
            }
            return
        }
        let bodyRange = part.bodyOffset..<(part.bodyOffset + part.bodySize)
        let body = message[bodyRange]
        guard body.contains(where: { $0 >= 0x80 }) else { return }
        if part.contentType.isMultipart || part.contentType.isMessage { throw Failure.unparsedContainer(part: part.index) }
        switch encoding ?? "7bit" {
        case "7bit", "8bit", "binary":
            let encoded: [UInt8]
            let name: String
            if part.contentType.isText {
                encoded = QuotedPrintableEncoder.encode(body, mode: .text)
                name = "quoted-printable"
            } else {
                encoded = Base64Encoder.encode(body) + (body.last == 10 ? [13, 10] : [])
                name = "base64"
            }
            edits.append(Edit(range: bodyRange, bytes: encoded, order: edits.count))
            replaceEncoding(of: part, with: name, in: message, edits: &edits)
        case "quoted-printable":
            var escaped: [UInt8] = []
            escaped.reserveCapacity(body.count + 64)
            let hex = Array("0123456789ABCDEF".utf8)
            for byte in body {
                if byte >= 0x80 {
                    escaped += [UInt8(ascii: "="), hex[Int(byte >> 4)], hex[Int(byte & 15)]]
                } else {
                    escaped.append(byte)
                }
            }
            edits.append(Edit(range: bodyRange, bytes: escaped, order: edits.count))
        case let other:
            throw Failure.eightBitInEncodedPart(part: part.index, encoding: other)
        }
    }

    /// Replaces the part's Content-Transfer-Encoding field (dropping any duplicates), or adds one
    /// at the end of its header.
    private static func replaceEncoding(of part: MIMEPart, with name: String, in message: [UInt8], edits: inout [Edit]) {
        let fields = part.fields.filter { $0.hasName("Content-Transfer-Encoding") }
        let headerEnd = part.headerOffset + part.headerSize
        guard let first = fields.first else {
            let at = headerInsertionPoint(part, in: message)
            edits.append(Edit(range: at..<at, bytes: Array("Content-Transfer-Encoding: \(name)\r\n".utf8), order: edits.count))
            return
        }
        for field in fields {
            // The MIME parser gives field offsets from the start of the message.
            let start = field.offset
            let end = fieldEnd(from: start, limit: headerEnd, in: message)
            let lineEnd: [UInt8] = end >= 2 && message[end - 2] == 13 ? [13, 10] : [10]
            let replacement = field == first ? Array("Content-Transfer-Encoding: \(name)".utf8) + lineEnd : []
            edits.append(Edit(range: start..<end, bytes: replacement, order: edits.count))
        }
    }

    /// Where a new field goes: before the empty line that ends the header.
    private static func headerInsertionPoint(_ part: MIMEPart, in message: [UInt8]) -> Int {
        let end = part.headerOffset + part.headerSize
        guard end > part.headerOffset, message[end - 1] == 10 else { return end }
        // The header ended with an empty line: CR LF or a bare LF.
        if end - 2 >= part.headerOffset && message[end - 2] == 13 && (end - 2 == part.headerOffset || message[end - 3] == 10) {
            return end - 2
        }
        return end - 1
    }

    /// The offset after the line end of the field starting at `start` (folded lines included).
    private static func fieldEnd(from start: Int, limit: Int, in message: [UInt8]) -> Int {
        var i = start
        while i < limit {
            guard let lf = message[i..<limit].firstIndex(of: 10) else { return limit }
            let next = lf + 1
            if next < limit && (message[next] == 32 || message[next] == 9) {
                i = next
                continue
            }
            return next
        }
        return limit
    }
}
