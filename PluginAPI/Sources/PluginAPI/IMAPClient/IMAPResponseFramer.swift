/// Cuts the byte stream an IMAP server sends into whole responses: one line, or a line whose
/// literals (`{N}` CRLF and N octets) continue it (RFC 3501 §4.3). A pure state machine: bytes
/// in, responses out, so the client's NIO handler only forwards bytes.
public struct IMAPResponseFramer: Sendable {
    public enum FramingError: Error, Equatable {
        /// A response, literals included, grew past the configured limit.
        case responseTooLarge(limit: Int)
        /// A literal announced a length that is not a number.
        case badLiteralLength
    }

    let maxResponseSize: Int
    private var current: [UInt8] = []
    /// Octets of a literal still to copy before the line goes on.
    private var literalRemaining = 0
    /// Where the scan for CRLF resumes in `current` (bytes before it hold no line end).
    private var scanFrom = 0

    public init(maxResponseSize: Int = 64 << 20) {
        self.maxResponseSize = maxResponseSize
    }

    /// Feeds bytes; returns every response they complete, each with its final CRLF.
    public mutating func feed<Bytes: Collection>(_ bytes: Bytes) throws -> [[UInt8]] where Bytes.Element == UInt8 {
        var out: [[UInt8]] = []
        var index = bytes.startIndex
        while index != bytes.endIndex {
            if literalRemaining > 0 {
                let available = bytes.distance(from: index, to: bytes.endIndex)
                let n = min(available, literalRemaining)
                let end = bytes.index(index, offsetBy: n)
                current.append(contentsOf: bytes[index..<end])
                literalRemaining -= n
                index = end
                if literalRemaining == 0 { scanFrom = current.count }
                try checkSize()
                continue
            }
            let byte = bytes[index]
            index = bytes.index(after: index)
            current.append(byte)
            guard byte == UInt8(ascii: "\n") else { continue }
            if let length = try literalLength() {
                literalRemaining = length
                if length == 0 { scanFrom = current.count }
            } else {
                out.append(current)
                current = []
                scanFrom = 0
            }
            try checkSize()
        }
        try checkSize()
        return out
    }

    private func checkSize() throws {
        if current.count > maxResponseSize { throw FramingError.responseTooLarge(limit: maxResponseSize) }
    }

    /// The length of the literal announced at the end of the line just completed, or nil when
    /// the line ends the response.
    private func literalLength() throws -> Int? {
        var end = current.count - 1                     // at LF
        if end > 0 && current[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        guard end > scanFrom, current[end - 1] == UInt8(ascii: "}") else { return nil }
        var i = end - 2
        var digits = 0
        while i >= scanFrom, current[i] >= UInt8(ascii: "0"), current[i] <= UInt8(ascii: "9") {
            i -= 1
            digits += 1
        }
        // `{N+}` and `~{N}` (LITERAL+ and BINARY) are client-side forms; a server sends `{N}`,
        // but a binary literal (`~{N}`) in a FETCH BINARY answer is framed the same way.
        guard i >= scanFrom, current[i] == UInt8(ascii: "{") else { return nil }
        guard digits > 0, digits <= 10 else { throw FramingError.badLiteralLength }
        let text = String(decoding: current[(i + 1)..<(end - 1)], as: UTF8.self)
        guard let n = Int(text), n <= maxResponseSize else {
            throw digits > 0 && Int(text) != nil ? FramingError.responseTooLarge(limit: maxResponseSize) : FramingError.badLiteralLength
        }
        return n
    }
}
