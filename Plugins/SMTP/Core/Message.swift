import PluginAPI

/// The `Received:` trace field this server prepends (RFC 5321 §4.4). The `id` is this server's
/// transaction id (the queue assigns its own id only when it takes the message; both are logged
/// together).
enum ReceivedField {
    static func make(helo: String, clientHostname: String?, clientAddress: IPAddress?, hostname: String,
                     protocolName: String, id: String, recipient: String?, date: MailDate) -> [UInt8] {
        let literal: String
        switch clientAddress {
        case let a? where a.isIPv4: literal = "[\(a)]"
        case let a?: literal = "[IPv6:\(a)]"
        case nil: literal = "[unix socket]"
        }
        var text = "Received: from \(clean(helo)) (\(clientHostname.map(clean) ?? "unknown") \(literal))\r\n"
        text += "\tby \(hostname) (Postern) with \(protocolName) id \(id)\r\n"
        if let recipient { text += "\tfor <\(recipient)>;" } else { text += "\t;" }
        text += " \(date.rfc5322)\r\n"
        return Array(text.utf8)
    }

    /// Client-supplied text inside a comment or a clause: printable ASCII (or UTF-8) without the
    /// characters that would end the comment or the clause early.
    static func clean(_ text: String) -> String {
        String(text.unicodeScalars.map { s -> Character in
            if s.value < 0x21 || s.value == 0x7f || s == "(" || s == ")" || s == ";" || s == "\\" { return "_" }
            return Character(s)
        })
    }

    /// The protocol keyword of RFC 3848 / RFC 6531 for the `with` clause.
    static func protocolName(extended: Bool, secure: Bool, authenticated: Bool, utf8: Bool) -> String {
        guard extended else { return "SMTP" }
        return (utf8 ? "UTF8SMTP" : "ESMTP") + (secure ? "S" : "") + (authenticated ? "A" : "")
    }
}

/// The header block of a message as whole raw fields, for filters to read and change.
struct HeaderSection: Equatable {
    /// Bytes before the first field (lines that are not fields), kept as they came.
    var preamble: [UInt8]
    /// Each field as written: `Name: value` with its folds and its line end.
    var fields: [(name: String, raw: [UInt8])]
    /// The empty line that ends the block (empty when the message has none).
    var separator: [UInt8]
    /// Where the body starts (after the empty line), in the message's bytes.
    var bodyOffset: Int

    static func == (a: HeaderSection, b: HeaderSection) -> Bool {
        a.preamble == b.preamble && a.separator == b.separator && a.bodyOffset == b.bodyOffset
            && a.fields.map(\.name) == b.fields.map(\.name) && a.fields.map(\.raw) == b.fields.map(\.raw)
    }

    /// Splits `message` (headers, empty line, body) into fields. A message without an empty line
    /// is all header.
    init(parsing message: [UInt8]) {
        let block = MailHeaderBlock(parsing: message)
        bodyOffset = block.bodyOffset
        var head = Array(message[0..<block.bodyOffset])
        separator = []
        if head.suffix(2) == [13, 10] && (head.count == 2 || head.dropLast(2).last == 10) {
            separator = [13, 10]
        } else if head.suffix(1) == [10] && (head.count == 1 || head.dropLast(1).last == 10) {
            separator = [10]
        }
        head.removeLast(separator.count)
        let starts = block.fields.map(\.offset)
        preamble = Array(head[0..<(starts.first ?? head.count)])
        fields = []
        for (i, f) in block.fields.enumerated() {
            let end = i + 1 < starts.count ? starts[i + 1] : head.count
            fields.append((f.name, Array(head[starts[i]..<end])))
        }
    }

    /// The fields unfolded, as `FilterTransaction.headers` takes them.
    var unfolded: [(name: String, value: String)] {
        fields.map { f in
            let colon = f.raw.firstIndex(of: UInt8(ascii: ":")) ?? f.raw.count
            let value = MailHeaderField.unfold(Array(f.raw[min(colon + 1, f.raw.count)...]))
            return (f.name, String(decoding: value, as: UTF8.self))
        }
    }

    /// Each field's value as received (after the colon, leading space and folds kept), line
    /// breaks as LF and without the final one: what `FilterTransaction.headers(_:raw:)` takes.
    var rawValues: [String] {
        fields.map { f in
            let colon = f.raw.firstIndex(of: UInt8(ascii: ":")) ?? f.raw.count
            var value = Array(f.raw[min(colon + 1, f.raw.count)...])
            while let last = value.last, last == 13 || last == 10 { value.removeLast() }
            var out: [UInt8] = []
            out.reserveCapacity(value.count)
            for (i, b) in value.enumerated() where !(b == 13 && i + 1 < value.count && value[i + 1] == 10) { out.append(b) }
            return String(decoding: out, as: UTF8.self)
        }
    }

    /// The header block as bytes, with the empty line that ends it.
    var encoded: [UInt8] {
        preamble + fields.flatMap(\.raw) + (separator.isEmpty ? [13, 10] : separator)
    }

    /// Applies a filter's header changes: `addHeader` appends, `changeHeader` replaces (or with a
    /// nil value deletes) the `index`-th field of that name, counted from 1 without case.
    mutating func apply(_ modification: FilterModification) {
        switch modification {
        case .addHeader(let name, let value):
            // A last field without its line end (a message that is all header) gets one first.
            if let last = fields.indices.last, fields[last].raw.last != 10 { fields[last].raw += [13, 10] }
            fields.append((name, Self.field(name, value)))
        case .changeHeader(let name, let index, let value):
            var seen = 0
            for i in fields.indices where fields[i].name.lowercased() == name.lowercased() {
                seen += 1
                guard seen == index else { continue }
                if let value {
                    fields[i] = (fields[i].name, Self.field(fields[i].name, value))
                } else {
                    fields.remove(at: i)
                }
                return
            }
        case .insertHeader(let index, let name, let value):
            fields.insert((name, Self.field(name, value)), at: min(max(0, index), fields.count))
        case .addRecipient, .removeRecipient, .replaceBody, .editBody, .changeSender, .addMessage, .fileInto:
            break
        }
    }

    /// Applies the merged changes of a filter chain (`MessageEdits`: positions and indices refer
    /// to this block as received).
    mutating func apply(_ edits: MessageEdits) {
        if let last = fields.indices.last, fields[last].raw.last != 10 { fields[last].raw += [13, 10] }
        let received = fields
        fields = edits.arrange(receivedNames: received.map(\.name)).map { arranged in
            switch arranged {
            case .received(let i): return received[i]
            case .new(let f): return (f.name, Self.field(f.name, f.value))
            }
        }
    }

    /// `Name: value` CRLF. Line breaks inside the value become CRLF folds (a tab is added where
    /// the next line does not start with whitespace), so a value cannot end the header block or
    /// start a field of its own.
    static func field(_ name: String, _ value: String) -> [UInt8] {
        var bytes = Array(value.utf8)
        while let last = bytes.last, last == 13 || last == 10 { bytes.removeLast() }
        var out = Array("\(name): ".utf8)
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            i += 1
            guard b == 13 || b == 10 else {
                out.append(b)
                continue
            }
            if b == 13 && i < bytes.count && bytes[i] == 10 { i += 1 }
            out += [13, 10]
            if i < bytes.count && bytes[i] != 32 && bytes[i] != 9 { out.append(9) }
        }
        return out + [13, 10]
    }
}
