import PluginAPI

/// SORT (RFC 5256): a SEARCH, then the matches ordered by the criteria, ties in mailbox order.
extension IMAPSession {
    func sort(_ tag: String, _ command: IMAPSortCommand) async -> IMAPStatusResponse {
        guard let sel = selection, let user else { return .tagged(tag, .bad, "No mailbox selected.") }
        let query: SearchQuery
        do {
            query = try SearchTranslator(view: sel.view, savedResult: savedSearch).translate(command.search)
        } catch SearchTranslationError.badCharset {
            return .tagged(tag, .no, .badCharset(SearchTranslator.charsets), "Unsupported charset")
        } catch {
            return .tagged(tag, .bad, "Error in IMAP command SORT: Invalid messageset")
        }
        do {
            let found = try await store.search(user: user, mailbox: sel.name, query: query)
            let matches = sel.view.resolve(uids: found).filter { !sel.view.isVanished($0.uid) }
            let stored = try await storedMessages(matches, in: sel.name)
            let needsHeaders = command.criteria.contains { ![.arrival, .size].contains($0.key) }
            var headers: [UInt32: SortHeaders] = [:]
            if needsHeaders {
                // Header fields come from the messages themselves, a batch at a time.
                for start in stride(from: 0, to: matches.count, by: Self.fetchBatchMessages) {
                    let batch = matches[start..<min(matches.count, start + Self.fetchBatchMessages)].map(\.uid)
                    for (uid, content) in try await store.contents(user: user, mailbox: sel.name, uids: batch) {
                        headers[uid] = SortHeaders(message: content)
                    }
                }
            }
            let keyed = matches.map { m -> (seq: UInt32, uid: UInt32, keys: [SortValue]) in
                let message = stored[m.uid], header = headers[m.uid]
                let keys = command.criteria.map { c -> SortValue in
                    switch c.key {
                    case .arrival: return .number(message?.internalDate ?? 0)
                    case .size: return .number(Int64(message?.size ?? 0))
                    case .date: return .number(header?.date ?? message?.internalDate ?? 0)
                    case .from: return .text(header?.from ?? "")
                    case .to: return .text(header?.to ?? "")
                    case .cc: return .text(header?.cc ?? "")
                    case .subject: return .text(header?.subject ?? "")
                    }
                }
                return (m.seq, m.uid, keys)
            }
            let sorted = keyed.sorted { a, b in
                for (i, criterion) in command.criteria.enumerated() where a.keys[i] != b.keys[i] {
                    return criterion.reverse ? b.keys[i] < a.keys[i] : a.keys[i] < b.keys[i]
                }
                return a.seq < b.seq
            }
            send(.data(.sort(sorted.map { command.search.byUID ? $0.uid : $0.seq })))
            return .tagged(tag, .ok, "Sort completed.")
        } catch {
            return failure(tag, error)
        }
    }
}

/// One sort key's value: numbers for dates and sizes, text compared as i;ascii-casemap does.
enum SortValue: Equatable, Comparable {
    case number(Int64)
    case text(String)

    static func < (a: SortValue, b: SortValue) -> Bool {
        switch (a, b) {
        case (.number(let x), .number(let y)): return x < y
        case (.text(let x), .text(let y)): return Array(x.utf8).lexicographicallyPrecedes(Array(y.utf8))
        case (.number, .text): return true
        case (.text, .number): return false
        }
    }
}

/// What SORT reads from a message's header (RFC 5256 §2.2 and §3).
struct SortHeaders: Equatable {
    /// The Date field in seconds since 1970 (UTC), nil when absent or unreadable.
    var date: Int64?
    /// The mailbox (local part) of the first address, upper-cased for i;ascii-casemap.
    var from: String
    var to: String
    var cc: String
    /// The base subject (RFC 5256 §2.1), upper-cased.
    var subject: String

    init(message: [UInt8]) {
        // The header only: up to the first empty line.
        var end = message.count
        if let i = Self.headerEnd(message) { end = i }
        let root = MIMEMessage(parsing: message[..<end] + [13, 10, 13, 10]).root
        func first(_ name: String) -> String {
            guard let field = root.field(name), let mailbox = MailAddressList(parsing: field.value).mailboxes.first else { return "" }
            return mailbox.localPart.uppercased()
        }
        date = root.field("Date").flatMap { MailDate(rfc5322: String(decoding: $0.value, as: UTF8.self))?.secondsSince1970 }
        from = first("From")
        to = first("To")
        cc = first("Cc")
        subject = Self.baseSubject(root.field("Subject").map { EncodedWords.decode($0.value) } ?? "")
    }

    static func headerEnd(_ bytes: [UInt8]) -> Int? {
        var i = 0
        while i + 1 < bytes.count {
            if bytes[i] == 10 && bytes[i + 1] == 10 { return i + 1 }
            if i + 3 < bytes.count && bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 { return i + 2 }
            i += 1
        }
        return nil
    }

    /// RFC 5256 §2.1, simplified where the RFC leaves room: whitespace collapsed; trailing
    /// "(fwd)" removed; leading "re:", "fw:", "fwd:" (with an optional "[blob]" before the
    /// colon) and "[blob]" prefixes removed as long as something remains; "[fwd: ...]" unwrapped.
    static func baseSubject(_ subject: String) -> String {
        var s = subject.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }).joined(separator: " ")
        var changed = true
        while changed {
            changed = false
            while s.lowercased().hasSuffix("(fwd)") {
                s = String(s.dropLast(5)).trimmingCharacters(in: .whitespaces)
                changed = true
            }
            let lower = s.lowercased()
            for prefix in ["re", "fwd", "fw"] where lower.hasPrefix(prefix) {
                var rest = Substring(s.dropFirst(prefix.count))
                rest = rest.drop(while: { $0 == " " })
                if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") { rest = rest[rest.index(after: close)...].drop(while: { $0 == " " }) }
                if rest.hasPrefix(":") {
                    s = String(rest.dropFirst()).trimmingCharacters(in: .whitespaces)
                    changed = true
                    break
                }
            }
            if !changed, s.hasPrefix("["), let close = s.firstIndex(of: "]") {
                let rest = s[s.index(after: close)...].trimmingCharacters(in: .whitespaces)
                if !rest.isEmpty { s = rest; changed = true }
            }
            if !changed, s.lowercased().hasPrefix("[fwd:"), s.hasSuffix("]") {
                s = String(s.dropFirst(5).dropLast()).trimmingCharacters(in: .whitespaces)
                changed = true
            }
        }
        return s.uppercased()
    }
}
