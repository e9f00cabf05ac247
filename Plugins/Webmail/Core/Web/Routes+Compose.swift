import Foundation
import PluginAPI
import PluginHTTP

/// Compose, reply, forward and drafts. A compose is a row in the session store (what the form
/// cannot carry: uploaded files, the message answered, the draft replaced); the text fields come
/// back with every post. Drafts are saved to the IMAP Drafts folder, so any device resumes them.
extension Webmail {
    func addComposeRoutes(_ router: Router<WebmailRequestContext>) {
        router.get("/compose") { request, context -> Response in
            try await self.signedInPage(request, context) { user, mail in try await self.startCompose(request, user, mail) }
        }
        router.post("/compose") { request, context -> Response in
            guard let user = try self.signedIn(request) else { return Self.redirect("/login") }
            let contentType = request.headers[.contentType] ?? ""
            let body = try await request.body.collect(upTo: self.options.maxUploadSize + 64 * 1024)
            guard let form = FormData(contentType: contentType, body: Array(buffer: body)) else {
                return self.errorPage(user, "The form could not be read.", status: .badRequest)
            }
            guard form.fields["csrf"] == user.session.csrf else {
                return self.errorPage(user, "Forbidden: the form has expired.", status: .forbidden)
            }
            return try await self.signedInPage(request, context) { user, mail in try await self.postCompose(form, user, mail) }
        }
    }

    /// Opens a compose: new, a reply, a reply to all, a forward (inline or as an attachment), or
    /// a draft resumed.
    private func startCompose(_ request: Request, _ user: SignedIn, _ mail: MailAccess) async throws -> Response {
        let query = request.uri.queryParameters
        let strings = pages.strings(user.language)
        if let id = query["c"].map(String.init), let state = try sessions.compose(id: id, sessionID: user.session.id) {
            return try await composePage(user, mail, state: state, fields: state.fields ?? [:], notice: nil, error: nil)
        }
        var state = ComposeState(id: WebSessionStore.randomToken())
        var fields: [String: String] = [:]
        let mode = query["mode"].map(String.init) ?? "new"
        if let to = query["to"].map(String.init) { fields["to"] = to }
        if let draftUID = query["draft"].flatMap({ Int(String($0)) }) {
            guard let drafts = try await mail.specialFolder("drafts"),
                  let (_, raw) = try await mail.message(folder: drafts, uid: draftUID, markSeen: false) else {
                return errorPage(user, strings["error_nomessage"] ?? "", status: .notFound)
            }
            let view = MessageView(raw: raw)
            state.draftUID = draftUID
            state.inReplyTo = view.references.last
            fields = ["to": view.toAddresses.joined(separator: ", "), "cc": view.ccAddresses.joined(separator: ", "),
                      "bcc": Self.specs(raw, "Bcc").joined(separator: ", "), "subject": view.subject, "body": Self.quotableText(view)]
            try copyAttachments(view, raw, into: state.id)
        } else if mode != "new", let folder = query["f"].map(String.init), let uid = query["uid"].flatMap({ Int(String($0)) }) {
            guard let (_, raw) = try await mail.message(folder: folder, uid: uid, markSeen: false) else {
                return errorPage(user, strings["error_nomessage"] ?? "", status: .notFound)
            }
            let view = MessageView(raw: raw)
            let me = user.session.user.lowercased()
            switch mode {
            case "reply", "all":
                var to = view.replyAddresses
                var cc: [String] = []
                if mode == "all" {
                    to += view.toAddresses
                    cc = view.ccAddresses
                }
                var seen = Set<String>()
                to = to.filter { $0.lowercased() != me && seen.insert($0.lowercased()).inserted }
                cc = cc.filter { $0.lowercased() != me && seen.insert($0.lowercased()).inserted }
                fields = ["to": to.joined(separator: ", "), "cc": cc.joined(separator: ", "),
                          "subject": Self.prefixed("Re:", view.subject),
                          "body": "\n\n" + String(format: strings["compose_wrote"] ?? "%@ wrote:", "\(view.date), \(view.from)") + "\n"
                            + Self.quoted(Self.quotableText(view))]
                state.inReplyTo = view.messageID
                state.references = Array((view.references.filter { $0 != view.messageID } + [view.messageID].compactMap { $0 }).suffix(20))
                state.answeredFolder = folder
                state.answeredUID = uid
            case "forward":
                fields = ["subject": Self.prefixed("Fwd:", view.subject),
                          "body": "\n\n---------- \(strings["compose_forwarded"] ?? "Forwarded message") ----------\n"
                            + "From: \(view.from)\nDate: \(view.date)\nSubject: \(view.subject)\nTo: \(view.to)\n\n" + Self.quotableText(view)]
                try copyAttachments(view, raw, into: state.id)
            case "attach":
                fields = ["subject": Self.prefixed("Fwd:", view.subject)]
                state.forwardedFolder = folder
                state.forwardedUID = uid
            default:
                break
            }
        }
        if let signature = identities(user)[0].signature, query["draft"] == nil {
            // Below what the user writes, above a quote (RFC 3676 §4.3 "-- " separator).
            fields["body"] = "\n\n-- \n" + signature + (fields["body"].map { "\n" + $0 } ?? "\n")
        }
        state.fields = fields
        try sessions.saveCompose(state, sessionID: user.session.id)
        return try await composePage(user, mail, state: state, fields: fields, notice: nil, error: nil)
    }

    private func postCompose(_ form: FormData, _ user: SignedIn, _ mail: MailAccess) async throws -> Response {
        let strings = pages.strings(user.language)
        guard let id = form.fields["c"], var state = try sessions.compose(id: id, sessionID: user.session.id) else {
            return errorPage(user, strings["compose_gone"] ?? "", status: .notFound)
        }
        state.fields = form.fields.filter { ["from", "to", "cc", "bcc", "subject", "body"].contains($0.key) }
        try sessions.saveCompose(state, sessionID: user.session.id)
        for file in form.files where file.field == "files" {
            let name = MessageView.filename(fromUpload: file.filename)
            try sessions.addUpload(composeID: id, filename: name, mimeType: OutgoingMessage.safeType(file.mimeType), data: file.data)
        }
        let action = form.fields["action"] ?? "send"
        if action.hasPrefix("remove:"), let upload = Int64(action.dropFirst("remove:".count)) {
            try sessions.removeUpload(id: upload, composeID: id)
            return try await composePage(user, mail, state: state, fields: form.fields, notice: nil, error: nil)
        }
        switch action {
        case "attach":
            return try await composePage(user, mail, state: state, fields: form.fields, notice: nil, error: nil)
        case "discard":
            try sessions.deleteCompose(id: id)
            return Self.redirect("/mail?f=INBOX")
        case "save":
            let message = try await buildMessage(form.fields, state, user, mail, requireRecipients: false)
            guard case .success(let outgoing) = message else {
                if case .failure(let error) = message { return try await composePage(user, mail, state: state, fields: form.fields, notice: nil, error: error.text) }
                return Self.redirect("/mail?f=INBOX")
            }
            guard let drafts = try await mail.specialFolder("drafts") else {
                return try await composePage(user, mail, state: state, fields: form.fields, notice: nil, error: strings["compose_nodrafts"])
            }
            let uid = try await mail.append(outgoing.rendered(includeBcc: true), to: drafts, flags: ["\\Draft", "\\Seen"])
            if let old = state.draftUID { try await mail.expunge(uids: [old], folder: drafts) }
            state.draftUID = uid
            try sessions.saveCompose(state, sessionID: user.session.id)
            return try await composePage(user, mail, state: state, fields: form.fields, notice: strings["compose_saved"], error: nil)
        default:
            let message = try await buildMessage(form.fields, state, user, mail, requireRecipients: true)
            guard case .success(let outgoing) = message else {
                if case .failure(let error) = message { return try await composePage(user, mail, state: state, fields: form.fields, notice: nil, error: error.text) }
                return Self.redirect("/mail?f=INBOX")
            }
            let refused: [String]
            do {
                let password = try CredentialSeal.open(user.session.sealedPassword, token: user.token)
                refused = try await submit(outgoing, user: user.session.user, password: password)
            } catch {
                plugin.context.logger.notice("webmail send failed", metadata: ["user": "\(user.session.user)", "error": "\(error)"])
                let text = (strings["compose_sendfailed"] ?? "") + " " + "\(error)"
                return try await composePage(user, mail, state: state, fields: form.fields, notice: nil, error: text)
            }
            try? sessions.noteRecipients(outgoing.recipients, user: user.session.user)
            plugin.context.logger.info("webmail message sent", metadata: ["user": "\(user.session.user)", "recipients": "\(outgoing.recipients.count)"])
            if let sent = try await mail.specialFolder("sent") {
                try await mail.append(outgoing.rendered(includeBcc: true), to: sent, flags: ["\\Seen"])
            }
            if let folder = state.answeredFolder, let uid = state.answeredUID {
                try? await mail.setFlag("\\Answered", on: true, uids: [uid], folder: folder)
            }
            if let old = state.draftUID, let drafts = try await mail.specialFolder("drafts") {
                try await mail.expunge(uids: [old], folder: drafts)
            }
            try sessions.deleteCompose(id: id)
            if !refused.isEmpty {
                plugin.context.logger.notice("webmail message partly refused", metadata: ["user": "\(user.session.user)", "refused": "\(refused)"])
                return Self.redirect("/mail?f=INBOX&sent=1&refused=" + Self.queryEscape(refused.joined(separator: "; ")))
            }
            return Self.redirect("/mail?f=INBOX&sent=1")
        }
    }

    /// The message from the form, or the text of what is wrong with it.
    private func buildMessage(_ fields: [String: String], _ state: ComposeState, _ user: SignedIn, _ mail: MailAccess,
                              requireRecipients: Bool) async throws -> Result<OutgoingMessage, ComposeError> {
        let strings = pages.strings(user.language)
        var lists: [[String]] = []
        for key in ["to", "cc", "bcc"] {
            switch AddressField.parse(fields[key] ?? "") {
            case .success(let list): lists.append(list)
            case .failure(let bad): return .failure(ComposeError(text: String(format: strings["compose_badaddress"] ?? "%@", bad.text)))
            }
        }
        if requireRecipients && lists.allSatisfy(\.isEmpty) {
            return .failure(ComposeError(text: strings["compose_norecipient"] ?? ""))
        }
        var attachments = try sessions.uploadData(composeID: state.id).map { OutgoingMessage.Attachment(filename: $0.filename, mimeType: $0.mimeType, data: $0.data) }
        if let folder = state.forwardedFolder, let uid = state.forwardedUID,
           let (_, raw) = try await mail.message(folder: folder, uid: uid, markSeen: false) {
            let subject = MessageView(raw: raw).subject
            attachments.append(.init(filename: (subject.isEmpty ? "message" : subject) + ".eml", mimeType: "message/rfc822", data: raw))
        }
        let total = attachments.reduce(0) { $0 + $1.data.count }
        if total > options.maxUploadSize {
            return .failure(ComposeError(text: String(format: strings["compose_toobig"] ?? "%@", Self.size(options.maxUploadSize))))
        }
        let identity = identities(user).first { $0.address == fields["from"] } ?? identities(user)[0]
        let domain = Self.domain(of: identity.address) ?? "localhost"
        return .success(OutgoingMessage(
            from: identity.address, fromName: identity.name, to: lists[0], cc: lists[1], bcc: lists[2],
            subject: fields["subject"] ?? "", body: fields["body"] ?? "", inReplyTo: state.inReplyTo, references: state.references,
            attachments: attachments, messageID: OutgoingMessage.newMessageID(domain: domain), date: Date()))
    }

    private func composePage(_ user: SignedIn, _ mail: MailAccess, state: ComposeState, fields: [String: String],
                             notice: String?, error: String?) async throws -> Response {
        let strings = pages.strings(user.language)
        let uploads = try sessions.uploads(composeID: state.id).map { u in
            ["id": String(u.id), "name": u.filename, "size": Self.size(u.size)] as [String: Any]
        }
        let data: [String: Any] = [
            "csrf": user.session.csrf, "user": user.session.user, "c": state.id,
            "folders": try await folderList(mail, current: "", strings: strings),
            "to": fields["to"] ?? "", "cc": fields["cc"] ?? "", "bcc": fields["bcc"] ?? "",
            "subject": fields["subject"] ?? "", "body": fields["body"] ?? "",
            "uploads": uploads, "hasUploads": !uploads.isEmpty,
            "forwardedAsAttachment": state.forwardedUID != nil,
            "notice": notice ?? "", "hasNotice": notice != nil, "error": error ?? "", "hasError": error != nil,
            "maxUpload": Self.size(options.maxUploadSize),
            "contacts": (try? sessions.contacts(user: user.session.user)) ?? [],
            "identities": identities(user).map { i in
                ["address": i.address, "label": i.name.map { "\($0) <\(i.address)>" } ?? i.address,
                 "selected": i.address == fields["from"]] as [String: Any]
            },
            "severalIdentities": identities(user).count > 1,
        ]
        return Self.html(pages.render("compose", brand: user.brandKey, language: user.language, data),
                         status: error == nil ? .ok : .unprocessableContent)
    }

    /// The identities a user may send as: the login's own address first, then the others.
    func identities(_ user: SignedIn) -> [Identity] {
        let login = user.session.user
        let own = login.contains("@") ? login : login + "@" + (Self.domain(of: login) ?? "localhost")
        return [Identity(address: own, name: user.preferences.displayName, signature: user.preferences.signature)]
            + (user.preferences.identities ?? []).filter { $0.address.lowercased() != own.lowercased() }
    }

    /// Attachments of a message being forwarded inline or a draft resumed become uploads.
    private func copyAttachments(_ view: MessageView, _ raw: [UInt8], into composeID: String) throws {
        for attachment in view.attachments {
            guard let part = MessageView.part(attachment.part, of: raw) else { continue }
            try sessions.addUpload(composeID: composeID, filename: attachment.filename, mimeType: attachment.mimeType,
                                   data: MessageView.decodedBody(part, raw))
        }
    }

    static func prefixed(_ prefix: String, _ subject: String) -> String {
        subject.lowercased().hasPrefix(prefix.lowercased()) ? subject : prefix + " " + subject
    }

    static func quoted(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasPrefix(">") ? ">" + $0 : "> " + $0 }
            .joined(separator: "\n")
    }

    /// The text to quote or forward: the plain part, else the HTML's text.
    static func quotableText(_ view: MessageView) -> String {
        if let plain = view.plainAlternative { return plain.replacingOccurrences(of: "\r\n", with: "\n") }
        switch view.body {
        case .plain(let text): return text.replacingOccurrences(of: "\r\n", with: "\n")
        case .html(let html): return HTMLText.text(of: html)
        case .none: return ""
        }
    }

    static func specs(_ raw: [UInt8], _ name: String) -> [String] {
        MIMEMessage(parsing: raw).root.fields.filter { $0.hasName(name) }
            .flatMap { MailAddressList(parsing: $0.value).mailboxes.map { $0.localPart + "@" + $0.domain } }
    }
}

struct ComposeError: Error, Equatable {
    var text: String
}

/// The readable text of an HTML body, for quoting in a reply: text tokens, with line breaks
/// where blocks end; scripts and styles contribute nothing.
enum HTMLText {
    static let blocks: Set<String> = ["p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table"]
    static let hidden: Set<String> = ["script", "style", "head", "title", "template"]

    static func text(of html: String) -> String {
        var out = ""
        var hiddenDepth = 0
        for token in HTMLTokenizer.tokenize(Array(html.utf8)) {
            switch token {
            case .startTag(let name, _, _):
                if hidden.contains(name) { hiddenDepth += 1 }
                if blocks.contains(name) && !out.hasSuffix("\n") && !out.isEmpty { out += "\n" }
            case .endTag(let name):
                if hidden.contains(name) { hiddenDepth = max(0, hiddenDepth - 1) }
                if blocks.contains(name) && !out.hasSuffix("\n") { out += "\n" }
            case .text(let text):
                if hiddenDepth == 0 { out += text.replacingOccurrences(of: "\n", with: " ") }
            default:
                break
            }
        }
        return out.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
