import Foundation
import PluginAPI

/// A folder as the pages show it.
struct FolderInfo: Sendable, Equatable {
    var name: String
    var delimiter: String?
    var attributes: Set<String>
    var messages: Int?
    var unseen: Int?

    /// The special use (RFC 6154) in lower case without the backslash, or "inbox".
    var specialUse: String? {
        if name.uppercased() == "INBOX" { return "inbox" }
        for use in ["\\Drafts", "\\Sent", "\\Trash", "\\Junk", "\\Archive"] where attributes.contains(use.lowercased()) {
            return String(use.dropFirst()).lowercased()
        }
        return nil
    }

    var selectable: Bool { !attributes.contains("\\noselect") && !attributes.contains("\\nonexistent") }
    var subscribed: Bool { attributes.contains("\\subscribed") }
}

/// One message of a list page: what the list shows, from the header fields and FETCH items.
struct MessageSummary: Sendable, Equatable {
    var uid: Int
    var sequence: Int
    var flags: Set<String>
    var size: Int
    var internalDate: String?
    var header: [UInt8]

    var seen: Bool { flags.contains("\\seen") }
    var flagged: Bool { flags.contains("\\flagged") }
}

struct QuotaInfo: Sendable, Equatable {
    var usedKiB: Int
    var limitKiB: Int
}

/// One page of a folder, newest first.
struct FolderPage: Sendable {
    var folder: String
    var total: Int
    var page: Int
    var pageSize: Int
    var messages: [MessageSummary]
    var pageCount: Int { max(1, (total + pageSize - 1) / pageSize) }
}

/// The operations the webmail needs, over one logged-in IMAP connection. Each operation is
/// atomic on the connection (SELECT then FETCH cannot interleave with another request's SELECT):
/// `serial` queues callers.
final class MailAccess: Sendable {
    let connection: IMAPClientConnection
    let serial = AsyncSerialQueue()
    private let folderCache = NIOLockedValueBox<(at: Double, folders: [FolderInfo])?>(nil)

    init(connection: IMAPClientConnection) {
        self.connection = connection
    }

    /// Connects and logs in; wrong credentials throw `IMAPClientError.refused`.
    static func login(endpoint: IMAPEndpoint, group: any EventLoopGroup, user: String, password: String,
                      clientAddress: String?) async throws -> MailAccess {
        let connection = try await IMAPClientConnection.connect(to: endpoint, group: group)
        do {
            let caps = await connection.capabilities
            if caps.contains("ID"), let clientAddress {
                // The store's logs and throttling then see the browser's address, not ours.
                _ = try? await connection.run([.text("ID (\"name\" \"Postern webmail\" \"x-originating-ip\" "), .text(IMAPSyntax.quoted(clientAddress)), .text(")")])
            }
            if caps.contains("AUTH=PLAIN") && caps.contains("SASL-IR") {
                let token = Data(([0] + Array(user.utf8) + [0] + Array(password.utf8))).base64EncodedString()
                try await connection.run([.text("AUTHENTICATE PLAIN " + token)])
            } else {
                try await connection.run([.text("LOGIN "), IMAPSyntax.astring(user), .text(" "), IMAPSyntax.astring(password)])
            }
            if !(await connection.capabilities.contains("IMAP4REV1")) {
                try await connection.run([.text("CAPABILITY")])
            }
        } catch {
            await connection.close()
            throw error
        }
        return MailAccess(connection: connection)
    }

    var isClosed: Bool { get async { await connection.isClosed } }

    func logout() async {
        await connection.close()
    }

    // MARK: - Folders

    /// The folder list, from a cache of a few seconds: one page asks for it several times
    /// (sidebar, move targets, special folders), and a LIST per ask would be the page's cost.
    func folders() async throws -> [FolderInfo] {
        let now = Date().timeIntervalSince1970
        if let cached = folderCache.withLockedValue({ $0 }), now - cached.at < 3 { return cached.folders }
        let fresh = try await listFolders()
        folderCache.withLockedValue { $0 = (now, fresh) }
        return fresh
    }

    func forgetFolders() {
        folderCache.withLockedValue { $0 = nil }
    }

    private func listFolders() async throws -> [FolderInfo] {
        try await serial.run {
            let caps = await connection.capabilities
            var folders: [String: FolderInfo] = [:]
            var order: [String] = []
            let listStatus = caps.contains("LIST-STATUS")
            let subscribed = caps.contains("LIST-EXTENDED") ? "SUBSCRIBED " : ""
            let command = listStatus ? "LIST \"\" \"*\" RETURN (\(subscribed)SPECIAL-USE STATUS (MESSAGES UNSEEN))" : "LIST \"\" \"*\""
            let result = try await connection.run([.text(command)])
            for response in result.data {
                guard case .data(_, let name, let values) = response else { continue }
                if name == "LIST", values.count >= 3, let flags = values[0].list, let mailbox = values[2].bytes {
                    let decoded = ModifiedUTF7.decode(mailbox) ?? String(decoding: mailbox, as: UTF8.self)
                    if folders[decoded] == nil { order.append(decoded) }
                    folders[decoded, default: FolderInfo(name: decoded, delimiter: nil, attributes: [])].attributes =
                        Set(flags.compactMap { $0.text?.lowercased() })
                    folders[decoded]?.delimiter = values[1].text
                } else if name == "STATUS" {
                    apply(status: values, to: &folders)
                }
            }
            if !listStatus {
                for name in order where folders[name]?.selectable == true {
                    if let status = try? await connection.run([.text("STATUS "), IMAPSyntax.mailbox(name), .text(" (MESSAGES UNSEEN)")]) {
                        for case .data(_, "STATUS", let values) in status.data { apply(status: values, to: &folders) }
                    }
                }
            }
            return order.compactMap { folders[$0] }
        }
    }

    private func apply(status values: [IMAPValue], to folders: inout [String: FolderInfo]) {
        guard values.count >= 2, let raw = values[0].bytes, let items = values[1].list else { return }
        let name = ModifiedUTF7.decode(raw) ?? String(decoding: raw, as: UTF8.self)
        var i = 0
        while i + 1 < items.count {
            switch items[i].text?.uppercased() {
            case "MESSAGES": folders[name]?.messages = items[i + 1].number
            case "UNSEEN": folders[name]?.unseen = items[i + 1].number
            default: break
            }
            i += 2
        }
    }

    func quota() async throws -> QuotaInfo? {
        guard await connection.capabilities.contains("QUOTA") else { return nil }
        return try await serial.run {
            let result = try await connection.run([.text("GETQUOTAROOT INBOX")])
            for case .data(_, "QUOTA", let values) in result.data {
                guard values.count >= 2, let items = values[1].list else { continue }
                var i = 0
                while i + 2 < items.count {
                    if items[i].text?.uppercased() == "STORAGE", let used = items[i + 1].number, let limit = items[i + 2].number {
                        return QuotaInfo(usedKiB: used, limitKiB: limit)
                    }
                    i += 3
                }
            }
            return nil
        }
    }

    // MARK: - Messages

    /// The fields the list shows, fetched for a page only: a page costs the same in a folder of
    /// ten messages or of 100,000.
    static let listHeaderFields = "FROM TO CC SUBJECT DATE CONTENT-TYPE MESSAGE-ID IN-REPLY-TO REFERENCES"

    /// A list order the server sorts by (RFC 5256 SORT); arrival order needs no SORT.
    enum SortKey: String, Sendable, CaseIterable {
        case date, from, subject, size
        var criterion: String { ["date": "DATE", "from": "FROM", "subject": "SUBJECT", "size": "SIZE"][rawValue]! }
    }

    var canSort: Bool { get async { await connection.capabilities.contains("SORT") } }

    func page(folder: String, page: Int, pageSize: Int, sort: SortKey? = nil, reverse: Bool = true) async throws -> FolderPage {
        if let sort, await canSort { return try await sortedPage(folder: folder, page: page, pageSize: pageSize, sort: sort, reverse: reverse) }
        return try await serial.run {
            let exists = try await select(folder)
            let newest = exists - page * pageSize
            guard exists > 0, newest >= 1 else {
                return FolderPage(folder: folder, total: exists, page: page, pageSize: pageSize, messages: [])
            }
            let oldest = max(1, newest - pageSize + 1)
            let result = try await connection.run([.text("FETCH \(oldest):\(newest) (UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (\(Self.listHeaderFields))])")])
            let summaries = result.data.compactMap(Self.summary).sorted { $0.sequence > $1.sequence }
            return FolderPage(folder: folder, total: exists, page: page, pageSize: pageSize, messages: summaries)
        }
    }

    /// One page in the server's SORT order: the sorted UIDs, then a FETCH of the page's slice.
    private func sortedPage(folder: String, page: Int, pageSize: Int, sort: SortKey, reverse: Bool) async throws -> FolderPage {
        try await serial.run {
            let exists = try await select(folder)
            let result = try await connection.run([.text("UID SORT (\(reverse ? "REVERSE " : "")\(sort.criterion)) UTF-8 ALL")])
            var uids: [Int] = []
            for case .data(_, "SORT", let values) in result.data { uids += values.compactMap(\.number) }
            let slice = Array(uids.dropFirst(page * pageSize).prefix(pageSize))
            guard !slice.isEmpty else { return FolderPage(folder: folder, total: exists, page: page, pageSize: pageSize, messages: []) }
            let fetched = try await connection.run([.text("UID FETCH \(Self.uidSet(slice)) (UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (\(Self.listHeaderFields))])")])
            let byUID = Dictionary(fetched.data.compactMap(Self.summary).map { ($0.uid, $0) }, uniquingKeysWith: { a, _ in a })
            return FolderPage(folder: folder, total: exists, page: page, pageSize: pageSize, messages: slice.compactMap { byUID[$0] })
        }
    }

    /// The whole message; marks it seen, as opening a message in a mail client does.
    func message(folder: String, uid: Int, markSeen: Bool = true) async throws -> (summary: MessageSummary, raw: [UInt8])? {
        try await serial.run {
            _ = try await select(folder)
            let item = markSeen ? "BODY[]" : "BODY.PEEK[]"
            let result = try await connection.run([.text("UID FETCH \(uid) (UID FLAGS RFC822.SIZE INTERNALDATE \(item))")])
            for case .data(let seq?, "FETCH", let values) in result.data {
                guard let items = values.first?.list else { continue }
                let map = Self.fetchItems(items)
                guard map["UID"]?.number == uid, let raw = map["BODY[]"]?.bytes else { continue }
                var summary = Self.summary(sequence: seq, map) ?? MessageSummary(uid: uid, sequence: seq, flags: [], size: raw.count, header: [])
                if markSeen { summary.flags.insert("\\seen") }
                return (summary, raw)
            }
            return nil
        }
    }

    /// SELECT, every time: the answer brings the current EXISTS, which another device may have
    /// changed since this connection last looked.
    func select(_ folder: String) async throws -> Int {
        let result = try await connection.run([.text("SELECT "), IMAPSyntax.mailbox(folder)])
        for case .data(let n?, "EXISTS", _) in result.data { return n }
        return 0
    }

    static func fetchItems(_ items: [IMAPValue]) -> [String: IMAPValue] {
        var map: [String: IMAPValue] = [:]
        var i = 0
        while i + 1 < items.count {
            if let key = items[i].text?.uppercased() {
                // `BODY[HEADER.FIELDS (...)]` is keyed by its section name only.
                let name = key.hasPrefix("BODY[HEADER.FIELDS") ? "HEADER" : key
                map[name] = items[i + 1]
            }
            i += 2
        }
        return map
    }

    static func summary(_ response: IMAPServerResponse) -> MessageSummary? {
        guard case .data(let seq?, "FETCH", let values) = response, let items = values.first?.list else { return nil }
        return summary(sequence: seq, fetchItems(items))
    }

    private static func summary(sequence: Int, _ map: [String: IMAPValue]) -> MessageSummary? {
        guard let uid = map["UID"]?.number else { return nil }
        return MessageSummary(uid: uid, sequence: sequence,
                              flags: Set(map["FLAGS"]?.list?.compactMap { $0.text?.lowercased() } ?? []),
                              size: map["RFC822.SIZE"]?.number ?? 0,
                              internalDate: map["INTERNALDATE"]?.text,
                              header: map["HEADER"]?.bytes ?? [])
    }
}

/// Writing IMAP arguments.
enum IMAPSyntax {
    /// A quoted string (the caller makes sure it holds no CR, LF, NUL or 8-bit byte).
    static func quoted(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    static func astring(_ text: String) -> IMAPCommandPart {
        if text.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) { return .text(quoted(text)) }
        return .literal(Array(text.utf8))
    }

    static func mailbox(_ name: String) -> IMAPCommandPart {
        astring(name.uppercased() == "INBOX" ? "INBOX" : ModifiedUTF7.encode(name))
    }
}

/// Runs async operations one at a time, in arrival order (an actor alone would interleave them
/// at every await).
final class AsyncSerialQueue: Sendable {
    private let state = NIOLockedValueBox<(busy: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func run<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        await acquire()
        defer { release() }
        return try await body()
    }

    private func acquire() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLockedValue { s -> Bool in
                if s.busy { s.waiters.append(c); return false }
                s.busy = true
                return true
            }
            if resumeNow { c.resume() }
        }
    }

    private func release() {
        let next = state.withLockedValue { s -> CheckedContinuation<Void, Never>? in
            if s.waiters.isEmpty { s.busy = false; return nil }
            return s.waiters.removeFirst()
        }
        next?.resume()
    }
}
