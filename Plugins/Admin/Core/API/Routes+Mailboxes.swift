import Foundation
import PluginAPI
import PluginHTTP

/// An account's IMAP folders: list with their counts, create (a shared folder is a folder whose
/// rights let others in), delete, and the rights on each (RFC 4314 letters `lrswipkxtea`).
extension AdminAPI {
    struct MailboxSummary: Encodable {
        var name: String
        var attributes: [String]
        var messages: Int
        var unseen: Int
        var uidValidity: UInt32
        var uidNext: UInt32
        var highestModseq: UInt64
        var subscribed: Bool
    }

    /// One folder with its properties as IMAP clients see them.
    func mailboxSummary(_ store: any StorageBackend, user: String, _ mailbox: MailboxInfo, subscriptions: [String]) async throws -> MailboxSummary {
        let status = try await store.status(user: user, mailbox: mailbox.name)
        return MailboxSummary(name: mailbox.name, attributes: mailbox.attributes, messages: status.messages, unseen: status.unseen,
                              uidValidity: status.uidValidity, uidNext: status.uidNext, highestModseq: status.highestModseq,
                              subscribed: subscriptions.contains(mailbox.name))
    }

    func addMailboxRoutes(_ router: Router<AdminRequestContext>) {
        route(router, .get, "/api/v1/users/{user}/mailboxes", .administrators) { call in
            let account = try await self.visibleAccount(call)
            let store = try self.store()
            var rows: [MailboxSummary] = []
            let subscriptions = try await store.subscriptions(user: account.name)
            // The account's own folders (others' shared with it appear under their owners).
            for mailbox in try await store.mailboxes(user: account.name) where mailbox.owner == nil {
                rows.append(try await self.mailboxSummary(store, user: account.name, mailbox, subscriptions: subscriptions))
            }
            return try self.table(call, rows, columns: ["name", "messages", "unseen", "subscribed", "attributes"]) {
                [$0.name, "\($0.messages)", "\($0.unseen)", "\($0.subscribed)", $0.attributes.joined(separator: " ")]
            }
        }
        route(router, .post, "/api/v1/users/{user}/mailboxes", .administrators) { call in
            let account = try await self.visibleAccount(call)
            let body = try await call.body()
            let name = try body.string("name", required: true)!
            guard !name.isEmpty, !name.hasPrefix(MailboxNamespace.otherUsersPrefix) else { throw APIError.badRequest("'\(name)' is not a folder name") }
            let store = try self.store()
            try await store.createMailbox(user: account.name, name: name)
            // Subscribed unless asked otherwise (doveadm mailbox create -s): a folder an
            // administrator makes for someone is meant to show in their mail client.
            if try body.bool("subscribed") ?? true { try await store.setSubscribed(user: account.name, mailbox: name, subscribed: true) }
            self.audit(call, "mailbox.create", target: "\(account.name)/\(name)", domain: Principal.domain(of: account.name))
            return Self.json(["name": name], status: .created)
        }
        route(router, .get, "/api/v1/users/{user}/mailboxes/{mailbox}", .administrators) { call in
            let (account, name) = try await self.visibleMailbox(call)
            let store = try self.store()
            guard let mailbox = try await store.mailboxes(user: account.name).first(where: { $0.owner == nil && $0.name == name }) else {
                throw APIError.notFound(kind: "mailbox", id: name)
            }
            return Self.json(try await self.mailboxSummary(store, user: account.name, mailbox, subscriptions: try await store.subscriptions(user: account.name)))
        }
        // The folder's properties an administrator may change: its name (IMAP RENAME: its messages,
        // rights and subfolders go with it) and whether the account subscribes to it.
        route(router, .patch, "/api/v1/users/{user}/mailboxes/{mailbox}", .administrators) { call in
            let (account, old) = try await self.visibleMailbox(call)
            let body = try await call.body()
            let store = try self.store()
            var name = old
            if let new = try body.string("name"), new != old {
                guard !new.isEmpty, !new.hasPrefix(MailboxNamespace.otherUsersPrefix), old.uppercased() != "INBOX", new.uppercased() != "INBOX" else {
                    throw APIError.badRequest("'\(new)': the INBOX keeps its name, and no other folder may take it")
                }
                let wasSubscribed = try await store.subscriptions(user: account.name).contains(old)
                try await store.renameMailbox(user: account.name, from: old, to: new)
                // The subscription follows the folder (the store keeps subscriptions by name, as
                // IMAP allows subscribing to a name that does not exist).
                if wasSubscribed {
                    try await store.setSubscribed(user: account.name, mailbox: old, subscribed: false)
                    try await store.setSubscribed(user: account.name, mailbox: new, subscribed: true)
                }
                self.audit(call, "mailbox.rename", target: "\(account.name)/\(old)", domain: Principal.domain(of: account.name), detail: new)
                name = new
            }
            if let subscribed = try body.bool("subscribed") {
                try await store.setSubscribed(user: account.name, mailbox: name, subscribed: subscribed)
                self.audit(call, subscribed ? "mailbox.subscribe" : "mailbox.unsubscribe", target: "\(account.name)/\(name)",
                           domain: Principal.domain(of: account.name))
            }
            guard let mailbox = try await store.mailboxes(user: account.name).first(where: { $0.owner == nil && $0.name == name }) else {
                throw APIError.notFound(kind: "mailbox", id: name)
            }
            return Self.json(try await self.mailboxSummary(store, user: account.name, mailbox, subscriptions: try await store.subscriptions(user: account.name)))
        }
        route(router, .delete, "/api/v1/users/{user}/mailboxes/{mailbox}", .administrators) { call in
            let (account, mailbox) = try await self.visibleMailbox(call)
            guard mailbox.uppercased() != "INBOX" else { throw APIError.conflict("the INBOX cannot be deleted") }
            try await self.store().deleteMailbox(user: account.name, name: mailbox)
            self.audit(call, "mailbox.delete", target: "\(account.name)/\(mailbox)", domain: Principal.domain(of: account.name))
            return Self.noContent()
        }
        route(router, .get, "/api/v1/users/{user}/mailboxes/{mailbox}/acl", .administrators) { call in
            let (account, mailbox) = try await self.visibleMailbox(call)
            let entries = try await self.store().acl(user: account.name, mailbox: mailbox)
            return try self.table(call, entries, columns: ["identifier", "rights"]) { [$0.identifier, $0.rights] }
        }
        route(router, .put, "/api/v1/users/{user}/mailboxes/{mailbox}/acl/{identifier}", .administrators) { call in
            let (account, mailbox) = try await self.visibleMailbox(call)
            let identifier = try call.parameter("identifier")
            let text = try await call.body().string("rights", required: true)!
            guard let rights = ACLRights(text), !rights.isEmpty else {
                throw APIError.badRequest("'rights' takes the letters lrswipkxtea (RFC 4314); DELETE removes an entry")
            }
            try await self.store().setACL(user: account.name, mailbox: mailbox, identifier: identifier, change: .replace(rights))
            self.audit(call, "acl.set", target: "\(account.name)/\(mailbox)", domain: Principal.domain(of: account.name),
                       detail: "\(identifier) \(rights)")
            return Self.json(ACLEntry(identifier: identifier, rights: rights))
        }
        route(router, .delete, "/api/v1/users/{user}/mailboxes/{mailbox}/acl/{identifier}", .administrators) { call in
            let (account, mailbox) = try await self.visibleMailbox(call)
            let identifier = try call.parameter("identifier")
            let store = try self.store()
            guard try await store.acl(user: account.name, mailbox: mailbox).contains(where: { $0.identifier == identifier }) else {
                throw APIError.notFound(kind: "rights entry", id: identifier)
            }
            try await store.setACL(user: account.name, mailbox: mailbox, identifier: identifier, change: .delete)
            self.audit(call, "acl.delete", target: "\(account.name)/\(mailbox)", domain: Principal.domain(of: account.name), detail: identifier)
            return Self.noContent()
        }
    }

    /// The account and `{mailbox}` of the path, when both are visible and exist.
    func visibleMailbox(_ call: Call) async throws -> (AccountInfo, String) {
        let account = try await visibleAccount(call)
        let name = try call.parameter("mailbox")
        guard try await store().mailboxes(user: account.name).contains(where: { $0.owner == nil && $0.name == name }) else {
            throw APIError.notFound(kind: "mailbox", id: name)
        }
        return (account, name)
    }
}
