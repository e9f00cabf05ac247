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
    }

    func addMailboxRoutes(_ router: Router<AdminRequestContext>) {
        route(router, .get, "/api/v1/users/{user}/mailboxes", .administrators) { call in
            let account = try await self.visibleAccount(call)
            let store = try self.store()
            var rows: [MailboxSummary] = []
            // The account's own folders (others' shared with it appear under their owners).
            for mailbox in try await store.mailboxes(user: account.name) where mailbox.owner == nil {
                let status = try await store.status(user: account.name, mailbox: mailbox.name)
                rows.append(MailboxSummary(name: mailbox.name, attributes: mailbox.attributes, messages: status.messages, unseen: status.unseen,
                                           uidValidity: status.uidValidity, uidNext: status.uidNext))
            }
            return try self.table(call, rows, columns: ["name", "messages", "unseen"]) { [$0.name, "\($0.messages)", "\($0.unseen)"] }
        }
        route(router, .post, "/api/v1/users/{user}/mailboxes", .administrators) { call in
            let account = try await self.visibleAccount(call)
            let name = try await call.body().string("name", required: true)!
            guard !name.isEmpty, !name.hasPrefix(MailboxNamespace.otherUsersPrefix) else { throw APIError.badRequest("'\(name)' is not a folder name") }
            try await self.store().createMailbox(user: account.name, name: name)
            self.audit(call, "mailbox.create", target: "\(account.name)/\(name)", domain: Principal.domain(of: account.name))
            return Self.json(["name": name], status: .created)
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
