// The tag=value list DMARC records share with DKIM (RFC 6376 §3.2, RFC 7489 §6.4), read byte by
// byte by a small state machine.

/// One record's tags, in order, names and values as written (values keep inner white space).
package struct TagList: Sendable, Equatable {
    package var tags: [(name: String, value: String)]

    package static func == (a: TagList, b: TagList) -> Bool {
        a.tags.count == b.tags.count && zip(a.tags, b.tags).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }

    package subscript(name: String) -> String? { tags.first { $0.name == name }?.value }

    /// Why a text is not a tag-list; `offset` is the byte it was found at.
    package struct SyntaxError: Error, Equatable, CustomStringConvertible {
        package var offset: Int
        package var reason: String
        package var description: String { "\(reason) at byte \(offset)" }
    }

    private enum State {
        /// Before a tag name (white space allowed).
        case beforeName
        case name
        /// After the name, before `=`.
        case afterName
        /// After `=`, before the value.
        case beforeValue
        case value
        /// White space inside or after a value: it belongs to the value only if more follows.
        case valueSpace
    }

    /// Parses `tag-list = tag-spec *( ";" tag-spec ) [ ";" ]`. Tag names are `ALPHA *(ALPHA /
    /// DIGIT / "_")`; values are printable ASCII but `;`, with white space inside, which folding
    /// (CR LF before white space) may carry. Empty specs (`;;`, a trailing `;`) are allowed, as
    /// publishers write them. A name given twice makes the whole list invalid (RFC 6376 §3.2).
    package static func parse<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> Result<TagList, SyntaxError> {
        var tags: [(name: String, value: String)] = []
        var state = State.beforeName
        var name: [UInt8] = [], value: [UInt8] = [], pendingSpace: [UInt8] = []
        var offset = 0
        // A CR must be followed by LF and the LF by white space (folding).
        var afterCR = false, afterLF = false

        func finish() -> SyntaxError? {
            let tagName = String(decoding: name, as: UTF8.self)
            if tags.contains(where: { $0.name == tagName }) {
                return SyntaxError(offset: offset, reason: "tag \(tagName) given twice")
            }
            tags.append((tagName, String(decoding: value, as: UTF8.self)))
            name = []; value = []; pendingSpace = []
            return nil
        }

        for byte in bytes {
            defer { offset += 1 }
            let isSpace = byte == 0x20 || byte == 0x09
            if afterCR {
                guard byte == 0x0A else { return .failure(SyntaxError(offset: offset, reason: "CR without LF")) }
                afterCR = false; afterLF = true
                continue
            }
            if afterLF {
                guard isSpace else { return .failure(SyntaxError(offset: offset, reason: "line break not followed by white space")) }
                afterLF = false
            }
            if byte == 0x0D { afterCR = true; continue }
            if byte == 0x0A { afterLF = true; continue }
            let isAlpha = (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
            let isNameByte = isAlpha || (0x30...0x39).contains(byte) || byte == 0x5F
            let isValueByte = (0x21...0x3A).contains(byte) || (0x3C...0x7E).contains(byte)
            switch state {
            case .beforeName:
                if isSpace || byte == 0x3B { continue }
                guard isAlpha else { return .failure(SyntaxError(offset: offset, reason: "a tag name must start with a letter")) }
                name.append(byte); state = .name
            case .name:
                if isNameByte { name.append(byte) }
                else if isSpace { state = .afterName }
                else if byte == 0x3D { state = .beforeValue }
                else { return .failure(SyntaxError(offset: offset, reason: "unexpected byte in tag name")) }
            case .afterName:
                if isSpace { continue }
                guard byte == 0x3D else { return .failure(SyntaxError(offset: offset, reason: "expected = after tag name")) }
                state = .beforeValue
            case .beforeValue, .value, .valueSpace:
                if isSpace {
                    if state == .value || state == .valueSpace { pendingSpace.append(byte); state = .valueSpace }
                } else if byte == 0x3B {
                    if let error = finish() { return .failure(error) }
                    state = .beforeName
                } else if isValueByte {
                    value += pendingSpace; pendingSpace = []
                    value.append(byte); state = .value
                } else {
                    return .failure(SyntaxError(offset: offset, reason: "byte \(byte) not allowed in a tag value"))
                }
            }
        }
        if afterCR || afterLF { return .failure(SyntaxError(offset: offset, reason: "record ends in a line break")) }
        switch state {
        case .beforeName: break
        case .name, .afterName: return .failure(SyntaxError(offset: offset, reason: "tag without ="))
        case .beforeValue, .value, .valueSpace:
            if let error = finish() { return .failure(error) }
        }
        return .success(TagList(tags: tags))
    }
}
