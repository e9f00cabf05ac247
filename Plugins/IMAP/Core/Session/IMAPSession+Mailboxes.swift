import Foundation
import PluginAPI

/// Authenticated state: SELECT/EXAMINE, ENABLE, mailbox management, LIST/LSUB, STATUS, APPEND,
/// IDLE, QUOTA and ACL commands.
extension IMAPSession {
    // MARK: - SELECT / EXAMINE

    func select(_ tag: String, _ rawName: String, _ parameters: IMAPSelectParameters, examine: Bool) async {
        let name = Self.canonical(rawName)
        if parameters.qresync != nil && !qresync {
            return send(.status(.tagged(tag, .bad, "QRESYNC has not been enabled.")))
        }
        if let previous = selection {
            previous.subscription?.cancel()
            selection = nil
            state = .authenticated
            // RFC 7162 §3.2.11: tells a QRESYNC client that responses from here on are the new mailbox's.
            if qresync { send(.status(.untagged(.ok, .closed, "Previous mailbox closed."))) }
        }
        if parameters.condStore { condStore = true }
        guard let user else { return }
        do {
            let rights = try await store.myRights(user: user, mailbox: name)
            // The UIDs, first unseen and keywords, not every message's flags (QRESYNC reads the
            // changed ones on its own).
            let opened = try await store.selection(user: user, mailbox: name)
            // Without any right to change state the mailbox is read-only (RFC 4314 §4).
            let readOnly = examine || anonymousLogin || !"stwe".contains(where: { rights.contains($0) })
            let (owner, ownName) = Self.owner(of: name, user: user)
            let mark = services.recent.mark(owner: owner, mailbox: ownName, uidValidity: opened.uidValidity,
                                            claimUpTo: readOnly ? nil : opened.uidNext)
            // UIDs ascend: the recent ones are a suffix.
            let firstRecent = (opened.uids.lastIndex { $0 < mark } ?? -1) + 1
            let view = MailboxView(opened, recent: Set(opened.uids[firstRecent...]))
            var sel = Selection(name: name, readOnly: readOnly, rights: rights, owner: owner, ownName: ownName, view: view, subscription: nil)
            send(.data(.flags(view.mailboxFlags)))
            send(.status(.untagged(.ok, .permanentFlags(sel.permanentFlags), "Flags permitted.")))
            send(.data(.exists(UInt32(view.count))))
            send(.data(.recent(UInt32(view.recent.count))))
            if let uid = opened.firstUnseen, let first = view.sequenceNumber(of: uid) {
                send(.status(.untagged(.ok, .unseen(first), "First unseen.")))
            }
            send(.status(.untagged(.ok, .uidValidity(view.uidValidity), "UIDs valid")))
            send(.status(.untagged(.ok, .uidNext(view.uidNext), "Predicted next UID")))
            send(.status(.untagged(.ok, .highestModSeq(view.highestModseq), "Highest")))
            if let q = parameters.qresync, q.uidValidity == view.uidValidity {
                try await resynchronize(q, view, name)
            }
            sel.subscription = services.notifier?.subscribe(user: user, mailbox: name) { [weak self] _ in
                self?.postMailboxChange()
            }
            selection = sel
            state = .selected
            send(.status(.tagged(tag, .ok, readOnly ? .readOnly : .readWrite, examine ? "Examine completed." : "Select completed.")))
        } catch {
            send(.status(failure(tag, error)))
        }
    }

    /// QRESYNC (RFC 7162 §3.2.5): what vanished among the UIDs the client knows, and the messages
    /// changed since its MODSEQ. Expunges are not remembered with their MODSEQ, so VANISHED
    /// (EARLIER) names every known UID that is gone, however long ago (§3.2.5.1 allows it).
    private func resynchronize(_ q: IMAPQResyncParameters, _ view: MailboxView, _ mailbox: String) async throws {
        let top = view.uidNext > 1 ? view.uidNext - 1 : 0
        let known = (q.knownUIDs ?? IMAPSequenceSet([.init(.number(1), .largest)])).resolved(largest: top)
        let gone = MailboxView.missing(known, present: Array(view.uids))
        if let set = IMAPSequenceSet.from(ranges: gone) {
            send(.data(.vanished(earlier: true, set)))
        }
        guard let user else { return }
        // Only the messages changed since the client's MODSEQ, through the store's MODSEQ index.
        let changed = try await store.changes(user: user, mailbox: mailbox, since: q.modSeq)
        for m in changed.changed {
            guard let seq = view.sequenceNumber(of: m.uid) else { continue }
            send(.data(.fetch(seq, [.uid(m.uid), .flags(view.flags(m.flags, of: m.uid).map(IMAPFlag.init)), .modSeq(m.modseq)])))
        }
    }

    /// The owner's account and own name of a mailbox as `user` names it.
    static func owner(of name: String, user: String) -> (owner: String, ownName: String) {
        if let shared = MailboxNamespace.splitShared(name) { return (shared.owner, shared.mailbox) }
        return (user, name)
    }

    func closeMailbox(expunge: Bool) async {
        guard let sel = selection, let user else { return }
        // CLOSE expunges silently (RFC 3501 §6.4.2) where the session may; UNSELECT does not.
        if expunge && !sel.readOnly && sel.rights.contains("e") {
            _ = try? await store.expunge(user: user, mailbox: sel.name, uids: nil)
        }
        sel.subscription?.cancel()
        selection = nil
        state = .authenticated
    }

    // MARK: - ENABLE

    func enable(_ tag: String, _ names: [String]) -> IMAPStatusResponse {
        var enabled: [String] = []
        for name in names {
            switch name {
            case "CONDSTORE":
                if !condStore { condStore = true; enabled.append(name) }
            case "QRESYNC":
                // QRESYNC implies CONDSTORE (RFC 7162 §3.2.3).
                if !qresync { qresync = true; condStore = true; enabled.append(name) }
            case "UTF8=ACCEPT":
                if !utf8Accept {
                    utf8Accept = true
                    parser.options.utf8Accept = true
                    encoder.utf8Accept = true
                    enabled.append(name)
                }
            default:
                break
            }
        }
        send(.data(.enabled(enabled)))
        return .tagged(tag, .ok, "Enabled.")
    }

    // MARK: - Mailbox management

    /// Names the store would refuse for their shape, refused here with IMAP's code for it.
    static func validName(_ name: String) -> Bool {
        // `*` and `%` would make the name a LIST pattern (RFC 3501 §6.3.8).
        !name.isEmpty && !name.hasPrefix("/") && !name.contains("//") && !name.contains("*") && !name.contains("%")
            && !name.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }
    }

    func create(_ tag: String, _ rawName: String) async -> IMAPStatusResponse {
        guard let user else { return .tagged(tag, .no, "Not logged in.") }
        let name = Self.canonical(rawName)
        guard name != "INBOX" else { return .tagged(tag, .no, .alreadyExists, "Mailbox already exists") }
        guard Self.validName(name) else { return .tagged(tag, .no, .cannot, "Invalid mailbox name") }
        do {
            try await store.createMailbox(user: user, name: name)
            return .tagged(tag, .ok, "Create completed.")
        } catch {
            return failure(tag, error)
        }
    }

    func delete(_ tag: String, _ rawName: String) async -> IMAPStatusResponse {
        guard let user else { return .tagged(tag, .no, "Not logged in.") }
        let name = Self.canonical(rawName)
        guard name != "INBOX" else { return .tagged(tag, .no, .cannot, "INBOX can't be deleted.") }
        do {
            try await store.deleteMailbox(user: user, name: name)
            if let sel = selection, sel.name == name {
                sel.subscription?.cancel()
                selection = nil
                state = .authenticated
            }
            return .tagged(tag, .ok, "Delete completed.")
        } catch {
            return failure(tag, error)
        }
    }

    func rename(_ tag: String, _ rawFrom: String, _ rawTo: String) async -> IMAPStatusResponse {
        guard let user else { return .tagged(tag, .no, "Not logged in.") }
        let from = Self.canonical(rawFrom), to = Self.canonical(rawTo)
        guard Self.validName(to), to != "INBOX" else {
            return to == "INBOX" ? .tagged(tag, .no, .alreadyExists, "Mailbox already exists") : .tagged(tag, .no, .cannot, "Invalid mailbox name")
        }
        do {
            if from == "INBOX" {
                // RFC 3501 §6.3.5: renaming INBOX moves its messages to the new name and leaves
                // INBOX, empty, in place.
                try await store.createMailbox(user: user, name: to)
                let uids = try await store.messages(user: user, mailbox: "INBOX", uids: 1...UInt32.max).map(\.uid)
                if !uids.isEmpty { _ = try await store.copy(user: user, from: "INBOX", uids: uids, to: to, move: true) }
                return .tagged(tag, .ok, "Rename completed.")
            }
            try await store.renameMailbox(user: user, from: from, to: to)
            if var sel = selection, sel.name == from || sel.name.hasPrefix(from + "/") {
                // The selected mailbox moved with the rename: follow it under its new name.
                sel.subscription?.cancel()
                sel.name = to + sel.name.dropFirst(from.count)
                (sel.owner, sel.ownName) = Self.owner(of: sel.name, user: user)
                sel.subscription = services.notifier?.subscribe(user: user, mailbox: sel.name) { [weak self] _ in
                    self?.postMailboxChange()
                }
                selection = sel
            }
            return .tagged(tag, .ok, "Rename completed.")
        } catch {
            return failure(tag, error)
        }
    }

    func subscribe(_ tag: String, _ rawName: String, _ subscribed: Bool) async -> IMAPStatusResponse {
        guard let user else { return .tagged(tag, .no, "Not logged in.") }
        do {
            try await store.setSubscribed(user: user, mailbox: Self.canonical(rawName), subscribed: subscribed)
            return .tagged(tag, .ok, subscribed ? "Subscribe completed." : "Unsubscribe completed.")
        } catch {
            return failure(tag, error)
        }
    }

    // MARK: - LIST / LSUB

    func list(_ tag: String, _ command: IMAPListCommand) async -> IMAPStatusResponse {
        guard let user else { return .tagged(tag, .no, "Not logged in.") }
        // An empty pattern asks for the delimiter and the reference's root (RFC 3501 §6.3.8).
        if command.patterns.allSatisfy(\.isEmpty) {
            send(.data(.list(IMAPListResponse(attributes: ["\\Noselect"], delimiter: "/", name: ""))))
            return .tagged(tag, .ok, "List completed.")
        }
        do {
            let tree = MailboxTree(try await store.mailboxes(user: user))
            let selectSubscribed = command.selectionOptions.contains(.subscribed)
            let selectSpecialUse = command.selectionOptions.contains(.specialUse)
            let recursive = command.selectionOptions.contains(.recursiveMatch)
            let returnSubscribed = selectSubscribed || command.returnOptions.contains(.subscribed)
            let statusItems = command.returnOptions.compactMap { option -> [IMAPStatusAttribute]? in
                if case .status(let items) = option { return items }
                return nil
            }.first
            let subscriptions = returnSubscribed ? Set(try await store.subscriptions(user: user)) : []
            let patterns = command.patterns.map { MailboxPattern(reference: command.reference, pattern: $0) }
            func matches(_ name: String) -> Bool { patterns.contains { $0.matches(name) } }

            var lines: [(response: IMAPListResponse, selectable: Bool)] = []
            if selectSubscribed {
                // Subscribed names, existing or not; with RECURSIVEMATCH also the names above
                // subscribed ones, flagged with CHILDINFO (RFC 5258 §3.5).
                var names = tree.nodes.map(\.name).filter { subscriptions.contains($0) || (recursive && MailboxTree.hasDescendant($0, in: subscriptions)) }
                names += subscriptions.filter { tree.node($0) == nil }.sorted()
                for name in names where matches(name) {
                    let node = tree.node(name)
                    let subscribed = subscriptions.contains(name)
                    var attributes: [String] = []
                    if node == nil { attributes.append("\\NonExistent") } else if node?.exists == false { attributes.append("\\Noselect") }
                    if subscribed { attributes.append("\\Subscribed") }
                    if let node { attributes += Self.childAttributes(node) + node.specialUse }
                    let childInfo = recursive && MailboxTree.hasDescendant(name, in: subscriptions) ? ["SUBSCRIBED"] : nil
                    guard subscribed || childInfo != nil else { continue }
                    if selectSpecialUse && (node?.specialUse.isEmpty ?? true) { continue }
                    lines.append((IMAPListResponse(attributes: attributes, delimiter: "/", name: name, childInfo: childInfo), node?.exists == true))
                }
            } else {
                for node in tree.nodes where matches(node.name) {
                    if selectSpecialUse && node.specialUse.isEmpty { continue }
                    var attributes: [String] = node.exists ? [] : ["\\Noselect"]
                    attributes += Self.childAttributes(node)
                    if returnSubscribed && subscriptions.contains(node.name) { attributes.append("\\Subscribed") }
                    attributes += node.specialUse
                    lines.append((IMAPListResponse(attributes: attributes, delimiter: "/", name: node.name), node.exists))
                }
            }
            for line in lines {
                send(.data(.list(line.response)))
                if let items = statusItems, line.selectable {
                    // RFC 5819: a mailbox the user may not read is listed without STATUS.
                    if let values = try? await statusValues(line.response.name, items) {
                        send(.data(.status(mailbox: line.response.name, values)))
                    }
                }
            }
            return .tagged(tag, .ok, "List completed.")
        } catch {
            return failure(tag, error)
        }
    }

    static func childAttributes(_ node: MailboxTree.Node) -> [String] {
        [node.hasChildren ? "\\HasChildren" : "\\HasNoChildren"]
    }

    func lsub(_ tag: String, _ reference: String, _ pattern: String) async -> IMAPStatusResponse {
        guard let user else { return .tagged(tag, .no, "Not logged in.") }
        do {
            let subscriptions = try await store.subscriptions(user: user)
            let subscribed = Set(subscriptions)
            let matcher = MailboxPattern(reference: reference, pattern: pattern)
            var sent = Set<String>()
            for name in subscriptions.sorted(by: { a, b in a == "INBOX" ? b != "INBOX" : (b == "INBOX" ? false : a < b) }) {
                if matcher.matches(name) && sent.insert(name).inserted {
                    send(.data(.lsub(IMAPListResponse(attributes: [], delimiter: "/", name: name))))
                }
                // RFC 3501 §6.3.9: with `%` last, a level above a subscribed name that is not
                // itself subscribed is listed with \Noselect.
                guard pattern.hasSuffix("%") else { continue }
                var parts = name.split(separator: "/").map(String.init)
                while parts.count > 1 {
                    parts.removeLast()
                    let parent = parts.joined(separator: "/")
                    if !subscribed.contains(parent) && matcher.matches(parent) && sent.insert(parent).inserted {
                        send(.data(.lsub(IMAPListResponse(attributes: ["\\Noselect"], delimiter: "/", name: parent))))
                    }
                }
            }
            return .tagged(tag, .ok, "Lsub completed.")
        } catch {
            return failure(tag, error)
        }
    }

    // MARK: - STATUS

    func status(_ tag: String, _ rawName: String, _ items: [IMAPStatusAttribute]) async -> IMAPStatusResponse {
        let name = Self.canonical(rawName)
        do {
            let values = try await statusValues(name, items)
            send(.data(.status(mailbox: name, values)))
            return .tagged(tag, .ok, "Status completed.")
        } catch {
            return failure(tag, error)
        }
    }

    func statusValues(_ name: String, _ items: [IMAPStatusAttribute]) async throws -> [IMAPStatusValue] {
        guard let user else { return [] }
        let status = try await store.status(user: user, mailbox: name)
        let needsListing = items.contains { [.recent, .size, .deleted, .deletedStorage].contains($0) }
        let listing = needsListing ? try await store.messages(user: user, mailbox: name, uids: 1...UInt32.max) : []
        func isDeleted(_ m: StoredMessage) -> Bool { m.flags.contains { $0.lowercased() == "\\deleted" } }
        var values: [IMAPStatusValue] = []
        for item in items {
            let value: UInt64
            switch item {
            case .messages: value = UInt64(status.messages)
            case .unseen: value = UInt64(status.unseen)
            case .uidNext: value = UInt64(status.uidNext)
            case .uidValidity: value = UInt64(status.uidValidity)
            case .highestModSeq:
                condStore = true
                value = status.highestModseq
            case .recent:
                let (owner, ownName) = Self.owner(of: name, user: user)
                let mark = services.recent.mark(owner: owner, mailbox: ownName, uidValidity: status.uidValidity, claimUpTo: nil)
                value = UInt64(listing.filter { $0.uid >= mark }.count)
            case .size: value = UInt64(listing.reduce(0) { $0 + $1.size })
            case .deleted: value = UInt64(listing.filter(isDeleted).count)
            case .deletedStorage: value = UInt64(listing.filter(isDeleted).reduce(0) { $0 + $1.size })
            case .appendLimit: value = UInt64(settings.parserLimits.maxAppendMessageSize)
            }
            values.append(IMAPStatusValue(item, value))
        }
        return values
    }

    // MARK: - APPEND

    func append(_ tag: String, _ command: IMAPAppendCommand) async -> IMAPStatusResponse {
        guard let user else { return .tagged(tag, .no, "Not logged in.") }
        let name = Self.canonical(command.mailbox)
        var uids: [UInt32] = []
        for message in command.messages {
            guard !message.data.isEmpty else {
                await rollBack(uids, in: name)
                return .tagged(tag, .no, "Can't save a zero byte message.")
            }
            do {
                let uid = try await store.append(user: user, mailbox: name, message: message.data, flags: message.flags.map(\.name),
                                                 internalDate: message.internalDate?.secondsSince1970)
                uids.append(uid)
            } catch {
                await rollBack(uids, in: name)
                return failure(tag, error, tryCreate: name)
            }
        }
        guard let validity = try? await store.changeStamp(user: user, mailbox: name).uidValidity,
              let set = IMAPSequenceSet(numbers: uids) else {
            return .tagged(tag, .ok, "Append completed.")
        }
        return .tagged(tag, .ok, .appendUID(uidValidity: validity, uids: set), "Append completed.")
    }

    /// MULTIAPPEND is all or nothing (RFC 3502 §6.3.11): messages already stored by a failed one
    /// are flagged \Deleted and expunged again (best effort: without those rights they stay).
    private func rollBack(_ uids: [UInt32], in name: String) async {
        guard let user, !uids.isEmpty else { return }
        _ = try? await store.setFlags(user: user, mailbox: name, uids: uids, flags: ["\\Deleted"], mode: .add)
        _ = try? await store.expunge(user: user, mailbox: name, uids: uids)
    }

    // MARK: - IDLE

    func idle(_ tag: String) async {
        idleTag = tag
        send(.continuation("idling"))
        events += parser.resume(expecting: .idleDone)
        // What is already pending goes out at once; the rest as it happens.
        await synchronize(expungesAllowed: true)
    }

    func endIdle() { idleTag = nil }

    // MARK: - QUOTA (RFC 9208)

    static let quotaRoot = "User quota"

    func quotaResources(_ user: String) async throws -> [IMAPQuotaResource] {
        let quota = try await store.quota(user: user)
        var resources: [IMAPQuotaResource] = []
        if let limit = quota.bytesLimit {
            // STORAGE is counted in units of 1024 octets.
            resources.append(IMAPQuotaResource("STORAGE", usage: UInt64((quota.bytesUsed + 1023) / 1024), limit: UInt64(limit / 1024)))
        }
        if let limit = quota.messagesLimit {
            resources.append(IMAPQuotaResource("MESSAGE", usage: UInt64(quota.messagesUsed), limit: UInt64(limit)))
        }
        return resources
    }

    func getQuotaRoot(_ tag: String, _ rawName: String) async -> IMAPStatusResponse {
        guard let user else { return .tagged(tag, .no, "Not logged in.") }
        let name = Self.canonical(rawName)
        do {
            _ = try await store.myRights(user: user, mailbox: name)
            // Another account's mailbox counts against that account's quota, which is not
            // this user's to see: no root is named.
            let resources = MailboxNamespace.splitShared(name) == nil ? try await quotaResources(user) : []
            send(.data(.quotaRoot(mailbox: name, roots: resources.isEmpty ? [] : [Self.quotaRoot])))
            if !resources.isEmpty { send(.data(.quota(root: Self.quotaRoot, resources))) }
            return .tagged(tag, .ok, "Getquotaroot completed.")
        } catch {
            return failure(tag, error)
        }
    }

    func getQuota(_ tag: String, _ root: String) async -> IMAPStatusResponse {
        guard let user else { return .tagged(tag, .no, "Not logged in.") }
        do {
            let resources = root == Self.quotaRoot ? try await quotaResources(user) : []
            guard !resources.isEmpty else { return .tagged(tag, .no, .nonExistent, "Quota root doesn't exist") }
            send(.data(.quota(root: Self.quotaRoot, resources)))
            return .tagged(tag, .ok, "Getquota completed.")
        } catch {
            return failure(tag, error)
        }
    }

    // MARK: - ACL (RFC 4314)

    func getACL(_ tag: String, _ rawName: String) async -> IMAPStatusResponse {
        guard let user else { return .tagged(tag, .no, "Not logged in.") }
        let name = Self.canonical(rawName)
        do {
            let entries = try await store.acl(user: user, mailbox: name)
            send(.data(.acl(mailbox: name, entries.map { IMAPACLEntry($0.identifier, $0.rights) })))
            return .tagged(tag, .ok, "Getacl completed.")
        } catch {
            return failure(tag, error)
        }
    }

    func setACL(_ tag: String, _ rawName: String, _ identifier: String, _ modification: IMAPRightsModification) async -> IMAPStatusResponse {
        guard let user else { return .tagged(tag, .no, "Not logged in.") }
        guard let rights = ACLRights(modification.rights) else { return .tagged(tag, .bad, "Invalid rights") }
        let change: ACLChange
        switch modification.mode {
        case .replace: change = .replace(rights)
        case .add: change = .add(rights)
        case .remove: change = .remove(rights)
        }
        do {
            try await store.setACL(user: user, mailbox: Self.canonical(rawName), identifier: identifier, change: change)
            return .tagged(tag, .ok, "Setacl completed.")
        } catch {
            return failure(tag, error)
        }
    }

    func deleteACL(_ tag: String, _ rawName: String, _ identifier: String) async -> IMAPStatusResponse {
        guard let user else { return .tagged(tag, .no, "Not logged in.") }
        do {
            try await store.setACL(user: user, mailbox: Self.canonical(rawName), identifier: identifier, change: .delete)
            return .tagged(tag, .ok, "Deleteacl completed.")
        } catch {
            return failure(tag, error)
        }
    }

    func listRights(_ tag: String, _ rawName: String, _ identifier: String) async -> IMAPStatusResponse {
        guard let user else { return .tagged(tag, .no, "Not logged in.") }
        let name = Self.canonical(rawName)
        do {
            guard try await store.myRights(user: user, mailbox: name).contains("a") else {
                return .tagged(tag, .no, .noPerm, "Permission denied: no 'a' right on \(name)")
            }
            let owner = Self.owner(of: name, user: user).owner
            if identifier.lowercased() == owner.lowercased() {
                // The owner holds every right, always.
                send(.data(.listRights(mailbox: name, identifier: identifier, required: ACLRights.all.description, optional: [])))
            } else {
                send(.data(.listRights(mailbox: name, identifier: identifier, required: "", optional: ACLRights.letters.map { String($0) })))
            }
            return .tagged(tag, .ok, "Listrights completed.")
        } catch {
            return failure(tag, error)
        }
    }

    func myRights(_ tag: String, _ rawName: String) async -> IMAPStatusResponse {
        guard let user else { return .tagged(tag, .no, "Not logged in.") }
        let name = Self.canonical(rawName)
        do {
            let rights = try await store.myRights(user: user, mailbox: name)
            send(.data(.myRights(mailbox: name, rights: rights.description)))
            return .tagged(tag, .ok, "Myrights completed.")
        } catch {
            return failure(tag, error)
        }
    }
}

extension IMAPSequenceSet {
    /// A set of ascending UID ranges; nil for none.
    static func from(ranges: [ClosedRange<UInt32>]) -> IMAPSequenceSet? {
        guard !ranges.isEmpty else { return nil }
        return IMAPSequenceSet(ranges.map { Range(.number($0.lowerBound), .number($0.upperBound)) })
    }
}
