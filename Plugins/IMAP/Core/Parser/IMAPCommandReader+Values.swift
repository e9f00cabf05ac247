import PluginAPI
// Mailbox names, list patterns, flags, sequence sets and dates.

extension IMAPCommandReader {
    // MARK: - Mailboxes and flags

    mutating func mailbox() throws -> String {
        try mailboxName(astring("a mailbox name"), what: "Mailbox name")
    }

    func mailboxName(_ value: [UInt8], what: String) throws -> String {
        if IMAPCharacters.equalsIgnoringCase(value, "INBOX") { return "INBOX" }
        if utf8Accept {
            guard let name = String(validating: value, as: UTF8.self) else { throw IMAPReaderStop.bad("\(what) is not UTF-8") }
            return name
        }
        guard let name = ModifiedUTF7.decode(value) else { throw IMAPReaderStop.bad("\(what) is not valid modified UTF-7") }
        return name
    }

    /// `list-mailbox`: list-chars (wildcards allowed) or a string.
    mutating func listPattern() throws -> String {
        if peek(is: "\"") || peek(is: "{") { return try mailboxName(string("a mailbox pattern"), what: "Mailbox pattern") }
        let start = pos, end = textEnd
        while pos < end, IMAPCharacters.isListChar(bytes[pos]) { pos += 1 }
        guard pos > start else { throw IMAPReaderStop.bad(describeNext("a mailbox pattern")) }
        return try mailboxName(Array(bytes[start..<pos]), what: "Mailbox pattern")
    }

    /// A flag that STORE or APPEND may set: a keyword or one of the five settable system flags.
    mutating func flag() throws -> IMAPFlag {
        if peek(is: "\\") {
            pos += 1
            let name = "\\" + String(decoding: try atom("a flag name"), as: UTF8.self)
            let flag = IMAPFlag(name)
            guard flag.isSettableSystemFlag else {
                if flag == .recent { throw IMAPReaderStop.bad("\\Recent cannot be set") }
                throw IMAPReaderStop.bad("Unknown system flag \(echo(name))")
            }
            return flag
        }
        return IMAPFlag(String(decoding: try atom("a flag"), as: UTF8.self))
    }

    mutating func flagList() throws -> [IMAPFlag] {
        try expect("(", "a flag list")
        var flags: [IMAPFlag] = []
        if peek(is: ")") { pos += 1; return flags }
        while true {
            flags.append(try flag())
            guard try nextListItem("a flag") else { return flags }
        }
    }

    mutating func sequenceSet(_ what: String = "a sequence set", allowLargest: Bool = true) throws -> IMAPSequenceSet {
        let start = pos, end = textEnd
        while pos < end, IMAPCharacters.isAtomChar(bytes[pos]) || bytes[pos] == UInt8(ascii: "*") { pos += 1 }
        guard pos > start else { throw IMAPReaderStop.bad(describeNext(what)) }
        let text = bytes[start..<pos]
        guard let set = IMAPSequenceSet.parse(text) else {
            let bounds = text.split { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: ":") }
            if bounds.contains(where: { !$0.isEmpty && $0.allSatisfy { $0 == UInt8(ascii: "0") } }) {
                throw IMAPReaderStop.bad("Invalid sequence set \(echo(text)): 0 is not a valid number")
            }
            throw IMAPReaderStop.bad("Invalid sequence set \(echo(text))")
        }
        if !allowLargest && (set.mentionsLargest || set.isSavedResult) { throw IMAPReaderStop.bad("\(what.prefix(1).uppercased() + what.dropFirst()) must not contain * or $") }
        return set
    }

    mutating func date() throws -> IMAPDate {
        let text: [UInt8]
        if peek(is: "\"") { text = try quoted() } else { text = Array(try atom("a date")) }
        guard let date = IMAPDate.parse(text) else { throw IMAPReaderStop.bad("Invalid date \(echo(text)) (expected d-Mon-yyyy)") }
        return date
    }

    mutating func nest() throws {
        depth += 1
        guard depth <= maxDepth else { throw IMAPReaderStop.bad("Command nested too deeply (more than \(maxDepth) levels)") }
    }
}

extension IMAPFlag {
    /// One of the five system flags a client may set.
    var isSettableSystemFlag: Bool {
        self == .answered || self == .flagged || self == .deleted || self == .seen || self == .draft
    }
}
