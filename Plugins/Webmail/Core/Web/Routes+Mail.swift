import Foundation
import PluginAPI
import PluginHTTP

extension Webmail {
    func addMailRoutes(_ router: Router<WebmailRequestContext>) {
        router.get("/mail") { request, context -> Response in
            try await self.signedInPage(request, context) { user, mail in try await self.folderPage(request, user, mail) }
        }
        router.get("/read") { request, context -> Response in
            try await self.signedInPage(request, context) { user, mail in try await self.readPage(request, user, mail) }
        }
        router.get("/part") { request, context -> Response in
            try await self.signedInPage(request, context) { user, mail in try await self.partDownload(request, user, mail) }
        }
        router.get("/source") { request, context -> Response in
            try await self.signedInPage(request, context) { user, mail in try await self.source(request, user, mail) }
        }
    }

    /// Runs a page for a logged-in browser: the login page otherwise, and a clear error page when
    /// the IMAP server cannot be reached or refuses the stored login (then the session ends).
    func signedInPage(_ request: Request, _ context: WebmailRequestContext,
                      _ body: (SignedIn, MailAccess) async throws -> Response) async throws -> Response {
        guard let user = try signedIn(request) else { return Self.redirect("/login") }
        let strings = pages.strings(user.language)
        let mail: MailAccess
        do {
            mail = try await self.mail(user, context)
        } catch IMAPClientError.refused {
            // The password changed elsewhere, or the account was suspended.
            try? sessions.delete(id: user.session.id)
            var response = Self.redirect("/login")
            response.setCookie(cookie(Self.sessionCookie, "", maxAge: 0))
            return response
        } catch {
            plugin.context.logger.error("webmail cannot reach IMAP", metadata: ["error": "\(error)"])
            return errorPage(user, strings["error_imap"] ?? "", status: .serviceUnavailable)
        }
        do {
            return try await body(user, mail)
        } catch IMAPClientError.refused(_, _, let text) {
            return errorPage(user, text, status: .notFound)
        } catch let error as IMAPClientError {
            pool.close(sessionID: user.session.id)
            plugin.context.logger.error("webmail IMAP failure", metadata: ["error": "\(error)"])
            return errorPage(user, strings["error_imap"] ?? "", status: .serviceUnavailable)
        }
    }

    func errorPage(_ user: SignedIn, _ text: String, status: HTTPResponse.Status) -> Response {
        Self.html(pages.render("error", brand: user.brandKey, language: user.language, [
            "message": text, "csrf": user.session.csrf, "user": user.session.user,
        ]), status: status)
    }

    /// The sidebar: folders, special-use ones first in a fixed order, then the rest by name.
    func folderList(_ mail: MailAccess, current: String, strings: [String: String]) async throws -> [[String: Any]] {
        let order = ["inbox", "drafts", "sent", "archive", "junk", "trash"]
        let folders = try await mail.folders().filter(\.selectable).sorted { a, b in
            let ia = a.specialUse.flatMap { order.firstIndex(of: $0) } ?? order.count
            let ib = b.specialUse.flatMap { order.firstIndex(of: $0) } ?? order.count
            return ia != ib ? ia < ib : a.name.localizedStandardCompare(b.name) == .orderedAscending
        }
        return folders.map { f in
            [
                "name": f.specialUse.flatMap { strings["folder_\($0)"] } ?? f.name,
                "query": Self.queryEscape(f.name),
                "unseen": f.unseen ?? 0, "hasUnseen": (f.unseen ?? 0) > 0,
                "current": f.name == current,
                "use": f.specialUse ?? "",
            ] as [String: Any]
        }
    }

    /// A folder's name as the user reads it: the special-use ones in the user's language.
    func displayName(_ folder: String, strings: [String: String]) -> String {
        folder.uppercased() == "INBOX" ? (strings["folder_inbox"] ?? folder) : folder
    }

    /// The folders a message can be moved to from `folder`.
    func moveTargets(_ mail: MailAccess, from folder: String, strings: [String: String]) async throws -> [[String: Any]] {
        try await mail.folders().filter { $0.selectable && $0.name != folder }
            .map { ["name": $0.name, "label": $0.specialUse.flatMap { strings["folder_\($0)"] } ?? $0.name] }
    }

    func quotaData(_ mail: MailAccess) async -> [String: Any]? {
        guard let quota = try? await mail.quota(), quota.limitKiB > 0 else { return nil }
        let percent = min(100, quota.usedKiB * 100 / quota.limitKiB)
        return ["used": Self.size(quota.usedKiB * 1024), "limit": Self.size(quota.limitKiB * 1024), "percent": percent]
    }

    private func folderPage(_ request: Request, _ user: SignedIn, _ mail: MailAccess) async throws -> Response {
        let query = request.uri.queryParameters
        let folder = query["f"].map(String.init) ?? "INBOX"
        let pageNumber = max(0, query["p"].flatMap { Int(String($0)) } ?? 0)
        let pageSize = user.preferences.pageSize ?? options.pageSize
        let strings = pages.strings(user.language)
        let sort = query["sort"].flatMap { MailAccess.SortKey(rawValue: String($0)) }
        let reverse = query["order"] != "asc"
        let page = try await mail.page(folder: folder, page: pageNumber, pageSize: pageSize, sort: sort, reverse: reverse)
        let timeZone = user.preferences.timeZone.flatMap(TimeZone.init(identifier:)) ?? TimeZone(identifier: "UTC")!
        let rows: [[String: Any]] = page.messages.map { m in
            let header = MIMEMessage(parsing: m.header + [13, 10]).root
            let from = MessageView.addresses(header.field("From"))
            let subject = header.fields.first { $0.hasName("Subject") }.map { EncodedWords.decode($0.value) } ?? ""
            let type = header.explicitContentType?.mimeType ?? "text/plain"
            return [
                "uid": m.uid, "from": from.isEmpty ? (strings["message_nosender"] ?? "") : from,
                "subject": subject.isEmpty ? (strings["message_nosubject"] ?? "") : subject,
                "date": Self.shortDate(header.field("Date"), m.internalDate, timeZone: timeZone),
                "size": Self.size(m.size), "unseen": !m.seen, "flagged": m.flagged,
                "attachment": type == "multipart/mixed",
            ] as [String: Any]
        }
        let folderQuery = Self.queryEscape(folder)
        var data: [String: Any] = [
            "csrf": user.session.csrf, "user": user.session.user,
            "folders": try await folderList(mail, current: folder, strings: strings),
            "folder": displayName(folder, strings: strings), "folderQuery": folderQuery, "messages": rows, "empty": rows.isEmpty,
            "total": page.total, "page": pageNumber + 1, "pages": page.pageCount,
            "folderName": folder, "moveTargets": try await moveTargets(mail, from: folder, strings: strings),
            "sent": query["sent"] == "1",
        ]
        let sortQuery = sort.map { "&sort=\($0.rawValue)&order=\(reverse ? "desc" : "asc")" } ?? ""
        if pageNumber > 0 { data["prev"] = "/mail?f=\(folderQuery)&p=\(pageNumber - 1)\(sortQuery)" }
        if pageNumber + 1 < page.pageCount { data["next"] = "/mail?f=\(folderQuery)&p=\(pageNumber + 1)\(sortQuery)" }
        if await mail.canSort {
            // Column headers sort; the current column's link turns the order around.
            data["sortLinks"] = Dictionary(uniqueKeysWithValues: MailAccess.SortKey.allCases.map { key in
                let order = key == sort && reverse ? "asc" : "desc"
                return (key.rawValue, "/mail?f=\(folderQuery)&sort=\(key.rawValue)&order=\(order)")
            })
        }
        if let quota = await quotaData(mail) { data["quota"] = quota }
        // Only when there is something to say: Mustache shows a section for an empty string too.
        if let refused = query["refused"].map(String.init), !refused.isEmpty { data["refused"] = refused }
        return Self.html(pages.render("mailbox", brand: user.brandKey, language: user.language, data))
    }

    private func readPage(_ request: Request, _ user: SignedIn, _ mail: MailAccess) async throws -> Response {
        let query = request.uri.queryParameters
        let folder = query["f"].map(String.init) ?? "INBOX"
        let strings = pages.strings(user.language)
        guard let uid = query["uid"].flatMap({ Int(String($0)) }),
              let (_, raw) = try await mail.message(folder: folder, uid: uid) else {
            return errorPage(user, strings["error_nomessage"] ?? "", status: .notFound)
        }
        let view = MessageView(raw: raw)
        let folderQuery = Self.queryEscape(folder)
        let showImages = query["images"] == "1"
        let partURL: @Sendable (Int, Bool) -> String = { part, inline in
            "/part?f=\(folderQuery)&uid=\(uid)&part=\(part)\(inline ? "&inline=1" : "")"
        }
        let contentIDs = Dictionary(view.attachments.compactMap { a in a.contentID.map { ($0, a.part) } }, uniquingKeysWith: { first, _ in first })
        var data: [String: Any] = [
            "csrf": user.session.csrf, "user": user.session.user,
            "folders": try await folderList(mail, current: folder, strings: strings),
            "folder": displayName(folder, strings: strings), "folderQuery": folderQuery, "uid": uid,
            "folderName": folder, "moveTargets": try await moveTargets(mail, from: folder, strings: strings),
            "isDraft": try await mail.specialFolder("drafts") == folder,
            "subject": view.subject.isEmpty ? (strings["message_nosubject"] ?? "") : view.subject,
            "from": view.from, "to": view.to, "cc": view.cc, "hasCc": !view.cc.isEmpty, "date": view.date,
            "attachments": view.attachments.map { a in
                ["name": a.filename, "type": a.mimeType, "size": Self.size(a.size), "url": partURL(a.part, false)] as [String: Any]
            },
            "hasAttachments": !view.attachments.isEmpty,
        ]
        var csp: String?
        if case .html(let html) = view.body {
            // Images the HTML shows inline (cid:) are part of the text, not attachments to list.
            let shown = view.attachments.filter { a in a.contentID.map { html.contains("cid:" + $0) } ?? false }
            data["attachments"] = (data["attachments"] as? [[String: Any]] ?? []).enumerated()
                .filter { i, _ in !shown.contains(view.attachments[i]) }.map(\.element)
            data["hasAttachments"] = view.attachments.count > shown.count
        }
        switch view.body {
        case .html(let html):
            var sanitizerOptions = HTMLSanitizer.Options()
            sanitizerOptions.allowRemoteImages = showImages
            sanitizerOptions.resolveContentID = { cid in contentIDs[cid].map { partURL($0, true) } }
            let result = HTMLSanitizer.sanitize(html, options: sanitizerOptions)
            data["html"] = result.html
            data["isHTML"] = true
            if result.blockedRemoteImages > 0 && !showImages {
                data["blockedImages"] = result.blockedRemoteImages
                data["showImagesURL"] = "/read?f=\(folderQuery)&uid=\(uid)&images=1"
            }
            if showImages { csp = Self.contentSecurityPolicy(remoteImages: true) }
        case .plain(let text):
            data["html"] = PlainTextRenderer.render(text)
            data["isHTML"] = false
        case .none:
            data["html"] = ""
        }
        data["sourceURL"] = "/source?f=\(folderQuery)&uid=\(uid)"
        // The conversation costs a header search in several folders: asked for, not on every read.
        if query["thread"] == "1" {
            let thread = try await conversation(view, folder: folder, uid: uid, user, mail) ?? []
            data["conversation"] = thread
            data["hasConversation"] = true
        } else {
            data["conversationURL"] = "/read?f=\(folderQuery)&uid=\(uid)&thread=1#conversation"
        }
        return Self.html(pages.render("message", brand: user.brandKey, language: user.language, data), csp: csp)
    }

    /// The conversation around a message, in the Inbox, Sent, Archive and its own folder, oldest first.
    private func conversation(_ view: MessageView, folder: String, uid: Int, _ user: SignedIn,
                              _ mail: MailAccess) async throws -> [[String: Any]]? {
        guard let root = view.references.first ?? view.messageID else { return nil }
        var folders = ["INBOX", folder]
        for use in ["sent", "archive"] { if let f = try await mail.specialFolder(use) { folders.append(f) } }
        var seen = Set<String>()
        folders = folders.filter { seen.insert($0).inserted }
        let strings = pages.strings(user.language)
        let timeZone = user.preferences.timeZone.flatMap(TimeZone.init(identifier:)) ?? .gmt
        let items = try await mail.conversation(root: root, folders: folders)
        let labels = Dictionary(try await mail.folders().map { f in (f.name, f.specialUse.flatMap { strings["folder_\($0)"] } ?? f.name) },
                                uniquingKeysWith: { a, _ in a })
        return items.map { item -> (Int64, [String: Any]) in
            let header = MIMEMessage(parsing: item.summary.header + [13, 10]).root
            let date = header.field("Date").flatMap { MailDate(rfc5322: String(decoding: $0.value, as: UTF8.self)) }
            return (date?.secondsSince1970 ?? 0, [
                "url": "/read?f=\(Self.queryEscape(item.folder))&uid=\(item.summary.uid)",
                "from": MessageView.addresses(header.field("From")),
                "subject": header.fields.first { $0.hasName("Subject") }.map { EncodedWords.decode($0.value) } ?? "",
                "date": Self.shortDate(header.field("Date"), item.summary.internalDate, timeZone: timeZone),
                "folder": labels[item.folder] ?? item.folder,
                "current": item.folder == folder && item.summary.uid == uid,
            ])
        }.sorted { $0.0 < $1.0 }.map(\.1)
    }

    /// An attachment, always as a download unless it is an image shown inline (`cid:`): a part
    /// never renders as HTML in our origin.
    private func partDownload(_ request: Request, _ user: SignedIn, _ mail: MailAccess) async throws -> Response {
        let query = request.uri.queryParameters
        let folder = query["f"].map(String.init) ?? "INBOX"
        guard let uid = query["uid"].flatMap({ Int(String($0)) }), let index = query["part"].flatMap({ Int(String($0)) }),
              let (_, raw) = try await mail.message(folder: folder, uid: uid, markSeen: false),
              let part = MessageView.part(index, of: raw) else {
            return errorPage(user, pages.strings(user.language)["error_nomessage"] ?? "", status: .notFound)
        }
        let type = part.contentType.mimeType
        let inlineImage = query["inline"] == "1" && ["image/png", "image/gif", "image/jpeg", "image/webp"].contains(type)
        let name = MessageView.filename(part) ?? MessageView.defaultName(type, index)
        let body = MessageView.decodedBody(part, raw)
        var headers: HTTPFields = [
            .contentType: inlineImage ? type : "application/octet-stream",
            .contentDisposition: (inlineImage ? "inline" : "attachment") + "; " + Self.dispositionFilename(name),
            .cacheControl: "private, no-store",
        ]
        headers[.contentSecurityPolicy] = "default-src 'none'; sandbox"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    private func source(_ request: Request, _ user: SignedIn, _ mail: MailAccess) async throws -> Response {
        let query = request.uri.queryParameters
        let folder = query["f"].map(String.init) ?? "INBOX"
        guard let uid = query["uid"].flatMap({ Int(String($0)) }),
              let (_, raw) = try await mail.message(folder: folder, uid: uid, markSeen: false) else {
            return errorPage(user, pages.strings(user.language)["error_nomessage"] ?? "", status: .notFound)
        }
        return Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8", .cacheControl: "private, no-store",
                                               .contentSecurityPolicy: "default-src 'none'; sandbox"],
                        body: .init(byteBuffer: ByteBuffer(bytes: raw)))
    }

    /// `filename="ascii"; filename*=UTF-8''percent-encoded` (RFC 6266): every browser gets a
    /// name, none gets a quote or a control character to break the header with.
    static func dispositionFilename(_ name: String) -> String {
        let ascii = String(name.unicodeScalars.map { $0.isASCII && $0.value >= 0x20 && $0 != "\"" && $0 != "\\" ? Character($0) : "_" })
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "!#$&+-.^_`|~")
        let encoded = name.addingPercentEncoding(withAllowedCharacters: allowed) ?? ascii
        return "filename=\"\(ascii)\"; filename*=UTF-8''\(encoded)"
    }

    static func size(_ bytes: Int) -> String {
        if bytes < 1024 { return "\(bytes) B" }
        if bytes < 1024 * 1024 { return "\((bytes + 512) / 1024) KB" }
        return String(format: "%.1f MB", Double(bytes) / 1048576)
    }

    static func shortDate(_ field: MailHeaderField?, _ internalDate: String?, timeZone: TimeZone) -> String {
        let parsed = field.flatMap { MailDate(rfc5322: String(decoding: $0.value, as: UTF8.self)) }
        guard let date = parsed else { return internalDate ?? "" }
        let formatter = DateFormatter()
        formatter.timeZone = timeZone
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyy-MM-dd HH:mm"
        return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(date.secondsSince1970)))
    }
}
