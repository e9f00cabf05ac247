import Foundation
import PluginAPI

/// Selected state: FETCH, STORE, SEARCH, COPY/MOVE, EXPUNGE (and their UID forms).
extension IMAPSession {
    /// The messages a command names, or the BAD it deserves.
    func resolve(_ set: IMAPSequenceSet, byUID: Bool, in view: MailboxView) -> [(seq: UInt32, uid: UInt32)]? {
        if set.isSavedResult { return view.resolve(uids: savedSearch ?? []) }
        if byUID { return view.resolve(uidSet: set) }
        // RFC 3501 §9: a sequence number beyond the mailbox is invalid (as is `*` in an empty one).
        if set.exceeds(UInt32(view.count)) || (view.count == 0 && set.mentionsLargest) { return nil }
        return view.resolve(sequenceSet: set)
    }

    /// Index data of the given messages, by UID (gone ones missing), one store call per run.
    func storedMessages(_ resolved: [(seq: UInt32, uid: UInt32)], in mailbox: String) async throws -> [UInt32: StoredMessage] {
        guard let user else { return [:] }
        var out: [UInt32: StoredMessage] = [:]
        for range in MailboxView.uidRanges(resolved) {
            for m in try await store.messages(user: user, mailbox: mailbox, uids: range) { out[m.uid] = m }
        }
        return out
    }

    // MARK: - FETCH

    /// A FETCH reads bodies ahead at most this many messages, or this many bytes, at a time.
    static let fetchBatchMessages = 256
    static let fetchBatchBytes = 4 << 20

    func fetch(_ tag: String, _ command: IMAPFetchCommand) async -> IMAPStatusResponse {
        guard var sel = selection, let user else { return .tagged(tag, .bad, "No mailbox selected.") }
        guard let resolved = resolve(command.set, byUID: command.byUID, in: sel.view) else {
            return .tagged(tag, .bad, "Error in IMAP command FETCH: Invalid messageset")
        }
        if command.vanished && !qresync { return .tagged(tag, .bad, "VANISHED requires QRESYNC to be enabled.") }
        if command.changedSince != nil || command.attributes.contains(.modSeq) { condStore = true }
        let attributes = command.attributes
        do {
            var stored = try await storedMessages(resolved, in: sel.name)
            if command.vanished {
                // RFC 7162 §3.2.6: UIDs of the set that no longer exist, before the FETCHes.
                let asked = command.set.resolved(largest: sel.view.uidNext > 1 ? sel.view.uidNext - 1 : 0)
                var present: [UInt32] = []
                for range in asked { present += try await store.messages(user: user, mailbox: sel.name, uids: range).map(\.uid) }
                if let set = IMAPSequenceSet.from(ranges: MailboxView.missing(asked, present: present)) {
                    send(.data(.vanished(earlier: true, set)))
                }
            }
            // Fetching a body without PEEK sets \Seen where the session may (RFC 3501 §6.4.5).
            var seenNow = Set<UInt32>()
            if attributes.contains(where: \.setsSeen) && !sel.readOnly && sel.rights.contains("s") {
                let unseen = resolved.map(\.uid).filter { uid in
                    guard let m = stored[uid] else { return false }
                    if let since = command.changedSince, m.modseq <= since { return false }
                    return !m.flags.contains { $0.lowercased() == "\\seen" }
                }
                if !unseen.isEmpty {
                    let changed = try await store.setFlags(user: user, mailbox: sel.name, uids: unseen, flags: ["\\Seen"], mode: .add)
                    for (uid, modseq) in changed {
                        stored[uid]?.flags.append("\\Seen")
                        stored[uid]?.modseq = modseq
                        seenNow.insert(uid)
                    }
                }
            }
            var missing = false
            // Bodies are read ahead in batches (one store call each, bounded in bytes) rather
            // than one store call per message.
            let needsContent = attributes.contains(where: \.needsContent)
            var readAhead: [UInt32: [UInt8]] = [:]
            var readAheadEnd = 0
            for (index, (seq, uid)) in resolved.enumerated() {
                if needsContent && index >= readAheadEnd {
                    var batch: [UInt32] = []
                    var bytes = 0
                    readAheadEnd = index
                    while readAheadEnd < resolved.count && batch.count < Self.fetchBatchMessages
                        && (batch.isEmpty || bytes < Self.fetchBatchBytes) {
                        let next = resolved[readAheadEnd].uid
                        if let meta = stored[next], !sel.view.isVanished(next) {
                            batch.append(next)
                            bytes += meta.size
                        }
                        readAheadEnd += 1
                    }
                    readAhead = batch.isEmpty ? [:] : try await store.contents(user: user, mailbox: sel.name, uids: batch)
                }
                guard let meta = stored[uid], !sel.view.isVanished(uid) else {
                    // A UID FETCH of a UID that is gone answers nothing for it (the EXPUNGE
                    // follows with this answer); by sequence number the client named a message
                    // it still sees, so it hears why nothing came (RFC 5530 EXPUNGEISSUED).
                    if !command.byUID { missing = true }
                    continue
                }
                if let since = command.changedSince, meta.modseq <= since { continue }
                var message: ServedMessage?
                func served() async throws -> ServedMessage {
                    if let message { return message }
                    let bytes: [UInt8]
                    if let read = readAhead.removeValue(forKey: uid) {
                        bytes = read
                    } else {
                        bytes = try await store.content(user: user, mailbox: sel.name, uid: uid)
                    }
                    let m = ServedMessage(stored: bytes)
                    message = m
                    return m
                }
                var items: [IMAPFetchResponseItem] = []
                var toldFlags = false
                if command.byUID && !attributes.contains(.uid) { items.append(.uid(uid)) }
                let flags = MailboxView.ordered(meta.flags, recent: sel.view.recent.contains(uid))
                for attribute in attributes {
                    switch attribute {
                    case .uid: items.append(.uid(uid))
                    case .flags:
                        items.append(.flags(flags.map(IMAPFlag.init)))
                        toldFlags = true
                    case .internalDate: items.append(.internalDate(IMAPDateTime(secondsSince1970: meta.internalDate)))
                    case .modSeq: items.append(.modSeq(meta.modseq))
                    case .rfc822Size: items.append(.rfc822Size(UInt64(try await served().bytes.count)))
                    case .envelope:
                        var m = try await served()
                        items.append(.envelope(raw: m.structure().root.envelope.imapString))
                        message = m
                    case .bodyStructure, .bodyStructureBasic:
                        var m = try await served()
                        let root = m.structure().root
                        items.append(attribute == .bodyStructure ? .bodyStructure(raw: root.imapBodyStructure) : .bodyStructureBasic(raw: root.imapBody))
                        message = m
                    case .rfc822:
                        items.append(.rfc822(try await served().bytes))
                    case .rfc822Header:
                        var m = try await served()
                        items.append(.rfc822Header(BodySections.extract(IMAPBodySection(part: [], .header), from: &m)))
                        message = m
                    case .rfc822Text:
                        var m = try await served()
                        items.append(.rfc822Text(BodySections.extract(IMAPBodySection(part: [], .text), from: &m)))
                        message = m
                    case .body(let section, let partial, _):
                        var m = try await served()
                        let data = BodySections.extract(section, from: &m).map { BodySections.partial($0, partial) }
                        items.append(.body(section, origin: partial?.origin, data))
                        message = m
                    case .binary(let part, let partial, _):
                        var m = try await served()
                        guard let decoded = Self.binary(part, of: &m) else {
                            return .tagged(tag, .no, .unknownCTE, "Unknown Content-Transfer-Encoding")
                        }
                        items.append(.binary(part: part, origin: partial?.origin, decoded.map { BodySections.partial($0, partial) }))
                        message = m
                    case .binarySize(let part):
                        var m = try await served()
                        guard let decoded = Self.binary(part, of: &m) else {
                            return .tagged(tag, .no, .unknownCTE, "Unknown Content-Transfer-Encoding")
                        }
                        items.append(.binarySize(part: part, UInt64(decoded?.count ?? 0)))
                        message = m
                    }
                }
                if seenNow.contains(uid) && !toldFlags {
                    items.append(.flags(flags.map(IMAPFlag.init)))
                    toldFlags = true
                }
                if (command.changedSince != nil || (condStore && seenNow.contains(uid))) && !attributes.contains(.modSeq) {
                    items.append(.modSeq(meta.modseq))
                }
                if toldFlags { sel.view.record(uid: uid, flags: meta.flags, modseq: meta.modseq) }
                send(.data(.fetch(seq, items)))
                await flushAndWait()
            }
            selection = sel
            if missing {
                return .tagged(tag, .no, .expungeIssued, "Some messages were expunged by another session.")
            }
            return .tagged(tag, .ok, "Fetch completed.")
        } catch StorageError.expunged {
            selection = sel
            return .tagged(tag, .no, .expungeIssued, "Some messages were expunged by another session.")
        } catch {
            selection = sel
            return failure(tag, error)
        }
    }

    /// BINARY[part] (RFC 3516): the part's body with its transfer encoding undone. Nil when the
    /// encoding is unknown; `.some(nil)` when the part does not exist (answered as NIL).
    static func binary(_ path: [UInt32], of message: inout ServedMessage) -> [UInt8]?? {
        let root = message.structure().root
        guard let part = path.isEmpty ? root : BodySections.resolve(path, in: root) else { return .some(nil) }
        let body = BodySections.body(of: part, in: message.bytes)
        switch part.contentTransferEncoding?.lowercased() {
        case nil, "7bit", "8bit", "binary": return .some(body)
        case "base64": return .some(Base64Decoder.decode(body))
        case "quoted-printable": return .some(QuotedPrintableDecoder.decode(body))
        default: return nil
        }
    }

    // MARK: - STORE

    func store(_ tag: String, _ command: IMAPStoreCommand) async -> IMAPStatusResponse {
        guard var sel = selection, let user else { return .tagged(tag, .bad, "No mailbox selected.") }
        guard let resolved = resolve(command.set, byUID: command.byUID, in: sel.view) else {
            return .tagged(tag, .bad, "Error in IMAP command STORE: Invalid messageset")
        }
        guard !sel.readOnly else { return .tagged(tag, .no, "Mailbox is read-only.") }
        if command.unchangedSince != nil { condStore = true }
        do {
            var stored = try await storedMessages(resolved, in: sel.name)
            // UNCHANGEDSINCE (RFC 7162 §3.1.3): messages changed after it are left alone and
            // named in MODIFIED.
            var modified: [UInt32] = []
            var targets: [UInt32] = []
            for (seq, uid) in resolved {
                guard let m = stored[uid], !sel.view.isVanished(uid) else { continue }
                if let limit = command.unchangedSince, m.modseq > limit {
                    modified.append(command.byUID ? uid : seq)
                } else {
                    targets.append(uid)
                }
            }
            // Flags the user may not change are ignored rather than failing the whole command
            // (RFC 4314 §4); a replace keeps them as they are (the store does that).
            let flags = command.flags.map(\.name).filter { command.operation == .replace || sel.rights.mayStore($0) }
            var changed: [UInt32: UInt64] = [:]
            if !targets.isEmpty && (!flags.isEmpty || command.operation == .replace) {
                let mode: FlagChange = command.operation == .add ? .add : command.operation == .remove ? .remove : .replace
                changed = try await store.setFlags(user: user, mailbox: sel.name, uids: targets, flags: flags, mode: mode)
                if !changed.isEmpty {
                    stored = try await storedMessages(resolved.filter { changed[$0.uid] != nil }, in: sel.name).merging(stored) { new, _ in new }
                }
            }
            let targetSet = Set(targets)
            for (seq, uid) in resolved {
                guard targetSet.contains(uid), let m = stored[uid] else { continue }
                sel.view.record(uid: uid, flags: m.flags, modseq: m.modseq)
                // .SILENT: no FETCH, except that a CONDSTORE client still learns new MODSEQs.
                if command.silent && !(condStore && changed[uid] != nil) { continue }
                var items: [IMAPFetchResponseItem] = []
                if command.byUID || qresync { items.append(.uid(uid)) }
                if !command.silent { items.append(.flags(sel.view.flags(m.flags, of: uid).map(IMAPFlag.init))) }
                if condStore { items.append(.modSeq(m.modseq)) }
                send(.data(.fetch(seq, items)))
            }
            selection = sel
            if let set = IMAPSequenceSet(sorting: modified) {
                return .tagged(tag, .ok, .modified(set), "Conditional store failed.")
            }
            return .tagged(tag, .ok, "Store completed.")
        } catch {
            selection = sel
            return failure(tag, error)
        }
    }

    // MARK: - COPY / MOVE

    func copy(_ tag: String, _ set: IMAPSequenceSet, _ rawTarget: String, byUID: Bool, move: Bool) async -> IMAPStatusResponse {
        guard var sel = selection, let user else { return .tagged(tag, .bad, "No mailbox selected.") }
        let name = move ? "MOVE" : "COPY"
        guard let resolved = resolve(set, byUID: byUID, in: sel.view) else {
            return .tagged(tag, .bad, "Error in IMAP command \(name): Invalid messageset")
        }
        if move && sel.readOnly { return .tagged(tag, .no, "Mailbox is read-only.") }
        let target = Self.canonical(rawTarget)
        do {
            let stored = try await storedMessages(resolved, in: sel.name)
            let sources = resolved.map(\.uid).filter { stored[$0] != nil && !sel.view.isVanished($0) }
            guard !sources.isEmpty else {
                if resolved.isEmpty { return .tagged(tag, .ok, "No messages found.") }
                return .tagged(tag, .no, .expungeIssued, "Some messages were expunged by another session.")
            }
            let created = try await store.copy(user: user, from: sel.name, uids: sources, to: target, move: move)
            var code: IMAPResponseCode?
            if created.count == sources.count, let validity = try? await store.changeStamp(user: user, mailbox: target).uidValidity,
               let from = IMAPSequenceSet(numbers: sources), let to = IMAPSequenceSet(numbers: created) {
                code = .copyUID(uidValidity: validity, source: from, destination: to)
            }
            guard move else {
                return code.map { .tagged(tag, .ok, $0, "Copy completed.") } ?? .tagged(tag, .ok, "Copy completed.")
            }
            // RFC 6851 §4.3: COPYUID in an untagged OK, then the expunges, then the tagged OK.
            if let code { send(.status(.untagged(.ok, code, "Moved UIDs."))) }
            let numbers = sel.view.remove(expunged: sources)
            if qresync {
                if let set = IMAPSequenceSet(sorting: sources) { send(.data(.vanished(earlier: false, set))) }
            } else {
                for n in numbers { send(.data(.expunge(n))) }
            }
            selection = sel
            return .tagged(tag, .ok, "Move completed.")
        } catch {
            return failure(tag, error, tryCreate: target)
        }
    }

    // MARK: - EXPUNGE

    func expunge(_ tag: String, uids set: IMAPSequenceSet?) async -> IMAPStatusResponse {
        guard var sel = selection, let user else { return .tagged(tag, .bad, "No mailbox selected.") }
        guard !sel.readOnly else { return .tagged(tag, .no, "Mailbox is read-only.") }
        var wanted: [UInt32]?
        if let set {
            wanted = (resolve(set, byUID: true, in: sel.view) ?? []).map(\.uid)
            if wanted?.isEmpty == true { return .tagged(tag, .ok, "Expunge completed.") }
        }
        do {
            let gone = try await store.expunge(user: user, mailbox: sel.name, uids: wanted)
            let known = gone.filter { sel.view.sequenceNumber(of: $0) != nil }
            let numbers = sel.view.remove(expunged: known)
            if qresync {
                if let set = IMAPSequenceSet(sorting: known) { send(.data(.vanished(earlier: false, set))) }
            } else {
                for n in numbers { send(.data(.expunge(n))) }
            }
            selection = sel
            return .tagged(tag, .ok, "Expunge completed.")
        } catch {
            return failure(tag, error)
        }
    }

    // MARK: - SEARCH

    func search(_ tag: String, _ command: IMAPSearchCommand) async -> IMAPStatusResponse {
        guard let sel = selection, let user else { return .tagged(tag, .bad, "No mailbox selected.") }
        let saving = command.returnOptions?.contains(.save) == true
        let previous = savedSearch
        // RFC 5182 §2.1: a failed SEARCH ... RETURN (SAVE) leaves `$` empty.
        if saving { savedSearch = [] }
        let query: SearchQuery
        do {
            query = try SearchTranslator(view: sel.view, savedResult: previous).translate(command)
        } catch SearchTranslationError.badCharset {
            return .tagged(tag, .no, .badCharset(SearchTranslator.charsets), "Unsupported charset")
        } catch {
            return .tagged(tag, .bad, "Error in IMAP command SEARCH: Invalid messageset")
        }
        let withModSeq = SearchTranslator.mentionsModSeq(command.key)
        if withModSeq { condStore = true }
        do {
            let found = try await store.search(user: user, mailbox: sel.name, query: query)
            let matches = sel.view.resolve(uids: found).filter { !sel.view.isVanished($0.uid) }
            var highest: UInt64?
            if withModSeq && !matches.isEmpty {
                highest = try await storedMessages(matches, in: sel.name).values.map(\.modseq).max()
            }
            let numbers = matches.map { command.byUID ? $0.uid : $0.seq }
            if saving { savedSearch = matches.map(\.uid) }
            guard let options = command.returnOptions else {
                send(.data(.search(numbers, modSeq: highest)))
                return .tagged(tag, .ok, "Search completed.")
            }
            // RFC 5182 §2.4: SAVE alone answers nothing but the tagged OK.
            if options == [.save] { return .tagged(tag, .ok, "Search completed.") }
            var result = IMAPESearchResponse(tag: tag, byUID: command.byUID)
            if !numbers.isEmpty {
                if options.contains(.min) { result.min = numbers.first }
                if options.contains(.max) { result.max = numbers.last }
                if options.contains(.all) { result.all = IMAPSequenceSet(sorting: numbers) }
                result.modSeq = highest
            }
            if options.contains(.count) { result.count = UInt32(numbers.count) }
            send(.data(.esearch(result)))
            return .tagged(tag, .ok, "Search completed.")
        } catch {
            return failure(tag, error)
        }
    }
}
