// A message as DKIM sees it: header fields as written, and where the body starts.

package struct DKIMMessage: Sendable {
    package struct Field: Sendable, Equatable {
        /// The name as written, and lowercased for matching.
        package var name: String
        package var lowercasedName: String
        /// The whole field: name, colon, value and folding, without the CRLF that ends it.
        package var raw: ArraySlice<UInt8>
        /// Where the value starts in `raw`'s indices (just after the colon).
        package var valueStart: Int

        package var value: ArraySlice<UInt8> { raw[valueStart...] }
    }

    package let bytes: [UInt8]
    package let fields: [Field]
    package let bodyStart: Int

    package var body: ArraySlice<UInt8> { bytes[bodyStart...] }

    /// Splits `message`. Lines end in CRLF; a lone LF is taken as CRLF (the message is rewritten
    /// once). The header ends at the first empty line; without one the whole message is header and
    /// the body is empty. A header line without a colon is not a field (it can never be signed).
    package init(_ message: [UInt8]) {
        // Locals until the end: the nested function must not capture a half-built self.
        let bytes = Self.crlf(message)
        var fields: [Field] = []
        var fieldStart: Int?
        let count = bytes.count

        func close(at end: Int) {
            guard let start = fieldStart else { return }
            fieldStart = nil
            let raw = bytes[start..<end]
            guard let colon = raw.firstIndex(of: UInt8(ascii: ":")) else { return }
            var nameEnd = colon
            while nameEnd > start, bytes[nameEnd - 1] == 0x20 || bytes[nameEnd - 1] == 0x09 { nameEnd -= 1 }
            let name = String(decoding: bytes[start..<nameEnd], as: UTF8.self)
            fields.append(Field(name: name, lowercasedName: name.lowercased(), raw: raw, valueStart: colon + 1))
        }

        var lineStart = 0
        var previousLineEnd = 0
        var bodyStart = count
        while lineStart < count {
            var lineEnd = lineStart
            while lineEnd < count, !(bytes[lineEnd] == 0x0D && lineEnd + 1 < count && bytes[lineEnd + 1] == 0x0A) { lineEnd += 1 }
            if lineEnd == lineStart {
                // The empty line: the body follows its CRLF.
                close(at: previousLineEnd)
                bodyStart = min(lineEnd + 2, count)
                break
            }
            let first = bytes[lineStart]
            if first != 0x20 && first != 0x09 {
                close(at: previousLineEnd)
                fieldStart = lineStart
            }
            // A continuation line belongs to the open field (at the top, to nothing).
            previousLineEnd = lineEnd
            lineStart = lineEnd + 2
        }
        close(at: previousLineEnd)
        self.bytes = bytes
        self.fields = fields
        self.bodyStart = min(bodyStart, count)
    }

    /// `message` with every lone LF made CRLF (the same array when there is none).
    static func crlf(_ message: [UInt8]) -> [UInt8] {
        var previous: UInt8 = 0
        var needed = false
        for byte in message {
            if byte == 0x0A && previous != 0x0D { needed = true; break }
            previous = byte
        }
        guard needed else { return message }
        var out: [UInt8] = []
        out.reserveCapacity(message.count + message.count / 40)
        previous = 0
        for byte in message {
            if byte == 0x0A && previous != 0x0D { out.append(0x0D) }
            out.append(byte)
            previous = byte
        }
        return out
    }

    /// The fields `names` select, as RFC 6376 §5.4.2 picks them: for each name, the last instance
    /// not picked yet, from the bottom up; nil where none is left (an over-signed name).
    package func select(_ names: [String]) -> [Field?] {
        var used: [String: Int] = [:]
        var byName: [String: [Int]] = [:]
        for (position, field) in fields.enumerated() { byName[field.lowercasedName, default: []].append(position) }
        return names.map { name in
            let key = name.lowercased()
            let instances = byName[key] ?? []
            let taken = used[key, default: 0]
            guard taken < instances.count else { return nil }
            used[key] = taken + 1
            return fields[instances[instances.count - 1 - taken]]
        }
    }
}
