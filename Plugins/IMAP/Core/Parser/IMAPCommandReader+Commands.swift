import PluginAPI
// Each command's arguments (RFC 3501 §6 and the extensions), FETCH, STORE and SEARCH aside.
extension IMAPCommandReader {
    // MARK: - Commands

    mutating func command() throws -> IMAPTaggedCommand {
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

    mutating func arguments(of name: String) throws -> IMAPCommand {
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
        case "SEARCH", "SORT", "FETCH", "STORE", "COPY", "MOVE":
            return try selectedCommand(name, byUID: false)
        case "UID":
            try space("a UID command")
            let sub = IMAPCharacters.upper(try atom("a UID command"))
            commandName = "UID " + sub
            switch sub {
            case "SEARCH", "SORT", "FETCH", "STORE", "COPY", "MOVE": return try selectedCommand(sub, byUID: true)
            case "EXPUNGE":
                try space("a UID set")
                return .uidExpunge(try sequenceSet("a UID set"))
            default: throw IMAPReaderStop.bad("Unknown command UID \(echo(sub))")
            }
        default:
            throw IMAPReaderStop.bad("Unknown command \(echo(name))")
        }
    }

    mutating func selectedCommand(_ name: String, byUID: Bool) throws -> IMAPCommand {
        switch name {
        case "SEARCH": return .search(try search(byUID: byUID))
        case "SORT": return .sort(try sort(byUID: byUID))
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

    mutating func authenticate() throws -> IMAPCommand {
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

    mutating func id() throws -> IMAPCommand {
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

    mutating func selectParameters() throws -> IMAPSelectParameters {
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
    mutating func qresyncParameters() throws -> IMAPQResyncParameters {
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

    mutating func statusAttributes() throws -> [IMAPStatusAttribute] {
        try expect("(", "'(' and status items")
        var items: [IMAPStatusAttribute] = []
        while true {
            let word = IMAPCharacters.upper(try atom("a status item"))
            guard let item = IMAPStatusAttribute(rawValue: word) else { throw IMAPReaderStop.bad("Unknown status item \(echo(word))") }
            items.append(item)
            guard try nextListItem("a status item") else { return items }
        }
    }

    mutating func list() throws -> IMAPCommand {
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

    mutating func append() throws -> IMAPCommand {
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

    mutating func setQuota() throws -> IMAPCommand {
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
}
