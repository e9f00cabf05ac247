// The tag=value list of DKIM signatures and key records (RFC 6376 §3.2), read byte by byte.
import Foundation


/// One `tag=value` of a tag-list.
package struct DKIMTag: Sendable, Equatable {
    package var name: String
    /// The value with surrounding white space removed (inner folding kept as written).
    package var value: String
    /// Where the value lies in the parsed bytes: from just after `=` to just before the `;` or the
    /// end, surrounding white space included (what RFC 6376 §3.5 empties for `b=`).
    package var rawValueRange: Range<Int>
}

package struct DKIMTagListError: Error, Sendable, Equatable, CustomStringConvertible {
    package var description: String
    init(_ description: String) { self.description = description }
}

/// A parsed tag-list: the tags in order, unique by name (names are case-sensitive, §3.2).
package struct DKIMTagList: Sendable, Equatable {
    package var tags: [DKIMTag]

    package subscript(name: String) -> String? { tags.first { $0.name == name }?.value }

    package func tag(_ name: String) -> DKIMTag? { tags.first { $0.name == name } }

    private enum State {
        /// Before a tag name (after the start or a `;`), skipping white space.
        case beforeName
        case name
        /// After the name, before `=`.
        case afterName
        /// In the value (white space included; trimmed at the end).
        case value
    }

    private static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0D || byte == 0x0A }
    private static func isAlpha(_ byte: UInt8) -> Bool { (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) }
    private static func isNameByte(_ byte: UInt8) -> Bool { isAlpha(byte) || (0x30...0x39).contains(byte) || byte == 0x5F }

    /// Parses `bytes` (a field value, folding included). Empty tag-specs (`;;`, a trailing `;`) are
    /// accepted; a duplicate tag, a name that is not `ALPHA *(ALPHA / DIGIT / "_")`, a missing `=`
    /// or a control character in a value is an error.
    package static func parse<Bytes: RandomAccessCollection>(_ bytes: Bytes) throws(DKIMTagListError) -> DKIMTagList
    where Bytes.Element == UInt8, Bytes.Index == Int {
        var tags: [DKIMTag] = []
        var state = State.beforeName
        var name: [UInt8] = []
        var valueStart = 0
        var names = Set<String>()

        func finishValue(end: Int) throws(DKIMTagListError) {
            let nameText = String(decoding: name, as: UTF8.self)
            guard names.insert(nameText).inserted else { throw DKIMTagListError("duplicate tag \(nameText)=") }
            var lower = valueStart, upper = end
            while lower < upper, isSpace(bytes[lower]) { lower += 1 }
            while upper > lower, isSpace(bytes[upper - 1]) { upper -= 1 }
            tags.append(DKIMTag(name: nameText, value: String(decoding: bytes[lower..<upper], as: UTF8.self),
                                rawValueRange: valueStart..<end))
            name = []
        }

        var index = bytes.startIndex
        while index < bytes.endIndex {
            let byte = bytes[index]
            // Line breaks only as folding (CR LF then white space); no 8-bit bytes (§2.2, §2.8).
            if byte >= 0x80 { throw DKIMTagListError("8-bit byte \(describe(byte))") }
            if byte == 0x0D {
                guard index + 2 < bytes.endIndex, bytes[index + 1] == 0x0A, bytes[index + 2] == 0x20 || bytes[index + 2] == 0x09 else {
                    throw DKIMTagListError("a line break that is not folding")
                }
            } else if byte == 0x0A, index == bytes.startIndex || bytes[index - 1] != 0x0D {
                throw DKIMTagListError("a line break that is not folding")
            }
            switch state {
            case .beforeName:
                if isSpace(byte) || byte == UInt8(ascii: ";") {
                    break
                } else if isAlpha(byte) {
                    name = [byte]
                    state = .name
                } else {
                    throw DKIMTagListError("a tag name cannot start with \(describe(byte))")
                }
            case .name:
                if isNameByte(byte) {
                    name.append(byte)
                } else if byte == UInt8(ascii: "=") {
                    valueStart = index + 1
                    state = .value
                } else if isSpace(byte) {
                    state = .afterName
                } else {
                    throw DKIMTagListError("invalid character \(describe(byte)) in tag name \(String(decoding: name, as: UTF8.self))")
                }
            case .afterName:
                if byte == UInt8(ascii: "=") {
                    valueStart = index + 1
                    state = .value
                } else if !isSpace(byte) {
                    throw DKIMTagListError("tag \(String(decoding: name, as: UTF8.self)) has no '='")
                }
            case .value:
                if byte == UInt8(ascii: ";") {
                    try finishValue(end: index)
                    state = .beforeName
                } else if byte < 0x20 && !isSpace(byte) || byte == 0x7F {
                    throw DKIMTagListError("control character \(describe(byte)) in the value of \(String(decoding: name, as: UTF8.self))=")
                }
            }
            index += 1
        }
        switch state {
        case .beforeName: break
        case .name, .afterName: throw DKIMTagListError("tag \(String(decoding: name, as: UTF8.self)) has no '='")
        case .value: try finishValue(end: bytes.endIndex)
        }
        return DKIMTagList(tags: tags)
    }

    private static func describe(_ byte: UInt8) -> String {
        byte >= 0x21 && byte < 0x7F ? "'\(Character(Unicode.Scalar(byte)))'" : "0x" + String(byte, radix: 16)
    }
}

/// Base64 as DKIM writes it: white space (folding) anywhere is dropped first (RFC 6376 §2.4).
enum DKIMBase64 {
    static func decode(_ text: String) -> [UInt8]? {
        let compact = text.utf8.filter { $0 != 0x20 && $0 != 0x09 && $0 != 0x0D && $0 != 0x0A }
        guard let data = Data(base64Encoded: Data(compact)) else { return nil }
        return [UInt8](data)
    }

    static func stripped(_ text: String) -> String {
        String(decoding: text.utf8.filter { $0 != 0x20 && $0 != 0x09 && $0 != 0x0D && $0 != 0x0A }, as: UTF8.self)
    }
}
