/// One IMAP data item as a client reads it: enough structure for FETCH, LIST, STATUS, SEARCH,
/// QUOTA and CAPABILITY answers without a grammar per response.
public enum IMAPValue: Equatable, Sendable {
    /// An atom or number as written. A section spec stays attached (`BODY[HEADER]<0>`).
    case atom(String)
    /// A quoted string or a literal, as bytes.
    case string([UInt8])
    case list([IMAPValue])
    case nil_

    public var text: String? {
        switch self {
        case .atom(let a): return a
        case .string(let s): return String(decoding: s, as: UTF8.self)
        default: return nil
        }
    }

    public var bytes: [UInt8]? {
        switch self {
        case .string(let s): return s
        case .atom(let a): return Array(a.utf8)
        default: return nil
        }
    }

    public var number: Int? { if case .atom(let a) = self { return Int(a) } else { return nil } }
    public var list: [IMAPValue]? { if case .list(let l) = self { return l } else { return nil } }
}

/// A whole server response (one frame from `IMAPResponseFramer`).
public enum IMAPServerResponse: Equatable, Sendable {
    public enum Status: String, Sendable { case ok = "OK", no = "NO", bad = "BAD", bye = "BYE", preauth = "PREAUTH" }

    /// `+ text`: the server waits for a literal or a SASL answer.
    case continuation(String)
    /// `TAG OK/NO/BAD [CODE] text`.
    case tagged(tag: String, status: Status, code: String?, text: String)
    /// `* OK/NO/BAD/BYE/PREAUTH [CODE] text`.
    case untaggedStatus(status: Status, code: String?, text: String)
    /// `* NAME values` or `* N NAME values` (the number first, as in EXISTS and FETCH).
    case data(number: Int?, name: String, values: [IMAPValue])
}

public enum IMAPParseError: Error, Equatable {
    case malformed(String)
}

/// Parses a response frame. Malformed responses are errors, never crashes: the client treats one
/// as a broken connection.
public enum IMAPResponseParser {
    public static func parse(_ frame: [UInt8]) throws -> IMAPServerResponse {
        var bytes = frame[...]
        if bytes.last == UInt8(ascii: "\n") { bytes = bytes.dropLast() }
        if bytes.last == UInt8(ascii: "\r") { bytes = bytes.dropLast() }
        var cursor = Cursor(bytes: bytes)
        if cursor.eat("+") {
            cursor.skipSpace()
            return .continuation(cursor.rest())
        }
        let tag: String?
        if cursor.eat("*") {
            tag = nil
        } else {
            guard let t = cursor.readAtom(), !t.isEmpty else { throw IMAPParseError.malformed("no tag") }
            tag = t
        }
        guard cursor.eat(" ") else { throw IMAPParseError.malformed("no space after tag") }
        guard let first = cursor.readAtom(), !first.isEmpty else { throw IMAPParseError.malformed("no response name") }
        if let status = IMAPServerResponse.Status(rawValue: first.uppercased()) {
            cursor.skipSpace()
            let (code, text) = cursor.responseText()
            if let tag { return .tagged(tag: tag, status: status, code: code, text: text) }
            return .untaggedStatus(status: status, code: code, text: text)
        }
        guard tag == nil else { throw IMAPParseError.malformed("tagged response that is not a status") }
        var number: Int?
        var name = first
        if let n = Int(first) {
            number = n
            guard cursor.eat(" "), let second = cursor.readAtom(), !second.isEmpty else { throw IMAPParseError.malformed("number without name") }
            name = second
        }
        var values: [IMAPValue] = []
        while true {
            cursor.skipSpace()
            if cursor.atEnd { break }
            values.append(try cursor.readValue(depth: 0))
        }
        return .data(number: number, name: name.uppercased(), values: values)
    }

    struct Cursor {
        let bytes: ArraySlice<UInt8>
        var index: Int

        init(bytes: ArraySlice<UInt8>) {
            self.bytes = bytes
            index = bytes.startIndex
        }

        var atEnd: Bool { index >= bytes.endIndex }

        mutating func eat(_ c: Character) -> Bool {
            guard !atEnd, bytes[index] == c.asciiValue! else { return false }
            index += 1
            return true
        }

        mutating func skipSpace() {
            while !atEnd && bytes[index] == UInt8(ascii: " ") { index += 1 }
        }

        func rest() -> String { String(decoding: bytes[index...], as: UTF8.self) }

        /// `[CODE args] text`, the code without brackets.
        mutating func responseText() -> (String?, String) {
            guard !atEnd, bytes[index] == UInt8(ascii: "[") else { return (nil, rest()) }
            guard let close = bytes[index...].firstIndex(of: UInt8(ascii: "]")) else { return (nil, rest()) }
            let code = String(decoding: bytes[(index + 1)..<close], as: UTF8.self)
            index = close + 1
            skipSpace()
            return (code, rest())
        }

        static let atomStops: Set<UInt8> = [UInt8(ascii: " "), UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "\""),
                                            UInt8(ascii: "{"), 0x0D, 0x0A]

        /// An atom; a `[` opens a section spec that runs to its `]` whatever it holds
        /// (`BODY[HEADER.FIELDS (FROM)]`), and a `<N>` origin after it stays with the atom.
        mutating func readAtom() -> String? {
            let start = index
            var depth = 0
            while !atEnd {
                let b = bytes[index]
                if b == UInt8(ascii: "[") { depth += 1 } else if b == UInt8(ascii: "]") { depth = max(0, depth - 1) } else if depth == 0 && Self.atomStops.contains(b) { break }
                index += 1
            }
            return String(decoding: bytes[start..<index], as: UTF8.self)
        }

        mutating func readValue(depth: Int) throws -> IMAPValue {
            guard depth < 64 else { throw IMAPParseError.malformed("lists nested too deep") }
            guard !atEnd else { throw IMAPParseError.malformed("value expected") }
            switch bytes[index] {
            case UInt8(ascii: "("):
                index += 1
                var items: [IMAPValue] = []
                while true {
                    skipSpace()
                    guard !atEnd else { throw IMAPParseError.malformed("unterminated list") }
                    if bytes[index] == UInt8(ascii: ")") { index += 1; return .list(items) }
                    items.append(try readValue(depth: depth + 1))
                }
            case UInt8(ascii: "\""):
                index += 1
                var out: [UInt8] = []
                while true {
                    guard !atEnd else { throw IMAPParseError.malformed("unterminated quoted string") }
                    let b = bytes[index]
                    index += 1
                    if b == UInt8(ascii: "\"") { return .string(out) }
                    if b == UInt8(ascii: "\\") {
                        guard !atEnd else { throw IMAPParseError.malformed("unterminated quoted string") }
                        out.append(bytes[index])
                        index += 1
                    } else {
                        out.append(b)
                    }
                }
            case UInt8(ascii: "{"), UInt8(ascii: "~"):
                if bytes[index] == UInt8(ascii: "~") { index += 1 }
                guard eat("{"), let close = bytes[index...].firstIndex(of: UInt8(ascii: "}")),
                      let n = Int(String(decoding: bytes[index..<close], as: UTF8.self)), n >= 0 else {
                    throw IMAPParseError.malformed("bad literal")
                }
                index = close + 1
                _ = eat("\r")
                guard eat("\n") else { throw IMAPParseError.malformed("literal without CRLF") }
                guard bytes.endIndex - index >= n else { throw IMAPParseError.malformed("short literal") }
                let value = Array(bytes[index..<(index + n)])
                index += n
                return .string(value)
            case UInt8(ascii: ")"):
                throw IMAPParseError.malformed("unexpected )")
            default:
                guard let atom = readAtom(), !atom.isEmpty else { throw IMAPParseError.malformed("unexpected byte") }
                return atom.uppercased() == "NIL" ? .nil_ : .atom(atom)
            }
        }
    }
}
