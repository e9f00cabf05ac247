import Foundation
import PluginAPI
import PluginHTTP

/// What changes mail: actions on selected messages (delete to Trash, move, archive, junk, flags),
/// search, and folder management.
extension Webmail {
    func addActionRoutes(_ router: Router<WebmailRequestContext>) {
        router.post("/action") { request, context -> Response in
            guard let user = try self.signedIn(request) else { return Self.redirect("/login") }
            let body = try await request.body.collect(upTo: context.maxUploadSize)
            let pairs = Self.parseQueryPairs(String(buffer: body))
            let form = Dictionary(pairs, uniquingKeysWith: { _, last in last })
            guard form["csrf"] == user.session.csrf else { return self.errorPage(user, "Forbidden: the form has expired.", status: .forbidden) }
            let uids = pairs.filter { $0.0 == "uid" }.compactMap { Int($0.1) }
            return try await self.signedInPage(request, context) { user, mail in
                try await self.act(form, uids: uids, user, mail)
            }
        }
        router.get("/search") { request, context -> Response in
            try await self.signedInPage(request, context) { user, mail in try await self.searchPage(request, user, mail) }
        }
        router.get("/folders") { request, context -> Response in
            try await self.signedInPage(request, context) { user, mail in try await self.foldersPage(user, mail, error: nil) }
        }
        router.post("/folders") { request, context -> Response in
            guard let user = try self.signedIn(request) else { return Self.redirect("/login") }
            let form = try await Self.form(request, context: context)
            guard form["csrf"] == user.session.csrf else { return self.errorPage(user, "Forbidden: the form has expired.", status: .forbidden) }
            return try await self.signedInPage(request, context) { user, mail in
                do {
                    let name = (form["name"] ?? "").trimmingCharacters(in: .whitespaces)
                    switch form["op"] {
                    case "create" where !name.isEmpty: try await mail.createFolder(name)
                    case "rename" where !name.isEmpty: try await mail.renameFolder(form["folder"] ?? "", to: name)
                    case "delete": try await mail.deleteFolder(form["folder"] ?? "")
                    case "subscribe": try await mail.setSubscribed(form["folder"] ?? "", true)
                    case "unsubscribe": try await mail.setSubscribed(form["folder"] ?? "", false)
                    default: break
                    }
                } catch IMAPClientError.refused(_, _, let text) {
                    return try await self.foldersPage(user, mail, error: text)
                }
                return Self.redirect("/folders")
            }
        }
    }

    /// Applies an action to the selected messages, then goes back where the user was.
    private func act(_ form: [String: String], uids: [Int], _ user: SignedIn, _ mail: MailAccess) async throws -> Response {
        let folder = form["f"] ?? "INBOX"
        let back = form["back"].flatMap { $0.hasPrefix("/") && !$0.hasPrefix("//") ? $0 : nil } ?? "/mail?f=\(Self.queryEscape(folder))"
        let strings = pages.strings(user.language)
        switch form["op"] ?? "" {
        case "delete":
            // To the Trash; from the Trash (or without one), for good.
            if let trash = try await mail.specialFolder("trash"), trash != folder {
                try await mail.move(uids: uids, from: folder, to: trash)
            } else {
                try await mail.expunge(uids: uids, folder: folder)
            }
        case "archive", "junk":
            guard let target = try await mail.specialFolder(form["op"]!) else {
                return errorPage(user, strings["error_nofolder"] ?? "", status: .conflict)
            }
            try await mail.move(uids: uids, from: folder, to: target)
            if form["op"] == "junk" { try? await mail.setFlag("$Junk", on: true, uids: uids, folder: target) }
        case "move":
            guard let target = form["target"], !target.isEmpty else { return Self.redirect(back) }
            try await mail.move(uids: uids, from: folder, to: target)
        case "read": try await mail.setFlag("\\Seen", on: true, uids: uids, folder: folder)
        case "unread": try await mail.setFlag("\\Seen", on: false, uids: uids, folder: folder)
        case "flag": try await mail.setFlag("\\Flagged", on: true, uids: uids, folder: folder)
        case "unflag": try await mail.setFlag("\\Flagged", on: false, uids: uids, folder: folder)
        default: break
        }
        // After acting on the message being read, that message is gone from view: show the folder.
        return Self.redirect(form["op"] == "read" || form["op"] == "flag" || form["op"] == "unflag" || form["op"] == "unread" ? back
                             : "/mail?f=\(Self.queryEscape(folder))")
    }

    private func searchPage(_ request: Request, _ user: SignedIn, _ mail: MailAccess) async throws -> Response {
        let query = request.uri.queryParameters
        let strings = pages.strings(user.language)
        let text = query["q"].map(String.init) ?? ""
        let field = query["in"].flatMap { MailSearch.Field(rawValue: String($0)) } ?? .all
        let scope = query["f"].map(String.init) ?? "*"
        var search = MailSearch(text: text, field: field)
        search.since = query["since"].flatMap { Self.imapDate(String($0)) }
        search.before = query["before"].flatMap { Self.imapDate(String($0)) }
        let all = try await mail.folders().filter(\.selectable)
        let targets = scope == "*" ? all.filter { !["trash", "junk"].contains($0.specialUse ?? "") }.map(\.name) : [scope]
        var rows: [[String: Any]] = []
        let limit = 200
        for folder in targets where rows.count < limit {
            let uids = try await mail.search(search, folder: folder)
            let page = Array(uids.prefix(limit - rows.count))
            for m in try await mail.summaries(uids: page, folder: folder) {
                let header = MIMEMessage(parsing: m.header + [13, 10]).root
                rows.append([
                    "uid": m.uid, "folderQuery": Self.queryEscape(folder), "folder": displayName(folder, strings: strings),
                    "from": MessageView.addresses(header.field("From")),
                    "subject": header.fields.first { $0.hasName("Subject") }.map { EncodedWords.decode($0.value) } ?? "",
                    "date": Self.shortDate(header.field("Date"), m.internalDate, timeZone: TimeZone(identifier: user.preferences.timeZone ?? "UTC") ?? .gmt),
                    "unseen": !m.seen,
                ])
            }
        }
        let data: [String: Any] = [
            "csrf": user.session.csrf, "user": user.session.user,
            "folders": try await folderList(mail, current: "", strings: strings),
            "q": text, "results": rows, "count": rows.count, "empty": rows.isEmpty, "searched": !text.isEmpty,
            "fields": MailSearch.Field.allCases.map { ["value": $0.rawValue, "label": strings["search_\($0.rawValue)"] ?? $0.rawValue, "selected": $0 == field] },
            "scopes": [["value": "*", "label": strings["search_everywhere"] ?? "*", "selected": scope == "*"]]
                + all.map { ["value": $0.name, "label": displayName($0.name, strings: strings), "selected": $0.name == scope] },
        ]
        return Self.html(pages.render("search", brand: user.brandKey, language: user.language, data))
    }

    func foldersPage(_ user: SignedIn, _ mail: MailAccess, error: String?) async throws -> Response {
        let strings = pages.strings(user.language)
        let folders = try await folderList(mail, current: "", strings: strings)
        let own = try await mail.folders().filter { $0.specialUse == nil }
            .map { ["name": $0.name, "messages": $0.messages ?? 0, "subscribed": $0.subscribed] as [String: Any] }
        let data: [String: Any] = [
            "csrf": user.session.csrf, "user": user.session.user, "folders": folders, "own": own,
            "error": error ?? "", "hasError": error != nil,
        ]
        return Self.html(pages.render("folders", brand: user.brandKey, language: user.language, data), status: error == nil ? .ok : .conflict)
    }

    /// `2026-12-05` (a date input) as an IMAP date, `5-Dec-2026`.
    static func imapDate(_ iso: String) -> String? {
        let parts = iso.split(separator: "-").compactMap { Int($0) }
        guard parts.count == 3, (1...12).contains(parts[1]), (1...31).contains(parts[2]), parts[0] > 1900 else { return nil }
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        return "\(parts[2])-\(months[parts[1] - 1])-\(parts[0])"
    }

    /// Every key=value pair of a form, in order (checkboxes repeat a key).
    static func parseQueryPairs(_ text: String) -> [(String, String)] {
        text.split(separator: "&").map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (decodeFormComponent(String(parts[0])), parts.count > 1 ? decodeFormComponent(String(parts[1])) : "")
        }
    }
}
