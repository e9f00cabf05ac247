// Replies of an SMTP or LMTP server as the client reads them (RFC 5321 §4.2). Pure: bytes in,
// replies out, no I/O; a chunk may end anywhere, even inside a line end.

/// One complete reply: its code and the text of each line (after the code and its separator).
public struct SMTPReply: Sendable, Equatable, CustomStringConvertible {
    public var code: Int
    /// The text of every line, in order, without the code, the separator and the line end.
    public var lines: [String]

    public init(_ code: Int, _ lines: [String]) {
        self.code = code
        self.lines = lines
    }

    public var isPositive: Bool { (200..<300).contains(code) }
    public var isIntermediate: Bool { (300..<400).contains(code) }
    public var isTemporary: Bool { (400..<500).contains(code) }
    public var isPermanent: Bool { (500..<600).contains(code) }

    /// The RFC 3463 enhanced status code at the start of the first line, when there is one whose
    /// class matches the reply's (a `250 5.0.0` is not believed).
    public var enhancedCode: String? {
        guard let first = lines.first else { return nil }
        let word = first.prefix { $0 != " " }
        let parts = word.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 1, let klass = Int(parts[0]), klass == code / 100,
              (1...3).contains(parts[1].count), (1...3).contains(parts[2].count),
              parts.allSatisfy({ $0.allSatisfy { $0.isASCII && $0.isNumber } }) else { return nil }
        return String(word)
    }

    /// The text with the enhanced code taken off each line, lines joined by a space (as Postfix
    /// quotes multi-line replies in its logs and reports).
    public var text: String {
        guard let enhanced = enhancedCode else { return lines.joined(separator: " ") }
        return lines.map { line in
            line.hasPrefix(enhanced + " ") ? String(line.dropFirst(enhanced.count + 1))
                : line == enhanced ? "" : line
        }.joined(separator: " ")
    }

    /// The reply as a `MailReply`; a missing enhanced code becomes `X.0.0` of the reply's class,
    /// so every outcome carries one.
    public var mailReply: MailReply {
        MailReply(code, enhancedCode ?? "\(code / 100).0.0", text)
    }

    public var description: String {
        lines.enumerated().map { "\(code)\($0.offset == lines.count - 1 ? " " : "-")\($0.element)" }.joined(separator: "\\n")
    }
}

/// Why the bytes from the server are not a reply. Any of these ends the conversation: what
/// follows cannot be trusted to line up with the commands sent.
public enum SMTPReplyError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A line that does not start with three digits (the first 2-5).
    case notAReply(String)
    /// A line whose fourth character is neither a space, a hyphen nor the line end.
    case badSeparator(String)
    /// A continuation line of a multi-line reply with another code than the first line's.
    case mismatchedCode(expected: Int, found: Int)
    /// A line longer than the limit.
    case lineTooLong(limit: Int)
    /// A multi-line reply of more lines than the limit.
    case tooManyLines(limit: Int)

    public var description: String {
        switch self {
        case .notAReply(let line): return "not an SMTP reply: \"\(line)\""
        case .badSeparator(let line): return "malformed reply line: \"\(line)\""
        case .mismatchedCode(let expected, let found): return "reply line with code \(found) inside a \(expected) reply"
        case .lineTooLong(let limit): return "reply line longer than \(limit) octets"
        case .tooManyLines(let limit): return "reply of more than \(limit) lines"
        }
    }
}

/// Reads replies from the server's byte stream. Lines end in CRLF or a bare LF (servers that
/// send bare LF exist, and nothing is ambiguous about it on the client side). Memory is bounded
/// by `maxLineLength` and `maxLines`.
public struct SMTPReplyParser: Sendable {
    /// The longest line accepted, line end excluded. RFC 5321 §4.5.3.1.5 allows 512 octets with
    /// the line end; real servers send longer ones (long EHLO keywords, long rejection texts).
    public let maxLineLength: Int
    /// The most lines one reply may have.
    public let maxLines: Int

    private var buffer: [UInt8] = []
    private var scanned = 0
    private var pendingCode: Int?
    private var pendingLines: [String] = []
    private var failure: SMTPReplyError?

    public init(maxLineLength: Int = 4096, maxLines: Int = 1000) {
        self.maxLineLength = maxLineLength
        self.maxLines = maxLines
    }

    /// Whether bytes of an unfinished reply are held. After a `220` to STARTTLS this must be
    /// false: anything the server sent before the handshake was not protected by it (CVE-2011-0411).
    public var hasBufferedInput: Bool { !buffer.isEmpty || pendingCode != nil }

    /// Adds bytes read from the connection.
    public mutating func feed<Bytes: Collection>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        buffer.append(contentsOf: bytes)
    }

    /// The next complete reply, nil when more bytes are needed. Once it has thrown it throws the
    /// same error again: the stream is not resynchronised.
    public mutating func next() throws -> SMTPReply? {
        if let failure { throw failure }
        do {
            return try parseNext()
        } catch let error as SMTPReplyError {
            failure = error
            buffer.removeAll()
            throw error
        }
    }

    private mutating func parseNext() throws -> SMTPReply? {
        while true {
            guard let lf = buffer[scanned...].firstIndex(of: UInt8(ascii: "\n")) else {
                scanned = buffer.count
                // A line end may still come: the limit counts the line, not a CR waiting for its LF.
                let held = buffer.last == UInt8(ascii: "\r") ? buffer.count - 1 : buffer.count
                if held > maxLineLength { throw SMTPReplyError.lineTooLong(limit: maxLineLength) }
                return nil
            }
            var end = lf
            if end > 0 && buffer[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            if end > maxLineLength { throw SMTPReplyError.lineTooLong(limit: maxLineLength) }
            let line = Array(buffer[..<end])
            buffer.removeSubrange(...lf)
            scanned = 0
            if let reply = try take(line) { return reply }
        }
    }

    /// One line; returns the reply when it was the last line of one.
    private mutating func take(_ line: [UInt8]) throws -> SMTPReply? {
        let shown = String(decoding: line.prefix(80), as: UTF8.self)
        guard line.count >= 3, (UInt8(ascii: "2")...UInt8(ascii: "5")).contains(line[0]),
              line[1...2].allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else {
            throw SMTPReplyError.notAReply(shown)
        }
        let code = Int(line[0] - 48) * 100 + Int(line[1] - 48) * 10 + Int(line[2] - 48)
        let last: Bool
        if line.count == 3 || line[3] == UInt8(ascii: " ") {
            last = true
        } else if line[3] == UInt8(ascii: "-") {
            last = false
        } else {
            throw SMTPReplyError.badSeparator(shown)
        }
        if let expected = pendingCode, expected != code { throw SMTPReplyError.mismatchedCode(expected: expected, found: code) }
        pendingCode = code
        pendingLines.append(line.count > 4 ? String(decoding: line[4...], as: UTF8.self) : "")
        if last {
            defer {
                pendingCode = nil
                pendingLines = []
            }
            return SMTPReply(code, pendingLines)
        }
        if pendingLines.count >= maxLines { throw SMTPReplyError.tooManyLines(limit: maxLines) }
        return nil
    }
}

/// What a server announced in its EHLO (or LHLO) reply (RFC 5321 §4.1.1.1): keyword, parameters.
public struct SMTPServerExtensions: Sendable, Equatable {
    /// Upper-cased keyword -> its parameters as written.
    public private(set) var keywords: [String: [String]] = [:]

    public init() {}

    /// From the lines of a positive EHLO reply; the first line is the server's greeting name.
    public init(ehlo reply: SMTPReply) {
        for line in reply.lines.dropFirst() {
            let words = line.split(separator: " ").map(String.init)
            guard let keyword = words.first?.uppercased(), !keyword.isEmpty else { continue }
            keywords[keyword] = Array(words.dropFirst())
        }
    }

    public func has(_ keyword: String) -> Bool { keywords[keyword] != nil }

    /// The server's SIZE limit (RFC 1870): nil when it did not announce SIZE, 0 when it did
    /// without a limit.
    public var sizeLimit: Int? {
        guard let parameters = keywords["SIZE"] else { return nil }
        return parameters.first.flatMap { Int($0) } ?? 0
    }
}
