import Foundation
import PluginAPI
import PluginHTTP

/// The white pages (every loaded directory plugin's `DirectorySearch`: name, address, phone),
/// each entry a link to a new message; and the per-user defaults a directory keeps, read at
/// login.
extension Webmail {
    func addDirectoryRoutes(_ router: Router<WebmailRequestContext>) {
        router.get("/directory") { request, context -> Response in
            try await self.signedInPage(request, context) { user, mail in try await self.directoryPage(request, user, mail) }
        }
        // Compose's address completion (static/app.js): "Name <address>" strings as JSON. Same
        // origin only by the cookie's SameSite and no CORS header; a failing directory gives [].
        router.get("/directory/suggest") { request, _ -> Response in
            guard try self.signedIn(request) != nil else { return Response(status: .unauthorized) }
            let text = (request.uri.queryParameters["q"].map(String.init) ?? "").trimmingCharacters(in: .whitespaces)
            var suggestions: [String] = []
            if text.count >= 2 {
                for (_, directory) in self.plugin.context.services.directorySearches {
                    for e in (try? await directory.search(text, limit: Self.suggestionLimit)) ?? [] {
                        suggestions.append(Self.mailbox(name: e.name, address: e.address))
                    }
                }
            }
            var seen = Set<String>()
            suggestions = Array(suggestions.filter { seen.insert($0.lowercased()).inserted }.prefix(Self.suggestionLimit))
            let body = try JSONEncoder().encode(suggestions)
            return Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                            body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
    }

    static let suggestionLimit = 10

    /// `Name <address>` as an address field takes it: the name quoted when it holds characters
    /// that are special in an address list (RFC 5322 §3.2.3).
    static func mailbox(name: String, address: String) -> String {
        guard !name.isEmpty, name.lowercased() != address.lowercased() else { return address }
        let special = CharacterSet(charactersIn: "()<>[]:;@\\,.\"")
        let display = name.unicodeScalars.contains { special.contains($0) }
            ? "\"" + name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
            : name
        return "\(display) <\(address)>"
    }

    private func directoryPage(_ request: Request, _ user: SignedIn, _ mail: MailAccess) async throws -> Response {
        let strings = pages.strings(user.language)
        let text = (request.uri.queryParameters["q"].map(String.init) ?? "").trimmingCharacters(in: .whitespaces)
        let directories = plugin.context.services.directorySearches
        var entries: [DirectoryEntry] = []
        var unavailable = false
        if !text.isEmpty {
            for (name, directory) in directories {
                do {
                    entries += try await directory.search(text, limit: Self.directoryLimit)
                } catch {
                    // One directory down is said on the page; the others still answer.
                    unavailable = true
                    plugin.context.logger.warning("white-pages search failed", metadata: ["directory": "\(name)", "error": "\(error)"])
                }
            }
        }
        // Several directories may know one person: each address once, sorted by name.
        var seen = Set<String>()
        entries = entries.filter { seen.insert($0.address.lowercased()).inserted }
            .sorted { $0.name.lowercased() < $1.name.lowercased() }
        let rows: [[String: Any]] = entries.prefix(Self.directoryLimit).map { e in
            var row: [String: Any] = ["name": e.name, "address": e.address, "composeQuery": Self.queryEscape(e.address)]
            if let phone = e.phone, !phone.isEmpty { row["phone"] = phone }
            return row
        }
        var data: [String: Any] = [
            "csrf": user.session.csrf, "user": user.session.user,
            "folders": try await folderList(mail, current: "", strings: strings),
            "q": text, "results": rows, "count": rows.count,
        ]
        // Mustache takes an empty string or list as true: keys are set only when they hold.
        if !text.isEmpty { data["searched"] = true }
        if rows.isEmpty { data["empty"] = true }
        if unavailable { data["unavailable"] = true }
        if directories.isEmpty { data["noDirectory"] = true }
        return Self.html(pages.render("directory", brand: user.brandKey, language: user.language, data))
    }

    static let directoryLimit = 50

    /// Asks the directories for the user's defaults and keeps them beside the session store's
    /// preferences. A directory that cannot answer leaves the last defaults in place: the
    /// login goes on.
    func loadDirectoryDefaults(user: String) async {
        for (name, directory) in plugin.context.services.directorySearches {
            do {
                guard let profile = try await directory.profile(of: user) else { continue }
                try sessions.setDirectoryDefaults(Self.preferences(from: profile), user: user)
                return
            } catch {
                plugin.context.logger.notice("directory defaults not read", metadata: ["directory": "\(name)", "user": "\(user)", "error": "\(error)"])
            }
        }
    }

    /// A directory profile as webmail settings: a language the webmail has (by its primary
    /// subtag, so "de-CH" is German), a time zone the system knows, a name of sane length.
    static func preferences(from profile: DirectoryProfile) -> WebPreferences {
        var prefs = WebPreferences()
        if let tag = profile.language?.split(whereSeparator: { $0 == "-" || $0 == "_" }).first?.lowercased(),
           PageRenderer.languages.contains(tag) {
            prefs.language = tag
        }
        if let zone = profile.timeZone, TimeZone(identifier: zone) != nil { prefs.timeZone = zone }
        if let name = profile.displayName?.trimmingCharacters(in: .whitespaces), !name.isEmpty { prefs.displayName = String(name.prefix(100)) }
        return prefs
    }
}
