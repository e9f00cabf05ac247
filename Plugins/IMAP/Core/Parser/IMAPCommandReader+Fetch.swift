// FETCH attributes and body sections, and STORE.
extension IMAPCommandReader {
    // MARK: FETCH

    mutating func fetch(byUID: Bool) throws -> IMAPFetchCommand {
        try space("a sequence set")
        let set = try sequenceSet()
        try space("FETCH items")
        var attributes: [IMAPFetchAttribute] = []
        if peek(is: "(") {
            pos += 1
            while true {
                attributes.append(try fetchAttribute())
                guard try nextListItem("a FETCH item") else { break }
            }
        } else if keyword("ALL") {
            attributes = IMAPFetchAttribute.allMacro
        } else if keyword("FAST") {
            attributes = IMAPFetchAttribute.fastMacro
        } else if keyword("FULL") {
            attributes = IMAPFetchAttribute.fullMacro
        } else {
            attributes.append(try fetchAttribute())
        }
        var command = IMAPFetchCommand(set: set, attributes: attributes, byUID: byUID)
        if peek(is: " ") {
            pos += 1
            try expect("(", "FETCH modifiers")
            while true {
                let word = IMAPCharacters.upper(try atom("a FETCH modifier"))
                switch word {
                case "CHANGEDSINCE":
                    try space("a mod-sequence")
                    command.changedSince = try number64("a mod-sequence")
                case "VANISHED":
                    command.vanished = true
                default:
                    throw IMAPReaderStop.bad("Unknown FETCH modifier \(echo(word))")
                }
                guard try nextListItem("a FETCH modifier") else { break }
            }
            // RFC 7162 §3.2.6: VANISHED only in UID FETCH, and only with CHANGEDSINCE.
            if command.vanished && (!byUID || command.changedSince == nil) {
                throw IMAPReaderStop.bad("VANISHED needs UID FETCH with CHANGEDSINCE")
            }
        }
        return command
    }

    mutating func fetchAttribute() throws -> IMAPFetchAttribute {
        let start = pos, end = textEnd
        while pos < end, bytes[pos] < 0x80, isAlphanumeric(bytes[pos]) || bytes[pos] == UInt8(ascii: ".") { pos += 1 }
        guard pos > start else { throw IMAPReaderStop.bad(describeNext("a FETCH item")) }
        let name = IMAPCharacters.upper(bytes[start..<pos])
        switch name {
        case "ENVELOPE": return .envelope
        case "FLAGS": return .flags
        case "INTERNALDATE": return .internalDate
        case "RFC822": return .rfc822
        case "RFC822.HEADER": return .rfc822Header
        case "RFC822.SIZE": return .rfc822Size
        case "RFC822.TEXT": return .rfc822Text
        case "BODYSTRUCTURE": return .bodyStructure
        case "UID": return .uid
        case "MODSEQ": return .modSeq
        case "BODY", "BODY.PEEK":
            guard peek(is: "[") else {
                if name == "BODY" { return .bodyStructureBasic }
                throw IMAPReaderStop.bad(describeNext("'[' after BODY.PEEK"))
            }
            let section = try bodySection()
            return .body(section, partial: try partialRange(), peek: name == "BODY.PEEK")
        case "BINARY", "BINARY.PEEK", "BINARY.SIZE":
            try expect("[", "'[' after \(name)")
            let part = peek(is: "]") ? [] : try partNumbers(allowingText: false)
            try expect("]", "']'")
            if name == "BINARY.SIZE" { return .binarySize(part: part) }
            return .binary(part: part, partial: try partialRange(), peek: name == "BINARY.PEEK")
        default:
            throw IMAPReaderStop.bad("Unknown FETCH item \(echo(name))")
        }
    }

    func isAlphanumeric(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
    }

    /// `1.2.3`; with `allowingText`, stops before a `.` followed by a section text name.
    mutating func partNumbers(allowingText: Bool) throws -> [UInt32] {
        var part: [UInt32] = []
        while true {
            part.append(try nonZeroNumber("a part number"))
            guard peek(is: ".") else { return part }
            if allowingText, pos + 1 < textEnd, !IMAPCharacters.isDigit(bytes[pos + 1]) { return part }
            pos += 1
        }
    }

    mutating func bodySection() throws -> IMAPBodySection {
        pos += 1   // "["
        var section = IMAPBodySection()
        if let c = peek(), IMAPCharacters.isDigit(c) {
            section.part = try partNumbers(allowingText: true)
            if peek(is: ".") { pos += 1 } else { try expect("]", "']'"); return section }
        } else if peek(is: "]") {
            pos += 1
            return section
        }
        let start = pos, end = textEnd
        while pos < end, bytes[pos] < 0x80, isAlphanumeric(bytes[pos]) || bytes[pos] == UInt8(ascii: ".") { pos += 1 }
        let name = IMAPCharacters.upper(bytes[start..<pos])
        switch name {
        case "HEADER": section.kind = .header
        case "TEXT": section.kind = .text
        case "MIME":
            guard !section.part.isEmpty else { throw IMAPReaderStop.bad("MIME needs a part number") }
            section.kind = .mime
        case "HEADER.FIELDS", "HEADER.FIELDS.NOT":
            try space("a list of header field names")
            try expect("(", "a list of header field names")
            var names: [String] = []
            while true {
                let field = try astring("a header field name")
                // RFC 5322 §2.2: printable ASCII except colon.
                guard field.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ":") }) else {
                    throw IMAPReaderStop.bad("Invalid header field name")
                }
                names.append(String(decoding: field, as: UTF8.self))
                guard try nextListItem("a header field name") else { break }
            }
            section.kind = name == "HEADER.FIELDS" ? .headerFields(names) : .headerFieldsNot(names)
        default:
            throw IMAPReaderStop.bad(name.isEmpty ? describeNext("a section") : "Invalid section \(echo(name))")
        }
        try expect("]", "']'")
        return section
    }

    mutating func partialRange() throws -> IMAPPartialRange? {
        guard peek(is: "<") else { return nil }
        pos += 1
        let origin = try number("a partial origin")
        try expect(".", "'.' and a partial length")
        let count = try nonZeroNumber("a partial length")
        try expect(">", "'>'")
        return IMAPPartialRange(origin: origin, count: count)
    }

    // MARK: STORE

    mutating func store(byUID: Bool) throws -> IMAPStoreCommand {
        try space("a sequence set")
        let set = try sequenceSet()
        try space("a STORE item")
        var unchangedSince: UInt64?
        if peek(is: "(") {
            pos += 1
            guard keyword("UNCHANGEDSINCE") else { throw IMAPReaderStop.bad("Unknown STORE modifier \(echo(peekAtomUpper()))") }
            try space("a mod-sequence")
            unchangedSince = try number64("a mod-sequence")
            try expect(")", "')'")
            try space("a STORE item")
        }
        var operation = IMAPStoreCommand.Operation.replace
        if peek(is: "+") { operation = .add; pos += 1 } else if peek(is: "-") { operation = .remove; pos += 1 }
        let item = IMAPCharacters.upper(try atom("FLAGS"))
        guard item == "FLAGS" || item == "FLAGS.SILENT" else { throw IMAPReaderStop.bad("Unknown STORE item \(echo(item))") }
        try space("flags")
        var flags: [IMAPFlag]
        if peek(is: "(") {
            flags = try flagList()
        } else {
            flags = [try flag()]
            while peek(is: " ") {
                pos += 1
                flags.append(try flag())
            }
        }
        return IMAPStoreCommand(set: set, unchangedSince: unchangedSince, operation: operation,
                                silent: item == "FLAGS.SILENT", flags: flags, byUID: byUID)
    }
}
