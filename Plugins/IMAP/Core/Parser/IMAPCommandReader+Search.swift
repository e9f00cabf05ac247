import PluginAPI
// SEARCH keys (RFC 3501 §6.4.4, CONDSTORE MODSEQ).
extension IMAPCommandReader {
    // MARK: SEARCH

    mutating func search(byUID: Bool) throws -> IMAPSearchCommand {
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
        command.key = try searchKeys()
        return command
    }

    /// One or more search keys separated by spaces, as one key.
    mutating func searchKeys() throws -> IMAPSearchKey {
        var keys = [try searchKey()]
        while peek(is: " ") {
            pos += 1
            keys.append(try searchKey())
        }
        return keys.count == 1 ? keys[0] : .and(keys)
    }

    // MARK: SORT

    /// `SORT (criteria) charset keys` (RFC 5256 §3): the charset is not optional here.
    mutating func sort(byUID: Bool) throws -> IMAPSortCommand {
        try space("sort criteria")
        try expect("(", "sort criteria")
        var criteria: [IMAPSortCriterion] = []
        while true {
            var word = IMAPCharacters.upper(try atom("a sort criterion"))
            var reverse = false
            if word == "REVERSE" {
                reverse = true
                try space("a sort key")
                word = IMAPCharacters.upper(try atom("a sort key"))
            }
            guard let key = IMAPSortCriterion.Key(rawValue: word) else { throw IMAPReaderStop.bad("Unknown sort key \(echo(word))") }
            criteria.append(IMAPSortCriterion(key, reverse: reverse))
            guard try nextListItem("a sort criterion") else { break }
        }
        try space("a charset name")
        let charset = IMAPCharacters.upper(try astring("a charset name"))
        try space("search criteria")
        return IMAPSortCommand(criteria: criteria, search: IMAPSearchCommand(charset: charset, key: try searchKeys(), byUID: byUID))
    }

    mutating func searchKey() throws -> IMAPSearchKey {
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
