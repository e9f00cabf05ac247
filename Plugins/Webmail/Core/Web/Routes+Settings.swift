import Foundation
import PluginAPI
import PluginHTTP

extension Webmail {
    func addSettingsRoutes(_ router: Router<WebmailRequestContext>) {
        router.get("/settings") { request, context -> Response in
            let saved = request.uri.queryParameters["saved"] == "1"
            let account = request.uri.queryParameters["account"].map(String.init)
            return try await self.signedInPage(request, context) { user, mail in
                try await self.settingsPage(user, mail, saved: saved, accountMessage: account)
            }
        }
        router.post("/settings") { request, context -> Response in
            guard let user = try self.signedIn(request) else { return Self.redirect("/login") }
            let form = try await Self.form(request, context: context)
            guard form["csrf"] == user.session.csrf else { return self.errorPage(user, "Forbidden: the form has expired.", status: .forbidden) }
            var prefs = user.preferences
            if let language = form["language"], PageRenderer.languages.contains(language) { prefs.language = language }
            if let size = form["page_size"].flatMap(Int.init), (5...500).contains(size) { prefs.pageSize = size }
            if let zone = form["time_zone"], TimeZone(identifier: zone) != nil { prefs.timeZone = zone }
            if form["op"] == "add_identity" {
                guard case .success(let addresses) = AddressField.parse(form["identity_address"] ?? ""), addresses.count == 1 else {
                    return Self.redirect("/settings?account=badaddress")
                }
                let name = (form["identity_name"] ?? "").trimmingCharacters(in: .whitespaces)
                let signature = (form["identity_signature"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
                var list = (prefs.identities ?? []).filter { $0.address.lowercased() != addresses[0].lowercased() }
                list.append(Identity(address: addresses[0], name: name.isEmpty ? nil : name, signature: signature.isEmpty ? nil : signature))
                prefs.identities = Array(list.prefix(20))
                try self.sessions.setPreferences(prefs, user: user.session.user)
                return Self.redirect("/settings?saved=1")
            }
            if form["op"] == "remove_identity", let address = form["identity_address"] {
                prefs.identities = (prefs.identities ?? []).filter { $0.address != address }
                try self.sessions.setPreferences(prefs, user: user.session.user)
                return Self.redirect("/settings?saved=1")
            }
            if let signature = form["signature"] {
                let clean = signature.replacingOccurrences(of: "\r\n", with: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
                prefs.signature = clean.isEmpty ? nil : String(clean.prefix(2000))
            }
            if let name = form["display_name"] {
                let clean = name.trimmingCharacters(in: .whitespaces)
                prefs.displayName = clean.isEmpty ? nil : String(clean.prefix(100))
            }
            try self.sessions.setPreferences(prefs, user: user.session.user)
            return Self.redirect("/settings?saved=1")
        }
    }

    func settingsPage(_ user: SignedIn, _ mail: MailAccess, saved: Bool, accountMessage: String?,
                      newAppPassword: (name: String, secret: String)? = nil) async throws -> Response {
        let strings = pages.strings(user.language)
        let names = ["en": "English", "de": "Deutsch", "fr": "Français", "ja": "日本語"]
        let pageSize = user.preferences.pageSize ?? options.pageSize
        let data: [String: Any] = [
            "csrf": user.session.csrf, "user": user.session.user,
            "folders": try await folderList(mail, current: "", strings: strings),
            "languages": PageRenderer.languages.map { ["code": $0, "name": names[$0] ?? $0, "selected": $0 == user.language] },
            "pageSizes": [10, 25, 50, 100, 200].map { ["value": $0, "selected": $0 == pageSize] },
            "timeZone": user.preferences.timeZone ?? "UTC",
            "saved": saved, "displayName": user.preferences.displayName ?? "", "signature": user.preferences.signature ?? "",
            "identities": (user.preferences.identities ?? []).map { ["address": $0.address, "name": $0.name ?? ""] },
        ]
        var page = data
        if let account = await accountSettings(user, message: accountMessage, newAppPassword: newAppPassword) {
            page["account"] = account
        } else {
            page["accountRemote"] = true
        }
        return Self.html(pages.render("settings", brand: user.brandKey, language: user.language, page))
    }

    func addStaticRoutes(_ router: Router<WebmailRequestContext>) {
        let types = ["css": "text/css; charset=utf-8", "js": "text/javascript; charset=utf-8", "svg": "image/svg+xml",
                     "png": "image/png", "webmanifest": "application/manifest+json"]
        router.get("/static/:file") { _, context -> Response in
            let file = context.parameters.get("file") ?? ""
            guard file.range(of: "^[a-z0-9-]+\\.[a-z]+$", options: .regularExpression) != nil,
                  let type = types[String(file.split(separator: ".").last!)],
                  let data = FileManager.default.contents(atPath: self.pages.resources.appendingPathComponent("static/" + file).path) else {
                return Response(status: .notFound)
            }
            return Response(status: .ok, headers: [.contentType: type, .cacheControl: "public, max-age=3600"],
                            body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
        router.get("/manifest.webmanifest") { request, _ -> Response in
            let brand = self.pages.brand(self.pages.brandKey(for: Self.host(request)))
            let manifest: [String: Any] = [
                "name": brand.product ?? "Postern Mail", "short_name": brand.product ?? "Mail", "start_url": "/mail?f=INBOX",
                "display": "standalone", "background_color": "#ffffff", "theme_color": brand.primaryColor ?? "#1d4f91",
                "icons": [["src": "/static/icon.svg", "sizes": "any", "type": "image/svg+xml"],
                          ["src": "/static/icon-192.png", "sizes": "192x192", "type": "image/png"]],
            ]
            let data = try JSONSerialization.data(withJSONObject: manifest, options: [.sortedKeys])
            return Response(status: .ok, headers: [.contentType: "application/manifest+json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
        // The brand's colours as CSS (no inline style is allowed by the page CSP).
        router.get("/brand.css") { request, _ -> Response in
            let key = request.uri.queryParameters["b"].map(String.init).flatMap { self.pages.brandKey(for: $0) }
            let brand = self.pages.brand(key)
            let css = ":root { --brand: \(brand.primaryColor ?? "#1d4f91"); --brand-light: \(brand.accentColor ?? "#e8eef7"); }\n"
            return Response(status: .ok, headers: [.contentType: "text/css; charset=utf-8", .cacheControl: "public, max-age=300"],
                            body: .init(byteBuffer: ByteBuffer(string: css)))
        }
        router.get("/brand/logo") { request, _ -> Response in
            guard let key = request.uri.queryParameters["b"].map(String.init).flatMap({ self.pages.brandKey(for: $0) }),
                  let logo = self.pages.brand(key).logo, let directory = self.pages.brandsDirectory,
                  !logo.contains("/"), !logo.hasPrefix("."),
                  let data = FileManager.default.contents(atPath: "\(directory)/\(key)/\(logo)") else {
                return Response(status: .notFound)
            }
            let type = logo.hasSuffix(".svg") ? "image/svg+xml" : logo.hasSuffix(".png") ? "image/png" : "image/jpeg"
            return Response(status: .ok, headers: [.contentType: type, .cacheControl: "public, max-age=300",
                                                   .contentSecurityPolicy: "default-src 'none'; style-src 'unsafe-inline'; sandbox"],
                            body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
    }
}
