import Foundation
import PluginAPI

/// One round of a move, mailbox by mailbox (UserMove.swift says what a move is).
extension UserMove {
    /// What the rounds of one move remember.
    ///
    /// Before the switch-over each target mailbox mirrors its source (same UIDs; what the source
    /// no longer has goes). After it, this store receives the account's mail and gives it UIDs of
    /// its own, so the source is no longer the mirror's model: messages the source had at the
    /// last copy (below `watermarks`) keep their UIDs and follow the source's flags and
    /// expunges; messages that reached the source later are appended here with new UIDs, once
    /// (`adopted` maps their source UIDs to those); messages only this store has stay.
    struct MoveState {
        var switched = false
        /// Per mailbox, the source's UIDNEXT as of the last copy before the switch.
        var watermarks: [String: UInt32] = [:]
        /// Per mailbox, source UID -> UID here, for messages added after the switch.
        var adopted: [String: [UInt32: UInt32]] = [:]
    }

    /// A mailbox as the source lists it, under this store's name for it (`/` as the delimiter).
    struct SourceMailbox: Equatable {
        var sourceName: String
        var name: String
        var specialUse: String?
    }

    /// One message of a source listing.
    struct SourceMessage {
        var flags: [String]
        var modseq: UInt64?
        var size: Int?
    }

    /// One round over every mailbox of the source. `user` is the account here.
    static func round(_ connection: IMAPClientConnection, user: String, into store: any StorageBackend & MailboxReplicaStore,
                      state: inout MoveState) async throws -> Round {
        var round = Round()
        let sourceMailboxes = try await list(connection)
        round.mailboxes = sourceMailboxes.count
        let condstore = await connection.capabilities.contains("CONDSTORE")
        for mailbox in sourceMailboxes {
            try await sync(mailbox, connection, condstore: condstore, user: user, store: store, state: &state, round: &round)
        }
        // Before the switch, mailboxes gone at the source go here too, children before parents;
        // after it, a mailbox only this store has may be one its user just made.
        guard !state.switched else { return round }
        let wanted = Set(sourceMailboxes.map(\.name))
        let local = try await store.mailboxes(user: user).filter { $0.owner == nil }.map(\.name)
        for name in local.sorted(by: { $0.count > $1.count }) where name != "INBOX" && !wanted.contains(name) {
            do {
                try await store.deleteMailbox(user: user, name: name)
                round.deleted.append(name)
            } catch StorageError.hasChildren {
                continue   // a parent of a mailbox the source has: kept
            }
        }
        return round
    }

    static func list(_ connection: IMAPClientConnection) async throws -> [SourceMailbox] {
        let result = try await connection.run([.text("LIST \"\" \"*\"")])
        var out: [SourceMailbox] = []
        for case .data(_, let name, let values) in result.data where name.uppercased() == "LIST" && values.count >= 3 {
            let attributes = (values[0].list ?? []).compactMap { $0.text?.lowercased() }
            guard !attributes.contains("\\noselect"), !attributes.contains("\\nonexistent"),
                  let raw = values[2].text else { continue }
            let delimiter = values[1].text.flatMap(\.first)
            let decoded = ModifiedUTF7.decode(raw) ?? raw
            var local = decoded.uppercased() == "INBOX" ? "INBOX" : decoded
            if let delimiter, delimiter != MailboxNamespace.delimiter {
                local = String(local.map { $0 == delimiter ? MailboxNamespace.delimiter : $0 })
            }
            // Other users' mailboxes shared with this one are theirs to move.
            guard MailboxNamespace.splitShared(local) == nil else { continue }
            let specialUse = ["\\sent", "\\drafts", "\\trash", "\\junk", "\\archive", "\\all", "\\flagged"]
                .first { attributes.contains($0) }.map { "\\" + $0.dropFirst().prefix(1).uppercased() + $0.dropFirst(2) }
            out.append(SourceMailbox(sourceName: raw, name: local, specialUse: specialUse))
        }
        return out
    }

    /// The state of one source mailbox: EXAMINE's numbers and every message's UID, flags,
    /// MODSEQ and size.
    struct SourceState {
        var uidValidity: UInt32
        var uidNext: UInt32
        var highestModseq: UInt64?
        var messages: [UInt32: SourceMessage]
    }

    static func examine(_ mailbox: SourceMailbox, _ connection: IMAPClientConnection, condstore: Bool) async throws -> SourceState {
        let result = try await connection.run([.text("EXAMINE " + quoted(mailbox.sourceName) + (condstore ? " (CONDSTORE)" : ""))])
        var state = SourceState(uidValidity: 0, uidNext: 0, highestModseq: nil, messages: [:])
        var exists = 0
        for response in result.data {
            switch response {
            case .untaggedStatus(.ok, let code?, _):
                let words = code.split(separator: " ")
                guard words.count == 2 else { continue }
                switch words[0].uppercased() {
                case "UIDVALIDITY": state.uidValidity = UInt32(words[1]) ?? 0
                case "UIDNEXT": state.uidNext = UInt32(words[1]) ?? 0
                case "HIGHESTMODSEQ": state.highestModseq = UInt64(words[1])
                default: break
                }
            case .data(let n?, let name, _) where name.uppercased() == "EXISTS":
                exists = n
            default: break
            }
        }
        guard state.uidValidity != 0 else { throw IMAPClientError.protocolError("\(mailbox.sourceName): no UIDVALIDITY from the source") }
        guard exists > 0 else { return state }
        let listing = try await connection.run([.text("UID FETCH 1:* (UID FLAGS RFC822.SIZE\(condstore ? " MODSEQ" : ""))")])
        for message in fetched(listing) {
            guard let uid = message.uid else { continue }
            state.messages[uid] = SourceMessage(flags: message.flags, modseq: message.modseq, size: message.size)
        }
        if state.uidNext == 0 { state.uidNext = (state.messages.keys.max() ?? 0) + 1 }
        return state
    }

    static func sync(_ mailbox: SourceMailbox, _ connection: IMAPClientConnection, condstore: Bool, user: String,
                     store: any StorageBackend & MailboxReplicaStore, state: inout MoveState, round: inout Round) async throws {
        let source = try await examine(mailbox, connection, condstore: condstore)
        var here: MailboxStatus?
        do { here = try await store.changeStamp(user: user, mailbox: mailbox.name) } catch StorageError.noSuchMailbox {}
        var local: [UInt32: StoredMessage] = [:]
        if let here, here.uidValidity == source.uidValidity {
            for m in try await store.messages(user: user, mailbox: mailbox.name, uids: 1...UInt32.max) { local[m.uid] = m }
        }
        if state.switched, let watermark = state.watermarks[mailbox.name], here?.uidValidity == source.uidValidity {
            try await adopt(mailbox, source, local: local, watermark: watermark, connection, condstore: condstore, user: user, store: store,
                            state: &state, round: &round)
            return
        }
        let missing = source.messages.keys.filter { local[$0] == nil }.sorted()
        // A message the source has below what this copy already holds cannot get its UID back
        // (UIDs only grow), and one of another size under the same UID is another message (a
        // move back after new mail on both sides): start the mailbox again from empty.
        let mustReset = here == nil || here!.uidValidity != source.uidValidity
            || (missing.first.map { $0 < here!.uidNext } ?? false)
            || source.messages.contains { uid, m in local[uid].map { mine in m.size != nil && m.size != mine.size } ?? false }
        if mustReset {
            try await store.resetReplica(user: user, mailbox: mailbox.name, uidValidity: source.uidValidity, specialUse: mailbox.specialUse)
            round.reset.append(mailbox.name)
            local = [:]
        }
        let toAdd = mustReset ? source.messages.keys.sorted() : missing
        let removed = local.keys.filter { source.messages[$0] == nil }.sorted()
        let flagChanges = changedFlags(source.messages, local: local)
        if !removed.isEmpty || !flagChanges.isEmpty || toAdd.isEmpty {
            try await store.applyReplica(user: user, mailbox: mailbox.name,
                                         ReplicaChanges(flags: flagChanges, remove: removed, uidNext: source.uidNext,
                                                        highestModseq: source.highestModseq))
        }
        round.removed += removed.count
        round.flagsChanged += flagChanges.count
        try await copy(toAdd, from: mailbox, connection, condstore: condstore, round: &round) { messages in
            try await store.applyReplica(user: user, mailbox: mailbox.name,
                                         ReplicaChanges(add: messages, uidNext: source.uidNext, highestModseq: source.highestModseq))
        }
        if !state.switched { state.watermarks[mailbox.name] = source.uidNext }
    }

    /// After the switch: the source's flags and expunges for what was copied, its late mail
    /// appended with new UIDs (once), this store's own mail left alone.
    static func adopt(_ mailbox: SourceMailbox, _ source: SourceState, local: [UInt32: StoredMessage], watermark: UInt32,
                      _ connection: IMAPClientConnection, condstore: Bool, user: String,
                      store: any StorageBackend & MailboxReplicaStore, state: inout MoveState, round: inout Round) async throws {
        let adopted = state.adopted[mailbox.name, default: [:]]
        // Copied before the switch (same UIDs), and late mail adopted earlier (mapped UIDs).
        var followed: [UInt32: SourceMessage] = [:]
        for (uid, m) in source.messages where uid < watermark { followed[uid] = m }
        for (uid, m) in source.messages { if let mine = adopted[uid] { followed[mine] = m } }
        // Expunged at the source since: copied ones under their UID, adopted ones under theirs here.
        var gone = local.keys.filter { $0 < watermark && source.messages[$0] == nil }
        for (theirs, mine) in adopted where source.messages[theirs] == nil && local[mine] != nil { gone.append(mine) }
        gone.sort()
        // A MODSEQ from the source would mean nothing beside this store's own now: flags only.
        let flagChanges = changedFlags(followed, local: local, modseqs: false).map { ReplicatedFlags(uid: $0.uid, flags: $0.flags, modseq: nil) }
        if !gone.isEmpty || !flagChanges.isEmpty {
            let status = try await store.changeStamp(user: user, mailbox: mailbox.name)
            try await store.applyReplica(user: user, mailbox: mailbox.name,
                                         ReplicaChanges(flags: flagChanges, remove: gone, uidNext: status.uidNext, highestModseq: nil))
        }
        round.removed += gone.count
        round.flagsChanged += flagChanges.count
        let late = source.messages.keys.filter { $0 >= watermark && adopted[$0] == nil }.sorted()
        var added: [UInt32: UInt32] = [:]
        try await copy(late, from: mailbox, connection, condstore: false, round: &round) { messages in
            for m in messages {
                added[m.uid] = try await store.append(user: user, mailbox: mailbox.name, message: m.content, flags: m.flags,
                                                      internalDate: m.internalDate)
            }
        }
        state.adopted[mailbox.name, default: [:]].merge(added) { a, _ in a }
    }

    /// Messages whose flags (or, with CONDSTORE and `modseqs`, MODSEQ) differ here.
    static func changedFlags(_ theirs: [UInt32: SourceMessage], local: [UInt32: StoredMessage], modseqs: Bool = true) -> [ReplicatedFlags] {
        var out: [ReplicatedFlags] = []
        for (uid, m) in theirs {
            guard let mine = local[uid] else { continue }
            if Set(m.flags.map { $0.lowercased() }) != Set(mine.flags.map { $0.lowercased() }) || (modseqs && m.modseq != nil && m.modseq != mine.modseq) {
                out.append(ReplicatedFlags(uid: uid, flags: m.flags, modseq: m.modseq))
            }
        }
        return out.sorted { $0.uid < $1.uid }
    }

    /// Fetches the messages `uids` from the selected source mailbox, `fetchBatch` at a time, and
    /// hands each batch (UID order) to `write`.
    static func copy(_ uids: [UInt32], from mailbox: SourceMailbox, _ connection: IMAPClientConnection, condstore: Bool,
                     round: inout Round, write: ([ReplicatedMessage]) async throws -> Void) async throws {
        for start in stride(from: 0, to: uids.count, by: fetchBatch) {
            let batch = Array(uids[start..<min(start + fetchBatch, uids.count)])
            let result = try await connection.run([.text("UID FETCH \(uidSet(batch)) (UID FLAGS INTERNALDATE\(condstore ? " MODSEQ" : "") BODY.PEEK[])")])
            // Expunged at the source since the listing: left for the next round to see.
            let messages = fetched(result).compactMap { m -> ReplicatedMessage? in
                guard let uid = m.uid, let content = m.body else { return nil }
                return ReplicatedMessage(uid: uid, flags: m.flags, modseq: m.modseq,
                                         internalDate: m.internalDate ?? Int64(Date().timeIntervalSince1970), content: content)
            }.sorted { $0.uid < $1.uid }
            try await write(messages)
            round.added += messages.count
            round.bytes += messages.reduce(0) { $0 + $1.content.count }
        }
    }

    /// One FETCH response's items.
    struct FetchedMessage {
        var uid: UInt32?
        var flags: [String] = []
        var modseq: UInt64?
        var size: Int?
        var internalDate: Int64?
        var body: [UInt8]?
    }

    static func fetched(_ result: IMAPCommandResult) -> [FetchedMessage] {
        var out: [FetchedMessage] = []
        for case .data(_, let name, let values) in result.data where name.uppercased() == "FETCH" {
            guard let items = values.first?.list else { continue }
            var message = FetchedMessage()
            var i = 0
            while i + 1 < items.count {
                let key = items[i].text?.uppercased() ?? "", value = items[i + 1]
                switch key {
                case "UID": message.uid = value.number.flatMap { UInt32(exactly: $0) }
                // \Recent belongs to the session that saw it (RFC 3501 §2.3.2): never copied.
                case "FLAGS": message.flags = (value.list ?? []).compactMap(\.text).filter { $0.lowercased() != "\\recent" }
                case "MODSEQ": message.modseq = value.list?.first?.text.flatMap { UInt64($0) }
                case "RFC822.SIZE": message.size = value.number
                case "INTERNALDATE": message.internalDate = value.bytes.flatMap { IMAPDateTime.parse($0) }?.secondsSince1970
                case "BODY[]": message.body = value.bytes
                default: break
                }
                i += 2
            }
            out.append(message)
        }
        return out
    }

    /// `1:3,7,9:10` for ascending UIDs.
    static func uidSet(_ uids: [UInt32]) -> String {
        var parts: [String] = []
        var i = 0
        while i < uids.count {
            var j = i
            while j + 1 < uids.count && uids[j + 1] == uids[j] + 1 { j += 1 }
            parts.append(i == j ? "\(uids[i])" : "\(uids[i]):\(uids[j])")
            i = j + 1
        }
        return parts.joined(separator: ",")
    }

    /// An IMAP quoted string (the name as the source wrote it: already modified UTF-7).
    static func quoted(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
