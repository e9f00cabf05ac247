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
    private let bytes: [UInt8]
    private let literals: [Range<Int>]
    private let partial: Bool
    private let utf8Accept: Bool
    private let maxDepth: Int
    private var pos = 0
    private var nextLiteral = 0
    private var depth = 0
    private var commandName = ""
    /// The tag once read, for the error reply.
    private(set) var tag: String?

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
    private var textEnd: Int { nextLiteral < literals.count ? literals[nextLiteral].lowerBound : bytes.count }

    private func peek() -> UInt8? { pos < textEnd ? bytes[pos] : nil }

    private func peek(is c: Character) -> Bool { peek() == c.asciiValue! }

    private var atEnd: Bool { pos == bytes.count }

    private func describeNext(_ what: String) -> String {
        guard let c = peek() else { return atEnd ? "Missing \(what)" : "Expected \(what)" }
        if c >= 0x80 { return "8-bit characters are not allowed here (expected \(what))" }
        if c < 0x20 || c == 0x7F { return "Control characters are not allowed (expected \(what))" }
        if c == 0x20 { return "Unexpected extra space (expected \(what))" }
        return "Expected \(what), found '\(Character(Unicode.Scalar(c)))'"
    }

    /// One SP before `what`.
    private mutating func space(_ what: String) throws {
        guard peek(is: " ") else {
            if atEnd { throw IMAPReaderStop.bad("Missing arguments for \(commandName) (expected \(what))") }
            throw IMAPReaderStop.bad(describeNext("a space before \(what)"))
        }
        pos += 1
    }

    private mutating func expect(_ c: Character, _ what: String) throws {
        guard peek(is: c) else { throw IMAPReaderStop.bad(describeNext(what)) }
        pos += 1
    }

    /// After an item of a parenthesised list: true (the space consumed) when another item
    /// follows, false (the ")" consumed) at the list's end.
    private mutating func nextListItem(_ what: String) throws -> Bool {
        if peek(is: ")") { pos += 1; return false }
        if peek(is: " ") { pos += 1; return true }
        if atEnd { throw IMAPReaderStop.bad("Missing ')'") }
        throw IMAPReaderStop.bad(describeNext("')' or a space before \(what)"))
    }

    private mutating func expectEnd() throws {
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

    private mutating func atom(_ what: String) throws -> ArraySlice<UInt8> {
        let start = pos, end = textEnd
        while pos < end, IMAPCharacters.isAtomChar(bytes[pos]) { pos += 1 }
        guard pos > start else { throw IMAPReaderStop.bad(describeNext(what)) }
        return bytes[start..<pos]
    }

    /// The next atom upper-cased, without consuming it.
    private func peekAtomUpper() -> String {
        var p = pos
        let end = textEnd
        while p < end, IMAPCharacters.isAtomChar(bytes[p]) { p += 1 }
        return IMAPCharacters.upper(bytes[pos..<p])
    }

    private mutating func keyword(_ word: String) -> Bool {
        let w = Array(word.utf8)
        let end = pos + w.count
        guard end <= textEnd, IMAPCharacters.equalsIgnoringCase(bytes[pos..<end], word),
              end == textEnd || !IMAPCharacters.isAtomChar(bytes[end]) else { return false }
        pos = end
        return true
    }

    private mutating func digits() -> ArraySlice<UInt8> {
        let start = pos, end = textEnd
        while pos < end, IMAPCharacters.isDigit(bytes[pos]) { pos += 1 }
        return bytes[start..<pos]
    }

    private mutating func number(_ what: String) throws -> UInt32 {
        let d = digits()
        guard !d.isEmpty else { throw IMAPReaderStop.bad(describeNext(what)) }
        guard let n = parseNumber(d) else { throw IMAPReaderStop.bad("Number too large for \(what)") }
        return n
    }

    private mutating func nonZeroNumber(_ what: String) throws -> UInt32 {
        let n = try number(what)
        guard n > 0 else { throw IMAPReaderStop.bad("\(what.prefix(1).uppercased() + what.dropFirst()) must not be 0") }
        return n
    }

    private mutating func number64(_ what: String) throws -> UInt64 {
        let d = digits()
        guard !d.isEmpty else { throw IMAPReaderStop.bad(describeNext(what)) }
        guard let n = parseNumber64(d) else { throw IMAPReaderStop.bad("Number too large for \(what)") }
        return n
    }

    private mutating func quoted() throws -> [UInt8] {
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
    private mutating func literal(_ role: IMAPLiteralRole, binary: Bool = false) throws -> [UInt8] {
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
    private mutating func string(_ what: String) throws -> [UInt8] {
        switch peek() {
        case UInt8(ascii: "\""): return try quoted()
        case UInt8(ascii: "{"): return try literal(.string)
        default: throw IMAPReaderStop.bad(describeNext(what))
        }
    }

    /// `astring`: atom (with "]"), quoted or literal.
    private mutating func astring(_ what: String) throws -> [UInt8] {
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
    private mutating func nstring(_ what: String) throws -> [UInt8]? {
        if keyword("NIL") { return nil }
        return try string(what)
    }

    private mutating func text(_ what: String) throws -> String {
        let value = try astring(what)
        guard let text = String(validating: value, as: UTF8.self) else { throw IMAPReaderStop.bad("\(what.prefix(1).uppercased() + what.dropFirst()) is not UTF-8") }
        return text
    }

    // MARK: - Mailboxes and flags

    private mutating func mailbox() throws -> String {
        try mailboxName(astring("a mailbox name"), what: "Mailbox name")
    }

    private func mailboxName(_ value: [UInt8], what: String) throws -> String {
        if IMAPCharacters.equalsIgnoringCase(value, "INBOX") { return "INBOX" }
        if utf8Accept {
            guard let name = String(validating: value, as: UTF8.self) else { throw IMAPReaderStop.bad("\(what) is not UTF-8") }
            return name
        }
        guard let name = ModifiedUTF7.decode(value) else { throw IMAPReaderStop.bad("\(what) is not valid modified UTF-7") }
        return name
    }

    /// `list-mailbox`: list-chars (wildcards allowed) or a string.
    private mutating func listPattern() throws -> String {
        if peek(is: "\"") || peek(is: "{") { return try mailboxName(string("a mailbox pattern"), what: "Mailbox pattern") }
        let start = pos, end = textEnd
        while pos < end, IMAPCharacters.isListChar(bytes[pos]) { pos += 1 }
        guard pos > start else { throw IMAPReaderStop.bad(describeNext("a mailbox pattern")) }
        return try mailboxName(Array(bytes[start..<pos]), what: "Mailbox pattern")
    }

    /// A flag that STORE or APPEND may set: a keyword or one of the five settable system flags.
    private mutating func flag() throws -> IMAPFlag {
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

    private mutating func flagList() throws -> [IMAPFlag] {
        try expect("(", "a flag list")
        var flags: [IMAPFlag] = []
        if peek(is: ")") { pos += 1; return flags }
        while true {
            flags.append(try flag())
            guard try nextListItem("a flag") else { return flags }
        }
    }

    private mutating func sequenceSet(_ what: String = "a sequence set", allowLargest: Bool = true) throws -> IMAPSequenceSet {
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

    private mutating func date() throws -> IMAPDate {
        let text: [UInt8]
        if peek(is: "\"") { text = try quoted() } else { text = Array(try atom("a date")) }
        guard let date = IMAPDate.parse(text) else { throw IMAPReaderStop.bad("Invalid date \(echo(text)) (expected d-Mon-yyyy)") }
        return date
    }

    private mutating func nest() throws {
        depth += 1
        guard depth <= maxDepth else { throw IMAPReaderStop.bad("Command nested too deeply (more than \(maxDepth) levels)") }
    }

    // MARK: - Commands

    private mutating func command() throws -> IMAPTaggedCommand {
        if bytes.isEmpty { throw IMAPReaderStop.bad("Empty command line") }
        let start = pos, end = textEnd
        while pos < end, IMAPCharacters.isTagChar(bytes[pos]) { pos += 1 }
        if pos == start {
            throw IMAPReaderStop.bad(peek(is: " ") || atEnd ? "Missing tag" : "Invalid characters in tag")
        }
        guard pos == end || peek(is: " ") else { throw IMAPReaderStop.bad("Invalid characters in tag") }
        tag = String(decoding: bytes[start..<pos], as: UTF8.self)
        guard peek(is: " ") else { throw IMAPReaderStop.bad("Missing command") }
        pos += 1
        if atEnd { throw IMAPReaderStop.bad("Missing command") }
        guard peek().map(IMAPCharacters.isAtomChar) == true else { throw IMAPReaderStop.bad(describeNext("a command name")) }
        commandName = IMAPCharacters.upper(try atom("a command name"))
        guard atEnd || peek(is: " ") else { throw IMAPReaderStop.bad("Invalid characters in command name") }
        let parsed = try arguments(of: commandName)
        try expectEnd()
        return IMAPTaggedCommand(tag: tag!, command: parsed)
    }

    private mutating func arguments(of name: String) throws -> IMAPCommand {
        switch name {
        case "CAPABILITY": return .capability
        case "NOOP": return .noop
        case "LOGOUT": return .logout
        case "STARTTLS": return .startTLS
        case "NAMESPACE": return .namespace
        case "CHECK": return .check
        case "CLOSE": return .close
        case "UNSELECT": return .unselect
        case "EXPUNGE": return .expunge
        case "IDLE": return .idle
        case "ID": return try id()
        case "AUTHENTICATE": return try authenticate()
        case "LOGIN":
            try space("a user name")
            let user = try text("user name")
            try space("a password")
            return .login(user: user, password: try text("password"))
        case "ENABLE":
            var names: [String] = []
            repeat {
                try space("a capability name")
                names.append(IMAPCharacters.upper(try atom("a capability name")))
            } while !atEnd
            return .enable(names)
        case "SELECT", "EXAMINE":
            try space("a mailbox name")
            let box = try mailbox()
            let parameters = try selectParameters()
            return name == "SELECT" ? .select(box, parameters) : .examine(box, parameters)
        case "CREATE", "DELETE", "SUBSCRIBE", "UNSUBSCRIBE", "GETQUOTAROOT", "GETACL", "MYRIGHTS":
            try space("a mailbox name")
            let box = try mailbox()
            switch name {
            case "CREATE": return .create(box)
            case "DELETE": return .delete(box)
            case "SUBSCRIBE": return .subscribe(box)
            case "UNSUBSCRIBE": return .unsubscribe(box)
            case "GETQUOTAROOT": return .getQuotaRoot(box)
            case "GETACL": return .getACL(box)
            default: return .myRights(box)
            }
        case "RENAME":
            try space("a mailbox name")
            let from = try mailbox()
            try space("the new mailbox name")
            return .rename(from: from, to: try mailbox())
        case "LIST": return try list()
        case "LSUB":
            try space("a reference name")
            let reference = try mailbox()
            try space("a mailbox pattern")
            return .lsub(reference: reference, pattern: try listPattern())
        case "STATUS":
            try space("a mailbox name")
            let box = try mailbox()
            try space("status items")
            return .status(box, try statusAttributes())
        case "APPEND": return try append()
        case "GETQUOTA":
            try space("a quota root")
            return .getQuota(root: try text("quota root"))
        case "SETQUOTA": return try setQuota()
        case "SETACL", "DELETEACL", "LISTRIGHTS":
            try space("a mailbox name")
            let box = try mailbox()
            try space("an identifier")
            let identifier = try text("identifier")
            switch name {
            case "DELETEACL": return .deleteACL(mailbox: box, identifier: identifier)
            case "LISTRIGHTS": return .listRights(mailbox: box, identifier: identifier)
            default:
                try space("rights")
                var rights = try text("rights")
                var mode = IMAPRightsModification.Mode.replace
                if rights.hasPrefix("+") { mode = .add; rights.removeFirst() } else if rights.hasPrefix("-") { mode = .remove; rights.removeFirst() }
                return .setACL(mailbox: box, identifier: identifier, rights: IMAPRightsModification(mode, rights))
            }
        case "COMPRESS":
            try space("a compression mechanism")
            return .compress(mechanism: IMAPCharacters.upper(try atom("a compression mechanism")))
        case "SEARCH", "FETCH", "STORE", "COPY", "MOVE":
            return try selectedCommand(name, byUID: false)
        case "UID":
            try space("a UID command")
            let sub = IMAPCharacters.upper(try atom("a UID command"))
            commandName = "UID " + sub
            switch sub {
            case "SEARCH", "FETCH", "STORE", "COPY", "MOVE": return try selectedCommand(sub, byUID: true)
            case "EXPUNGE":
                try space("a UID set")
                return .uidExpunge(try sequenceSet("a UID set"))
            default: throw IMAPReaderStop.bad("Unknown command UID \(echo(sub))")
            }
        default:
            throw IMAPReaderStop.bad("Unknown command \(echo(name))")
        }
    }

    private mutating func selectedCommand(_ name: String, byUID: Bool) throws -> IMAPCommand {
        switch name {
        case "SEARCH": return .search(try search(byUID: byUID))
        case "FETCH": return .fetch(try fetch(byUID: byUID))
        case "STORE": return .store(try store(byUID: byUID))
        default:
            try space("a sequence set")
            let set = try sequenceSet()
            try space("a mailbox name")
            let box = try mailbox()
            return name == "COPY" ? .copy(set, mailbox: box, byUID: byUID) : .move(set, mailbox: box, byUID: byUID)
        }
    }

    private mutating func authenticate() throws -> IMAPCommand {
        try space("a SASL mechanism")
        let mechanism = IMAPCharacters.upper(try atom("a SASL mechanism"))
        guard peek(is: " ") else { return .authenticate(mechanism: mechanism, initialResponse: nil) }
        pos += 1
        let start = pos
        pos = textEnd
        guard let response = IMAPAuthenticationResponse.decodeBase64(bytes[start..<pos]) else {
            pos = start
            throw IMAPReaderStop.bad("Invalid base64 in the initial response")
        }
        return .authenticate(mechanism: mechanism, initialResponse: response)
    }

    private mutating func id() throws -> IMAPCommand {
        try space("a parameter list or NIL")
        if keyword("NIL") { return .id(nil) }
        try expect("(", "a parameter list or NIL")
        var fields: [IMAPIDField] = []
        while true {
            let key = try string("a field name")
            try space("a field value")
            let value = try nstring("a field value")
            // RFC 2971 §3.3: at most 30 pairs, names up to 30 bytes, values up to 1024.
            guard key.count <= 30, (value?.count ?? 0) <= 1024 else { throw IMAPReaderStop.bad("ID field too long") }
            fields.append(IMAPIDField(String(decoding: key, as: UTF8.self), value.map { String(decoding: $0, as: UTF8.self) }))
            guard fields.count <= 30 else { throw IMAPReaderStop.bad("Too many ID fields (at most 30)") }
            guard try nextListItem("a field name") else { return .id(fields) }
        }
    }

    private mutating func selectParameters() throws -> IMAPSelectParameters {
        var parameters = IMAPSelectParameters()
        guard peek(is: " ") else { return parameters }
        pos += 1
        try expect("(", "select parameters")
        while true {
            let word = IMAPCharacters.upper(try atom("a select parameter"))
            switch word {
            case "CONDSTORE": parameters.condStore = true
            case "QRESYNC":
                try space("QRESYNC parameters")
                parameters.qresync = try qresyncParameters()
            default:
                throw IMAPReaderStop.bad("Unknown select parameter \(echo(word))")
            }
            guard try nextListItem("a select parameter") else { return parameters }
        }
    }

    /// `(uidvalidity modseq [known-uids] [(known-sequence-set known-uid-set)])` (RFC 7162 §3.2.5).
    private mutating func qresyncParameters() throws -> IMAPQResyncParameters {
        try expect("(", "QRESYNC parameters")
        let validity = try nonZeroNumber("a UIDVALIDITY")
        try space("a mod-sequence")
        let modSeq = try number64("a mod-sequence")
        guard modSeq > 0 else { throw IMAPReaderStop.bad("The mod-sequence must not be 0") }
        var q = IMAPQResyncParameters(uidValidity: validity, modSeq: modSeq)
        if peek(is: " ") {
            pos += 1
            if !peek(is: "(") {
                q.knownUIDs = try sequenceSet("known UIDs", allowLargest: false)
                guard peek(is: " ") else {
                    try expect(")", "')'")
                    return q
                }
                pos += 1
            }
            try expect("(", "sequence match data")
            q.knownSequenceSet = try sequenceSet("known sequence numbers", allowLargest: false)
            try space("known UIDs")
            q.knownUIDSet = try sequenceSet("known UIDs", allowLargest: false)
            try expect(")", "')'")
        }
        try expect(")", "')'")
        return q
    }

    private mutating func statusAttributes() throws -> [IMAPStatusAttribute] {
        try expect("(", "'(' and status items")
        var items: [IMAPStatusAttribute] = []
        while true {
            let word = IMAPCharacters.upper(try atom("a status item"))
            guard let item = IMAPStatusAttribute(rawValue: word) else { throw IMAPReaderStop.bad("Unknown status item \(echo(word))") }
            items.append(item)
            guard try nextListItem("a status item") else { return items }
        }
    }

    private mutating func list() throws -> IMAPCommand {
        try space("a reference name")
        var extended = false
        var selection: [IMAPListSelectionOption] = []
        if peek(is: "(") {
            extended = true
            pos += 1
            if peek(is: ")") {
                pos += 1
            } else {
                while true {
                    let word = IMAPCharacters.upper(try atom("a selection option"))
                    guard let option = IMAPListSelectionOption(rawValue: word) else { throw IMAPReaderStop.bad("Unknown LIST selection option \(echo(word))") }
                    selection.append(option)
                    guard try nextListItem("a selection option") else { break }
                }
            }
            // RFC 5258 §3: RECURSIVEMATCH needs another option than itself and REMOTE.
            if selection.contains(.recursiveMatch) && !selection.contains(where: { $0 != .recursiveMatch && $0 != .remote }) {
                throw IMAPReaderStop.bad("RECURSIVEMATCH needs another selection option")
            }
            try space("a reference name")
        }
        let reference = try mailbox()
        try space("a mailbox pattern")
        var patterns: [String] = []
        if peek(is: "(") {
            extended = true
            pos += 1
            while true {
                patterns.append(try listPattern())
                guard try nextListItem("a mailbox pattern") else { break }
            }
        } else {
            patterns.append(try listPattern())
        }
        var returns: [IMAPListReturnOption] = []
        if peek(is: " ") {
            pos += 1
            guard keyword("RETURN") else { throw IMAPReaderStop.bad(describeNext("RETURN")) }
            extended = true
            try space("return options")
            try expect("(", "return options")
            if peek(is: ")") {
                pos += 1
            } else {
                while true {
                    let word = IMAPCharacters.upper(try atom("a return option"))
                    switch word {
                    case "SUBSCRIBED": returns.append(.subscribed)
                    case "CHILDREN": returns.append(.children)
                    case "SPECIAL-USE": returns.append(.specialUse)
                    case "STATUS":
                        try space("status items")
                        returns.append(.status(try statusAttributes()))
                    default: throw IMAPReaderStop.bad("Unknown LIST return option \(echo(word))")
                    }
                    guard try nextListItem("a return option") else { break }
                }
            }
        }
        return .list(IMAPListCommand(selectionOptions: selection, reference: reference, patterns: patterns,
                                     returnOptions: returns, isExtended: extended))
    }

    private mutating func append() throws -> IMAPCommand {
        try space("a mailbox name")
        let box = try mailbox()
        var messages: [IMAPAppendMessage] = []
        repeat {
            try space("a message")
            var message = IMAPAppendMessage(data: [])
            if peek(is: "(") {
                message.flags = try flagList()
                try space("a message")
            }
            if peek(is: "\"") {
                let text = try quoted()
                guard let date = IMAPDateTime.parse(text) else {
                    throw IMAPReaderStop.bad("Invalid date-time \"\(echo(text))\"")
                }
                message.internalDate = date
                try space("a message")
            }
            if peek(is: "{") || peek(is: "~") {
                message.isBinary = peek(is: "~")
                message.data = try literal(.message, binary: true)
            } else if keyword("UTF8") {
                // RFC 6855 §4: UTF8 (~{n}) carries a message with UTF-8 headers.
                try space("'(' and a literal8")
                try expect("(", "'(' and a literal8")
                guard peek(is: "~") else { throw IMAPReaderStop.bad(describeNext("a literal8")) }
                message.isBinary = true
                message.isUTF8 = true
                message.data = try literal(.message, binary: true)
                try expect(")", "')'")
            } else if peekAtomUpper() == "CATENATE" {
                throw IMAPReaderStop.bad("CATENATE is not supported")
            } else {
                throw IMAPReaderStop.bad(describeNext("the message as a literal"))
            }
            messages.append(message)
        } while !atEnd
        return .append(IMAPAppendCommand(mailbox: box, messages: messages))
    }

    private mutating func setQuota() throws -> IMAPCommand {
        try space("a quota root")
        let root = try text("quota root")
        try space("resource limits")
        try expect("(", "resource limits")
        var limits: [IMAPQuotaLimit] = []
        if peek(is: ")") { pos += 1; return .setQuota(root: root, limits: limits) }
        while true {
            let resource = IMAPCharacters.upper(try atom("a resource name"))
            try space("a limit")
            limits.append(IMAPQuotaLimit(resource, try number64("a limit")))
            guard try nextListItem("a resource name") else { return .setQuota(root: root, limits: limits) }
        }
    }

    // MARK: FETCH

    private mutating func fetch(byUID: Bool) throws -> IMAPFetchCommand {
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

    private mutating func fetchAttribute() throws -> IMAPFetchAttribute {
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

    private func isAlphanumeric(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
    }

    /// `1.2.3`; with `allowingText`, stops before a `.` followed by a section text name.
    private mutating func partNumbers(allowingText: Bool) throws -> [UInt32] {
        var part: [UInt32] = []
        while true {
            part.append(try nonZeroNumber("a part number"))
            guard peek(is: ".") else { return part }
            if allowingText, pos + 1 < textEnd, !IMAPCharacters.isDigit(bytes[pos + 1]) { return part }
            pos += 1
        }
    }

    private mutating func bodySection() throws -> IMAPBodySection {
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

    private mutating func partialRange() throws -> IMAPPartialRange? {
        guard peek(is: "<") else { return nil }
        pos += 1
        let origin = try number("a partial origin")
        try expect(".", "'.' and a partial length")
        let count = try nonZeroNumber("a partial length")
        try expect(">", "'>'")
        return IMAPPartialRange(origin: origin, count: count)
    }

    // MARK: STORE

    private mutating func store(byUID: Bool) throws -> IMAPStoreCommand {
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

    // MARK: SEARCH

    private mutating func search(byUID: Bool) throws -> IMAPSearchCommand {
        try space("search criteria")
        var command = IMAPSearchCommand(key: .all, byUID: byUID)
        if keyword("RETURN") {
            try space("return options")
            try expect("(", "return options")
            var options: [IMAPSearchReturnOption] = []
            if peek(is: ")") {
                pos += 1
            } else {
                while true {
                    let word = IMAPCharacters.upper(try atom("a return option"))
                    guard let option = IMAPSearchReturnOption(rawValue: word) else { throw IMAPReaderStop.bad("Unknown SEARCH return option \(echo(word))") }
                    if !options.contains(option) { options.append(option) }
                    guard try nextListItem("a return option") else { break }
                }
            }
            command.returnOptions = options.isEmpty ? [.all] : options
            try space("search criteria")
        }
        if keyword("CHARSET") {
            try space("a charset name")
            command.charset = IMAPCharacters.upper(try astring("a charset name"))
            try space("search criteria")
        }
        var keys = [try searchKey()]
        while peek(is: " ") {
            pos += 1
            keys.append(try searchKey())
        }
        command.key = keys.count == 1 ? keys[0] : .and(keys)
        return command
    }

    private mutating func searchKey() throws -> IMAPSearchKey {
        try nest()
        defer { depth -= 1 }
        if peek(is: "(") {
            pos += 1
            var keys = [try searchKey()]
            while peek(is: " ") {
                pos += 1
                keys.append(try searchKey())
            }
            try expect(")", "')'")
            return keys.count == 1 ? keys[0] : .and(keys)
        }
        if let c = peek(), IMAPCharacters.isDigit(c) || c == UInt8(ascii: "*") || c == UInt8(ascii: "$") {
            return .sequenceSet(try sequenceSet())
        }
        let word = IMAPCharacters.upper(try atom("a search key"))
        func value(_ what: String) throws -> [UInt8] {
            try space(what)
            return try astring(what)
        }
        func day() throws -> IMAPDate {
            try space("a date")
            return try date()
        }
        switch word {
        case "ALL": return .all
        case "ANSWERED": return .answered
        case "DELETED": return .deleted
        case "DRAFT": return .draft
        case "FLAGGED": return .flagged
        case "NEW": return .new
        case "OLD": return .old
        case "RECENT": return .recent
        case "SEEN": return .seen
        case "UNANSWERED": return .unanswered
        case "UNDELETED": return .undeleted
        case "UNDRAFT": return .undraft
        case "UNFLAGGED": return .unflagged
        case "UNSEEN": return .unseen
        case "BCC": return .bcc(try value("a string"))
        case "BODY": return .body(try value("a string"))
        case "CC": return .cc(try value("a string"))
        case "FROM": return .from(try value("a string"))
        case "SUBJECT": return .subject(try value("a string"))
        case "TEXT": return .text(try value("a string"))
        case "TO": return .to(try value("a string"))
        case "BEFORE": return .before(try day())
        case "ON": return .on(try day())
        case "SINCE": return .since(try day())
        case "SENTBEFORE": return .sentBefore(try day())
        case "SENTON": return .sentOn(try day())
        case "SENTSINCE": return .sentSince(try day())
        case "HEADER":
            let field = try value("a header field name")
            guard !field.isEmpty, field.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ":") }) else {
                throw IMAPReaderStop.bad("Invalid header field name")
            }
            return .header(String(decoding: field, as: UTF8.self), try value("a string"))
        case "KEYWORD", "UNKEYWORD":
            try space("a keyword")
            let flag = IMAPFlag(String(decoding: try atom("a keyword"), as: UTF8.self))
            return word == "KEYWORD" ? .keyword(flag) : .unkeyword(flag)
        case "LARGER", "SMALLER":
            try space("a size")
            let size = try number64("a size")
            return word == "LARGER" ? .larger(size) : .smaller(size)
        case "UID":
            try space("a UID set")
            return .uid(try sequenceSet("a UID set"))
        case "NOT":
            try space("a search key")
            return .not(try searchKey())
        case "OR":
            try space("a search key")
            let first = try searchKey()
            try space("a second search key")
            return .or(first, try searchKey())
        case "MODSEQ":
            try space("a mod-sequence")
            var entry: IMAPModSeqEntry?
            if peek(is: "\"") {
                let name = String(decoding: try quoted(), as: UTF8.self)
                try space("an entry type")
                let typeWord = IMAPCharacters.upper(try atom("an entry type")).lowercased()
                guard let type = IMAPModSeqEntry.EntryType(rawValue: typeWord) else { throw IMAPReaderStop.bad("Invalid entry type \(echo(typeWord))") }
                entry = IMAPModSeqEntry(name: name, type: type)
                try space("a mod-sequence")
            }
            return .modSeq(entry, try number64("a mod-sequence"))
        default:
            throw IMAPReaderStop.bad("Unknown search key \(echo(word))")
        }
    }
}

/// Client text quoted in an error reply, cut to 40 characters so a reply stays short.
private func echo(_ text: String) -> String {
    text.count > 40 ? String(text.prefix(40)) + "..." : text
}

private func echo<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
    echo(String(decoding: Array(bytes), as: UTF8.self))
}

extension IMAPFlag {
    /// One of the five system flags a client may set.
    var isSettableSystemFlag: Bool {
        self == .answered || self == .flagged || self == .deleted || self == .seen || self == .draft
    }
}
