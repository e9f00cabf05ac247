import PluginAPI

/// Writes responses as bytes. Strings take the lightest form that is safe: an atom where the
/// grammar allows one and the value is one, a quoted string when every byte is printable 7-bit
/// (or UTF-8 under UTF8=ACCEPT) and the value is short, a literal otherwise (CR, LF, 8-bit,
/// long values). A NUL byte is never sent in a string: it becomes U+FFFD. Message contents
/// (BODY[], RFC822...) are always literals and are sent as stored.
public struct IMAPResponseEncoder: Sendable {
    /// RFC 6855: UTF-8 in quoted strings and mailbox names (no modified UTF-7).
    public var utf8Accept: Bool
    /// Values longer than this are sent as literals even when they could be quoted.
    public var maxQuotedLength: Int

    public init(utf8Accept: Bool = false, maxQuotedLength: Int = 1024) {
        self.utf8Accept = utf8Accept
        self.maxQuotedLength = maxQuotedLength
    }

    public func encode(_ response: IMAPResponse) -> [UInt8] {
        var out: [UInt8] = []
        encode(response, into: &out)
        return out
    }

    /// Appends the response, CRLF included.
    public func encode(_ response: IMAPResponse, into out: inout [UInt8]) {
        switch response {
        case .status(let s):
            out.append(contentsOf: (s.tag ?? "*").utf8)
            out.append(0x20)
            out.append(contentsOf: s.status.rawValue.utf8)
            writeResponseText(s.code, s.text, &out)
        case .data(let data):
            out.append(contentsOf: "* ".utf8)
            writeData(data, &out)
        case .continuation(let text):
            out.append(contentsOf: "+ ".utf8)
            out.append(contentsOf: Self.sanitizedText(text))
        case .challenge(let bytes):
            out.append(contentsOf: "+ ".utf8)
            out.append(contentsOf: Base64Encoder.encode(bytes, lineLength: 0))
        }
        out.append(contentsOf: [0x0D, 0x0A])
    }

    /// Appends the response to a NIO buffer.
    public func encode(_ response: IMAPResponse, into buffer: inout ByteBuffer) {
        buffer.writeBytes(encode(response))
    }

    // MARK: - Strings

    /// `astring`: an atom when the value is one (and not NIL), else `string`.
    public func astring(_ value: [UInt8], into out: inout [UInt8]) {
        if !value.isEmpty, value.count <= maxQuotedLength, value.allSatisfy(IMAPCharacters.isAStringChar),
           !IMAPCharacters.equalsIgnoringCase(value, "NIL") {
            out.append(contentsOf: value)
        } else {
            string(value, into: &out)
        }
    }

    /// `string`: quoted when safe, else a literal.
    public func string(_ value: [UInt8], into out: inout [UInt8]) {
        let clean = value.contains(0) ? Self.replacingNUL(value) : value
        if canQuote(clean) {
            out.append(0x22)
            for c in clean {
                if c == 0x22 || c == 0x5C { out.append(0x5C) }
                out.append(c)
            }
            out.append(0x22)
        } else {
            literal(clean, into: &out)
        }
    }

    /// `nstring`: NIL for nil.
    public func nstring(_ value: [UInt8]?, into out: inout [UInt8]) {
        guard let value else { out.append(contentsOf: "NIL".utf8); return }
        string(value, into: &out)
    }

    /// A mailbox name: modified UTF-7 (or UTF-8 under UTF8=ACCEPT), as an astring; INBOX as is.
    public func mailbox(_ name: String, into out: inout [UInt8]) {
        let bytes = utf8Accept ? Array(name.utf8) : ModifiedUTF7.encodeBytes(name)
        astring(bytes, into: &out)
    }

    private func canQuote(_ value: [UInt8]) -> Bool {
        guard value.count <= maxQuotedLength else { return false }
        var eightBit = false
        for c in value {
            if c >= 0x80 { eightBit = true; continue }
            if c < 0x20 || c == 0x7F { return false }
        }
        return !eightBit || (utf8Accept && String(validating: value, as: UTF8.self) != nil)
    }

    private func literal(_ value: [UInt8], into out: inout [UInt8]) {
        out.append(contentsOf: "{\(value.count)}\r\n".utf8)
        out.append(contentsOf: value)
    }

    private static func replacingNUL(_ value: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(value.count + 8)
        for c in value {
            if c == 0 { out.append(contentsOf: [0xEF, 0xBF, 0xBD]) } else { out.append(c) }
        }
        return out
    }

    /// Response text: CR, LF and NUL become spaces, so a text can never end the line early.
    static func sanitizedText(_ text: String) -> [UInt8] {
        text.utf8.map { $0 == 0x0D || $0 == 0x0A || $0 == 0 ? 0x20 : $0 }
    }

    // MARK: - Status responses

    private func writeResponseText(_ code: IMAPResponseCode?, _ text: String, _ out: inout [UInt8]) {
        if let code {
            out.append(contentsOf: " [".utf8)
            writeCode(code, &out)
            out.append(0x5D)
        }
        // RFC 3501 wants text after the code; RFC 9051 lets it be empty. Empty: no trailing space.
        if !text.isEmpty {
            out.append(0x20)
            out.append(contentsOf: Self.sanitizedText(text))
        }
    }

    private func writeCode(_ code: IMAPResponseCode, _ out: inout [UInt8]) {
        func put(_ s: String) { out.append(contentsOf: s.utf8) }
        switch code {
        case .alert: put("ALERT")
        case .badCharset(let names):
            put("BADCHARSET")
            if !names.isEmpty {
                put(" (")
                for (i, n) in names.enumerated() {
                    if i > 0 { put(" ") }
                    astring(Array(n.utf8), into: &out)
                }
                put(")")
            }
        case .capability(let caps): put("CAPABILITY " + caps.joined(separator: " "))
        case .parse: put("PARSE")
        case .permanentFlags(let flags): put("PERMANENTFLAGS "); writeFlags(flags, &out)
        case .readOnly: put("READ-ONLY")
        case .readWrite: put("READ-WRITE")
        case .tryCreate: put("TRYCREATE")
        case .uidNext(let n): put("UIDNEXT \(n)")
        case .uidValidity(let n): put("UIDVALIDITY \(n)")
        case .unseen(let n): put("UNSEEN \(n)")
        case .appendUID(let v, let uids): put("APPENDUID \(v) \(uids)")
        case .copyUID(let v, let source, let destination): put("COPYUID \(v) \(source) \(destination)")
        case .uidNotSticky: put("UIDNOTSTICKY")
        case .highestModSeq(let n): put("HIGHESTMODSEQ \(n)")
        case .noModSeq: put("NOMODSEQ")
        case .modified(let set): put("MODIFIED \(set)")
        case .closed: put("CLOSED")
        case .unavailable: put("UNAVAILABLE")
        case .authenticationFailed: put("AUTHENTICATIONFAILED")
        case .authorizationFailed: put("AUTHORIZATIONFAILED")
        case .expired: put("EXPIRED")
        case .privacyRequired: put("PRIVACYREQUIRED")
        case .contactAdmin: put("CONTACTADMIN")
        case .noPerm: put("NOPERM")
        case .inUse: put("INUSE")
        case .expungeIssued: put("EXPUNGEISSUED")
        case .corruption: put("CORRUPTION")
        case .serverBug: put("SERVERBUG")
        case .clientBug: put("CLIENTBUG")
        case .cannot: put("CANNOT")
        case .limit: put("LIMIT")
        case .overQuota: put("OVERQUOTA")
        case .alreadyExists: put("ALREADYEXISTS")
        case .nonExistent: put("NONEXISTENT")
        case .tooBig: put("TOOBIG")
        case .useAttr: put("USEATTR")
        case .unknownCTE: put("UNKNOWN-CTE")
        case .compressionActive: put("COMPRESSIONACTIVE")
        case .hasChildren: put("HASCHILDREN")
        case .notSaved: put("NOTSAVED")
        case .other(let name, let text):
            put(name)
            if let text { put(" "); out.append(contentsOf: Self.sanitizedText(text).filter { $0 != 0x5D }) }
        }
    }

    private func writeFlags(_ flags: [IMAPFlag], _ out: inout [UInt8]) {
        out.append(0x28)
        for (i, f) in flags.enumerated() {
            if i > 0 { out.append(0x20) }
            out.append(contentsOf: f.name.utf8)
        }
        out.append(0x29)
    }

    private func writeDelimiter(_ delimiter: Character?, _ out: inout [UInt8]) {
        guard let delimiter else { out.append(contentsOf: "NIL".utf8); return }
        string(Array(String(delimiter).utf8), into: &out)
    }

    // MARK: - Untagged data

    private func writeData(_ data: IMAPResponseData, _ out: inout [UInt8]) {
        func put(_ s: String) { out.append(contentsOf: s.utf8) }
        switch data {
        case .capability(let caps): put((["CAPABILITY"] + caps).joined(separator: " "))
        case .enabled(let caps): put((["ENABLED"] + caps).joined(separator: " "))
        case .flags(let flags): put("FLAGS "); writeFlags(flags, &out)
        case .list(let item): put("LIST "); writeList(item, &out)
        case .lsub(let item): put("LSUB "); writeList(item, &out)
        case .status(let box, let values):
            put("STATUS ")
            mailbox(box, into: &out)
            put(" (" + values.map { "\($0.attribute.rawValue) \($0.value)" }.joined(separator: " ") + ")")
        case .search(let numbers, let modSeq):
            put("SEARCH")
            for n in numbers { put(" \(n)") }
            if let modSeq { put(" (MODSEQ \(modSeq))") }
        case .sort(let numbers):
            put("SORT")
            for n in numbers { put(" \(n)") }
        case .esearch(let e):
            put("ESEARCH")
            if let tag = e.tag { put(" (TAG "); string(Array(tag.utf8), into: &out); put(")") }
            if e.byUID { put(" UID") }
            if let n = e.min { put(" MIN \(n)") }
            if let n = e.max { put(" MAX \(n)") }
            if let set = e.all { put(" ALL \(set)") }
            if let n = e.count { put(" COUNT \(n)") }
            if let n = e.modSeq { put(" MODSEQ \(n)") }
        case .exists(let n): put("\(n) EXISTS")
        case .recent(let n): put("\(n) RECENT")
        case .expunge(let n): put("\(n) EXPUNGE")
        case .fetch(let n, let items):
            put("\(n) FETCH (")
            for (i, item) in items.enumerated() {
                if i > 0 { put(" ") }
                writeFetchItem(item, &out)
            }
            put(")")
        case .namespace(let personal, let other, let shared):
            put("NAMESPACE")
            for group in [personal, other, shared] {
                put(" ")
                guard let group, !group.isEmpty else { put("NIL"); continue }
                put("(")
                for ns in group {
                    put("(")
                    string(utf8Accept ? Array(ns.prefix.utf8) : ModifiedUTF7.encodeBytes(ns.prefix), into: &out)
                    put(" ")
                    writeDelimiter(ns.delimiter, &out)
                    put(")")
                }
                put(")")
            }
        case .quota(let root, let resources):
            put("QUOTA ")
            astring(Array(root.utf8), into: &out)
            put(" (" + resources.map { "\($0.name) \($0.usage) \($0.limit)" }.joined(separator: " ") + ")")
        case .quotaRoot(let box, let roots):
            put("QUOTAROOT ")
            mailbox(box, into: &out)
            for root in roots { put(" "); astring(Array(root.utf8), into: &out) }
        case .acl(let box, let entries):
            put("ACL ")
            mailbox(box, into: &out)
            for e in entries {
                put(" ")
                astring(Array(e.identifier.utf8), into: &out)
                put(" ")
                astring(Array(e.rights.utf8), into: &out)
            }
        case .listRights(let box, let identifier, let required, let optional):
            put("LISTRIGHTS ")
            mailbox(box, into: &out)
            put(" ")
            astring(Array(identifier.utf8), into: &out)
            put(" ")
            // An empty required set is written "" (RFC 4314 §3.7).
            astring(Array(required.utf8), into: &out)
            for o in optional { put(" "); astring(Array(o.utf8), into: &out) }
        case .myRights(let box, let rights):
            put("MYRIGHTS ")
            mailbox(box, into: &out)
            put(" ")
            astring(Array(rights.utf8), into: &out)
        case .id(let fields):
            put("ID ")
            guard let fields, !fields.isEmpty else { put("NIL"); return }
            put("(")
            for (i, f) in fields.enumerated() {
                if i > 0 { put(" ") }
                string(Array(f.key.utf8), into: &out)
                put(" ")
                nstring(f.value.map { Array($0.utf8) }, into: &out)
            }
            put(")")
        case .vanished(let earlier, let set):
            put(earlier ? "VANISHED (EARLIER) \(set)" : "VANISHED \(set)")
        }
    }

    private func writeList(_ item: IMAPListResponse, _ out: inout [UInt8]) {
        out.append(contentsOf: "(\(item.attributes.joined(separator: " "))) ".utf8)
        writeDelimiter(item.delimiter, &out)
        out.append(0x20)
        mailbox(item.name, into: &out)
        guard item.childInfo != nil || item.oldName != nil else { return }
        out.append(contentsOf: " (".utf8)
        if let info = item.childInfo {
            out.append(contentsOf: "\"CHILDINFO\" (".utf8)
            for (i, v) in info.enumerated() {
                if i > 0 { out.append(0x20) }
                string(Array(v.utf8), into: &out)
            }
            out.append(0x29)
        }
        if let old = item.oldName {
            if item.childInfo != nil { out.append(0x20) }
            out.append(contentsOf: "\"OLDNAME\" (".utf8)
            mailbox(old, into: &out)
            out.append(0x29)
        }
        out.append(0x29)
    }

    private func writeFetchItem(_ item: IMAPFetchResponseItem, _ out: inout [UInt8]) {
        func put(_ s: String) { out.append(contentsOf: s.utf8) }
        func contents(_ data: [UInt8]?) {
            guard let data else { put("NIL"); return }
            literal(data, into: &out)
        }
        switch item {
        case .uid(let n): put("UID \(n)")
        case .flags(let flags): put("FLAGS "); writeFlags(flags, &out)
        case .internalDate(let date): put("INTERNALDATE \"\(date)\"")
        case .rfc822Size(let n): put("RFC822.SIZE \(n)")
        case .envelope(let raw): put("ENVELOPE "); out.append(contentsOf: raw)
        case .bodyStructureBasic(let raw): put("BODY "); out.append(contentsOf: raw)
        case .bodyStructure(let raw): put("BODYSTRUCTURE "); out.append(contentsOf: raw)
        case .modSeq(let n): put("MODSEQ (\(n))")
        case .rfc822(let data): put("RFC822 "); contents(data)
        case .rfc822Header(let data): put("RFC822.HEADER "); contents(data)
        case .rfc822Text(let data): put("RFC822.TEXT "); contents(data)
        case .body(let section, let origin, let data):
            put("BODY[")
            writeSection(section, &out)
            put("]")
            if let origin { put("<\(origin)>") }
            put(" ")
            contents(data)
        case .binary(let part, let origin, let data):
            put("BINARY[" + part.map(String.init).joined(separator: ".") + "]")
            if let origin { put("<\(origin)>") }
            put(" ")
            if let data, data.contains(0) {
                put("~{\(data.count)}\r\n")
                out.append(contentsOf: data)
            } else {
                contents(data)
            }
        case .binarySize(let part, let size):
            put("BINARY.SIZE[" + part.map(String.init).joined(separator: ".") + "] \(size)")
        }
    }

    private func writeSection(_ section: IMAPBodySection, _ out: inout [UInt8]) {
        func put(_ s: String) { out.append(contentsOf: s.utf8) }
        put(section.part.map(String.init).joined(separator: "."))
        let dot = section.part.isEmpty ? "" : "."
        func fields(_ keyword: String, _ names: [String]) {
            put(dot + keyword + " (")
            for (i, n) in names.enumerated() {
                if i > 0 { put(" ") }
                astring(Array(n.utf8), into: &out)
            }
            put(")")
        }
        switch section.kind {
        case .complete: break
        case .header: put(dot + "HEADER")
        case .headerFields(let names): fields("HEADER.FIELDS", names)
        case .headerFieldsNot(let names): fields("HEADER.FIELDS.NOT", names)
        case .text: put(dot + "TEXT")
        case .mime: put(dot + "MIME")
        }
    }
}
