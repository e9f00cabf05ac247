/// What a literal stands for; an APPEND message has its own size limit and may carry NUL bytes.
enum IMAPLiteralRole: Sendable, Hashable {
    case string
    case message
}

/// Why the reader stopped short of a command.
enum IMAPReaderStop: Error {
    /// The command is malformed: the reply is `BAD` with this text (and code, if any).
    case syntax(String, IMAPResponseCode?)
    /// Partial reading only: everything up to a literal header at the very end of the input was
    /// well formed, and the literal will be a `role`.
    case needLiteral(IMAPLiteralRole)

    static func bad(_ text: String) -> IMAPReaderStop { .syntax(text, nil) }
}

/// The bytes of one command as the framer assembled them: the lines without their terminators,
/// each literal's contents right after the line that announced it, and where those contents lie
/// (so they are never read as syntax).
struct IMAPRawCommand: Sendable {
    var bytes: [UInt8] = []
    var literals: [Range<Int>] = []
}

/// Recursive-descent reader for one command (RFC 3501 §9 and the extensions in
/// Plugins/IMAP/README.md) over `IMAPRawCommand`. Pure and single use. Recursion happens only for
/// nested SEARCH keys, and `depth` is held to the nesting limit.
///
/// `partial` reads a command whose input stops right after a literal header (`{n}`) whose
/// contents have not arrived: reaching that header as a string ends the reading with
/// `.needLiteral`, any error before it is a real error. The framer uses that to decide whether
/// to send a continuation for the first literal of a command.
struct IMAPCommandReader {
    let bytes: [UInt8]
    let literals: [Range<Int>]
    let partial: Bool
    let utf8Accept: Bool
    let maxDepth: Int
    var pos = 0
    var nextLiteral = 0
    var depth = 0
    var commandName = ""
    /// The tag once read, for the error reply.
    var tag: String?

    init(_ raw: IMAPRawCommand, options: IMAPParserOptions, partial: Bool = false) {
        bytes = raw.bytes
        literals = raw.literals
        self.partial = partial
        utf8Accept = options.utf8Accept
        maxDepth = options.limits.maxNestingDepth
    }

    /// Reads the whole command.
    static func read(_ raw: IMAPRawCommand, options: IMAPParserOptions) -> Result<IMAPTaggedCommand, IMAPCommandError> {
        var reader = IMAPCommandReader(raw, options: options)
        do {
            return .success(try reader.command())
        } catch IMAPReaderStop.syntax(let text, let code) {
            return .failure(IMAPCommandError(tag: reader.tag, code: code, text: text))
        } catch {
            return .failure(IMAPCommandError(tag: reader.tag, text: "Incomplete command"))
        }
    }

    /// Reads a command up to its first literal, whose header ends the input. The result tells
    /// what the literal will be, or why the command is refused already.
    static func readPrefix(_ raw: IMAPRawCommand, options: IMAPParserOptions)
        -> (tag: String?, commandName: String, outcome: Result<IMAPLiteralRole, IMAPCommandError>) {
        var reader = IMAPCommandReader(raw, options: options, partial: true)
        do {
            _ = try reader.command()
            // Cannot happen: the input ends in a literal header, which nothing reads as complete.
            return (reader.tag, reader.commandName, .failure(IMAPCommandError(tag: reader.tag, text: "Unexpected literal")))
        } catch IMAPReaderStop.needLiteral(let role) {
            return (reader.tag, reader.commandName, .success(role))
        } catch IMAPReaderStop.syntax(let text, let code) {
            return (reader.tag, reader.commandName, .failure(IMAPCommandError(tag: reader.tag, code: code, text: text)))
        } catch {
            return (reader.tag, reader.commandName, .failure(IMAPCommandError(tag: reader.tag, text: "Invalid command")))
        }
    }

    // MARK: - Positions

    /// Where the text being read ends: the start of the next literal's contents, or the end.
    var textEnd: Int { nextLiteral < literals.count ? literals[nextLiteral].lowerBound : bytes.count }

    func peek() -> UInt8? { pos < textEnd ? bytes[pos] : nil }

    func peek(is c: Character) -> Bool { peek() == c.asciiValue! }

    var atEnd: Bool { pos == bytes.count }

    func describeNext(_ what: String) -> String {
        guard let c = peek() else { return atEnd ? "Missing \(what)" : "Expected \(what)" }
        if c >= 0x80 { return "8-bit characters are not allowed here (expected \(what))" }
        if c < 0x20 || c == 0x7F { return "Control characters are not allowed (expected \(what))" }
        if c == 0x20 { return "Unexpected extra space (expected \(what))" }
        return "Expected \(what), found '\(Character(Unicode.Scalar(c)))'"
    }

    /// One SP before `what`.
    mutating func space(_ what: String) throws {
        guard peek(is: " ") else {
            if atEnd { throw IMAPReaderStop.bad("Missing arguments for \(commandName) (expected \(what))") }
            throw IMAPReaderStop.bad(describeNext("a space before \(what)"))
        }
        pos += 1
    }

    mutating func expect(_ c: Character, _ what: String) throws {
        guard peek(is: c) else { throw IMAPReaderStop.bad(describeNext(what)) }
        pos += 1
    }

    /// After an item of a parenthesised list: true (the space consumed) when another item
    /// follows, false (the ")" consumed) at the list's end.
    mutating func nextListItem(_ what: String) throws -> Bool {
        if peek(is: ")") { pos += 1; return false }
        if peek(is: " ") { pos += 1; return true }
        if atEnd { throw IMAPReaderStop.bad("Missing ')'") }
        throw IMAPReaderStop.bad(describeNext("')' or a space before \(what)"))
    }

    mutating func expectEnd() throws {
        guard let c = peek(), !atEnd else {
            guard atEnd else { throw IMAPReaderStop.bad("Too many arguments for \(commandName)") }
            return
        }
        if c >= 0x80 { throw IMAPReaderStop.bad("8-bit characters are not allowed here") }
        if c < 0x20 || c == 0x7F { throw IMAPReaderStop.bad("Control characters are not allowed here") }
        if c == 0x20 && pos + 1 == bytes.count { throw IMAPReaderStop.bad("Unexpected space at the end of the line") }
        throw IMAPReaderStop.bad("Too many arguments for \(commandName)")
    }

    // MARK: - Tokens

    mutating func atom(_ what: String) throws -> ArraySlice<UInt8> {
        let start = pos, end = textEnd
        while pos < end, IMAPCharacters.isAtomChar(bytes[pos]) { pos += 1 }
        guard pos > start else { throw IMAPReaderStop.bad(describeNext(what)) }
        return bytes[start..<pos]
    }

    /// The next atom upper-cased, without consuming it.
    func peekAtomUpper() -> String {
        var p = pos
        let end = textEnd
        while p < end, IMAPCharacters.isAtomChar(bytes[p]) { p += 1 }
        return IMAPCharacters.upper(bytes[pos..<p])
    }

    mutating func keyword(_ word: String) -> Bool {
        let w = Array(word.utf8)
        let end = pos + w.count
        guard end <= textEnd, IMAPCharacters.equalsIgnoringCase(bytes[pos..<end], word),
              end == textEnd || !IMAPCharacters.isAtomChar(bytes[end]) else { return false }
        pos = end
        return true
    }

    mutating func digits() -> ArraySlice<UInt8> {
        let start = pos, end = textEnd
        while pos < end, IMAPCharacters.isDigit(bytes[pos]) { pos += 1 }
        return bytes[start..<pos]
    }

    mutating func number(_ what: String) throws -> UInt32 {
        let d = digits()
        guard !d.isEmpty else { throw IMAPReaderStop.bad(describeNext(what)) }
        guard let n = parseNumber(d) else { throw IMAPReaderStop.bad("Number too large for \(what)") }
        return n
    }

    mutating func nonZeroNumber(_ what: String) throws -> UInt32 {
        let n = try number(what)
        guard n > 0 else { throw IMAPReaderStop.bad("\(what.prefix(1).uppercased() + what.dropFirst()) must not be 0") }
        return n
    }

    mutating func number64(_ what: String) throws -> UInt64 {
        let d = digits()
        guard !d.isEmpty else { throw IMAPReaderStop.bad(describeNext(what)) }
        guard let n = parseNumber64(d) else { throw IMAPReaderStop.bad("Number too large for \(what)") }
        return n
    }

    mutating func quoted() throws -> [UInt8] {
        pos += 1
        var out: [UInt8] = []
        var eightBit = false
        let end = textEnd
        while true {
            guard pos < end else { throw IMAPReaderStop.bad("Unterminated quoted string") }
            let c = bytes[pos]
            if c == UInt8(ascii: "\"") { pos += 1; break }
            if c == UInt8(ascii: "\\") {
                guard pos + 1 < end, bytes[pos + 1] == UInt8(ascii: "\"") || bytes[pos + 1] == UInt8(ascii: "\\") else {
                    throw IMAPReaderStop.bad("Invalid escape in quoted string (only \\\\ and \\\" are allowed)")
                }
                out.append(bytes[pos + 1])
                pos += 2
                continue
            }
            if c >= 0x80 {
                // RFC 3501 wants a literal for 8-bit text, but real clients send UTF-8 in quotes
                // (imapfilter's SEARCH SUBJECT "München"), and Dovecot takes it: so do we, when it
                // is valid UTF-8. Mailbox names still have to be modified UTF-7 unless the client
                // enabled UTF8=ACCEPT (mailboxName).
                eightBit = true
            } else if !IMAPCharacters.isQuotedTextChar(c) {
                throw IMAPReaderStop.bad("Control characters are not allowed in a quoted string")
            }
            out.append(c)
            pos += 1
        }
        if eightBit && String(validating: out, as: UTF8.self) == nil { throw IMAPReaderStop.bad("Invalid UTF-8 in quoted string") }
        return out
    }

    /// `{n}` / `{n+}` (or `~{n}` when `binary`) and the contents the framer put after it.
    mutating func literal(_ role: IMAPLiteralRole, binary: Bool = false) throws -> [UInt8] {
        if binary && peek(is: "~") { pos += 1 }
        try expect("{", "a literal")
        let size = digits()
        guard !size.isEmpty, size.count <= 18 else { throw IMAPReaderStop.bad("Invalid literal size") }
        if peek(is: "+") { pos += 1 }
        try expect("}", "'}' after the literal size")
        if nextLiteral < literals.count, literals[nextLiteral].lowerBound == pos {
            let range = literals[nextLiteral]
            guard parseNumber64(size) == UInt64(range.count) else { throw IMAPReaderStop.bad("Invalid literal size") }
            nextLiteral += 1
            pos = range.upperBound
            let contents = Array(bytes[range])
            if role == .string && contents.contains(0) { throw IMAPReaderStop.bad("NUL byte in literal") }
            return contents
        }
        if partial && pos == bytes.count { throw IMAPReaderStop.needLiteral(role) }
        throw IMAPReaderStop.bad("A literal's size must end the line")
    }

    /// `string`: quoted or literal.
    mutating func string(_ what: String) throws -> [UInt8] {
        switch peek() {
        case UInt8(ascii: "\""): return try quoted()
        case UInt8(ascii: "{"): return try literal(.string)
        default: throw IMAPReaderStop.bad(describeNext(what))
        }
    }

    /// `astring`: atom (with "]"), quoted or literal.
    mutating func astring(_ what: String) throws -> [UInt8] {
        switch peek() {
        case UInt8(ascii: "\""): return try quoted()
        case UInt8(ascii: "{"): return try literal(.string)
        default:
            let start = pos, end = textEnd
            while pos < end, IMAPCharacters.isAStringChar(bytes[pos]) { pos += 1 }
            guard pos > start else { throw IMAPReaderStop.bad(describeNext(what)) }
            return Array(bytes[start..<pos])
        }
    }

    /// `nstring`: NIL or a string.
    mutating func nstring(_ what: String) throws -> [UInt8]? {
        if keyword("NIL") { return nil }
        return try string(what)
    }

    mutating func text(_ what: String) throws -> String {
        let value = try astring(what)
        guard let text = String(validating: value, as: UTF8.self) else { throw IMAPReaderStop.bad("\(what.prefix(1).uppercased() + what.dropFirst()) is not UTF-8") }
        return text
    }
}

/// Client text quoted in an error reply, cut to 40 characters so a reply stays short.
func echo(_ text: String) -> String {
    text.count > 40 ? String(text.prefix(40)) + "..." : text
}

func echo<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
    echo(String(decoding: Array(bytes), as: UTF8.self))
}
