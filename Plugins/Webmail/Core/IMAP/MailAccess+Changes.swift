import Foundation
import PluginAPI

/// A search as the search form asks it: words in one field (or all of them), a date range.
struct MailSearch: Sendable, Equatable {
    enum Field: String, Sendable, CaseIterable { case all, subject, from, to, body }
    var text: String
    var field: Field = .all
    /// `dd-Mon-yyyy` bounds (IMAP dates), inclusive of `since`, exclusive of `before`.
    var since: String?
    var before: String?

    /// The UID SEARCH arguments; strings go as literals when they are not plain ASCII.
    var arguments: [IMAPCommandPart] {
        var parts: [IMAPCommandPart] = [.text("UID SEARCH CHARSET UTF-8")]
        for word in text.split(separator: " ").map(String.init) where !word.isEmpty {
            switch field {
            case .all:
                // Any of the fields: OR is binary in IMAP, so nest it.
                parts += [.text(" OR OR OR SUBJECT "), IMAPSyntax.astring(word), .text(" FROM "), IMAPSyntax.astring(word),
                          .text(" TO "), IMAPSyntax.astring(word), .text(" BODY "), IMAPSyntax.astring(word)]
            case .subject: parts += [.text(" SUBJECT "), IMAPSyntax.astring(word)]
            case .from: parts += [.text(" FROM "), IMAPSyntax.astring(word)]
            case .to: parts += [.text(" OR OR TO "), IMAPSyntax.astring(word), .text(" CC "), IMAPSyntax.astring(word),
                                .text(" BCC "), IMAPSyntax.astring(word)]
            case .body: parts += [.text(" BODY "), IMAPSyntax.astring(word)]
            }
        }
        if let since { parts.append(.text(" SINCE \(since)")) }
        if let before { parts.append(.text(" BEFORE \(before)")) }
        if parts.count == 1 { parts.append(.text(" ALL")) }
        return parts
    }
}

/// Changes: flags, moves, deletes, appends, folder management and search.
extension MailAccess {
    /// Sets or clears a flag on messages.
    func setFlag(_ flag: String, on: Bool, uids: [Int], folder: String) async throws {
        guard !uids.isEmpty else { return }
        forgetFolders()
        try await serial.run {
            _ = try await select(folder)
            try await connection.run([.text("UID STORE \(Self.uidSet(uids)) \(on ? "+" : "-")FLAGS.SILENT (\(flag))")])
        }
    }

    /// Moves messages (RFC 6851 MOVE, else COPY, then delete and expunge only those UIDs).
    func move(uids: [Int], from folder: String, to target: String) async throws {
        guard !uids.isEmpty, folder != target else { return }
        forgetFolders()
        try await serial.run {
            _ = try await select(folder)
            let set = Self.uidSet(uids)
            let caps = await connection.capabilities
            if caps.contains("MOVE") {
                try await connection.run([.text("UID MOVE \(set) "), IMAPSyntax.mailbox(target)])
            } else {
                try await connection.run([.text("UID COPY \(set) "), IMAPSyntax.mailbox(target)])
                try await connection.run([.text("UID STORE \(set) +FLAGS.SILENT (\\Deleted)")])
                if caps.contains("UIDPLUS") { try await connection.run([.text("UID EXPUNGE \(set)")]) }
            }
        }
    }

    /// Removes messages for good (from the Trash, or a folder with no Trash to move them to).
    func expunge(uids: [Int], folder: String) async throws {
        guard !uids.isEmpty else { return }
        forgetFolders()
        try await serial.run {
            _ = try await select(folder)
            let set = Self.uidSet(uids)
            try await connection.run([.text("UID STORE \(set) +FLAGS.SILENT (\\Deleted)")])
            if await connection.capabilities.contains("UIDPLUS") {
                try await connection.run([.text("UID EXPUNGE \(set)")])
            } else {
                try await connection.run([.text("EXPUNGE")])
            }
        }
    }

    /// Appends a message (a sent copy, a draft); returns its UID when the server says (UIDPLUS).
    @discardableResult
    func append(_ message: [UInt8], to folder: String, flags: [String]) async throws -> Int? {
        forgetFolders()
        return try await serial.run {
            let result = try await connection.run([.text("APPEND "), IMAPSyntax.mailbox(folder), .text(" (\(flags.joined(separator: " "))) "),
                                                   .literal(message)])
            // [APPENDUID uidvalidity uid]
            if let code = result.code, code.uppercased().hasPrefix("APPENDUID ") {
                return code.split(separator: " ").last.flatMap { Int($0) }
            }
            return nil
        }
    }

    func createFolder(_ name: String) async throws {
        forgetFolders()
        try await serial.run {
            try await connection.run([.text("CREATE "), IMAPSyntax.mailbox(name)])
            _ = try? await connection.run([.text("SUBSCRIBE "), IMAPSyntax.mailbox(name)])
        }
    }

    func setSubscribed(_ name: String, _ subscribed: Bool) async throws {
        forgetFolders()
        try await serial.run {
            try await connection.run([.text(subscribed ? "SUBSCRIBE " : "UNSUBSCRIBE "), IMAPSyntax.mailbox(name)])
        }
    }

    func renameFolder(_ name: String, to newName: String) async throws {
        forgetFolders()
        try await serial.run {
            try await connection.run([.text("RENAME "), IMAPSyntax.mailbox(name), .text(" "), IMAPSyntax.mailbox(newName)])
        }
    }

    func deleteFolder(_ name: String) async throws {
        forgetFolders()
        try await serial.run {
            // A selected folder cannot always be deleted: leave it first.
            if await connection.capabilities.contains("UNSELECT") { _ = try? await connection.run([.text("UNSELECT")]) }
            try await connection.run([.text("DELETE "), IMAPSyntax.mailbox(name)])
        }
    }

    /// The UIDs matching a search, newest first.
    func search(_ query: MailSearch, folder: String) async throws -> [Int] {
        try await serial.run {
            _ = try await select(folder)
            let result = try await connection.run(query.arguments)
            var uids: [Int] = []
            for case .data(_, "SEARCH", let values) in result.data { uids += values.compactMap(\.number) }
            return uids.sorted(by: >)
        }
    }

    /// List rows for given UIDs (search results), newest first.
    func summaries(uids: [Int], folder: String) async throws -> [MessageSummary] {
        guard !uids.isEmpty else { return [] }
        return try await serial.run {
            _ = try await select(folder)
            let result = try await connection.run([.text("UID FETCH \(Self.uidSet(uids)) (UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (\(Self.listHeaderFields))])")])
            return result.data.compactMap(Self.summary).sorted { $0.uid > $1.uid }
        }
    }

    /// The messages of a conversation in the given folders: those whose Message-ID is `root`, or
    /// whose References or In-Reply-To name it. Spanning folders is the point: the user's own
    /// replies in Sent appear beside the messages in the Inbox.
    func conversation(root: String, folders: [String]) async throws -> [(folder: String, summary: MessageSummary)] {
        var found: [(String, MessageSummary)] = []
        let id = IMAPSyntax.astring(root)
        for folder in folders {
            let query: [IMAPCommandPart] = [.text("UID SEARCH OR OR HEADER Message-ID "), id, .text(" HEADER References "), id,
                                            .text(" HEADER In-Reply-To "), id]
            let uids: [Int] = try await serial.run {
                _ = try await select(folder)
                let result = try await connection.run(query)
                var uids: [Int] = []
                for case .data(_, "SEARCH", let values) in result.data { uids += values.compactMap(\.number) }
                return uids
            }
            for summary in try await summaries(uids: Array(uids.suffix(50)), folder: folder) { found.append((folder, summary)) }
        }
        return found
    }

    /// STATUS of a folder: (messages, unseen, uidnext), without selecting it.
    func status(_ folder: String) async throws -> (messages: Int, unseen: Int, uidNext: Int) {
        try await serial.run {
            let result = try await connection.run([.text("STATUS "), IMAPSyntax.mailbox(folder), .text(" (MESSAGES UNSEEN UIDNEXT)")])
            var out = (messages: 0, unseen: 0, uidNext: 0)
            for case .data(_, "STATUS", let values) in result.data {
                guard values.count >= 2, let items = values[1].list else { continue }
                var i = 0
                while i + 1 < items.count {
                    let n = items[i + 1].number ?? 0
                    switch items[i].text?.uppercased() {
                    case "MESSAGES": out.messages = n
                    case "UNSEEN": out.unseen = n
                    case "UIDNEXT": out.uidNext = n
                    default: break
                    }
                    i += 2
                }
            }
            return out
        }
    }

    /// The folder with a special use (`drafts`, `sent`, `trash`, `junk`, `archive`), if any.
    func specialFolder(_ use: String) async throws -> String? {
        try await folders().first { $0.specialUse == use }?.name
    }

    static func uidSet(_ uids: [Int]) -> String {
        uids.sorted().map(String.init).joined(separator: ",")
    }
}
