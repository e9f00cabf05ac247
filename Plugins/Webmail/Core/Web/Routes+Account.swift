import Foundation
import PluginAPI
import PluginHTTP

/// The account's own settings: password, forwarding and vacation. These live in the account
/// store, not in IMAP, so they are offered where the webmail runs beside the store (the host
/// has an account service: all-in-one, or a webmail role on a store node); elsewhere the page
/// says the administrator manages them.
extension Webmail {
    var accounts: (any AccountStore)? { plugin.context.services.accounts }

    func addAccountRoutes(_ router: Router<WebmailRequestContext>) {
        router.post("/account") { request, context -> Response in
            guard let user = try self.signedIn(request) else { return Self.redirect("/login") }
            let form = try await Self.form(request, context: context)
            guard form["csrf"] == user.session.csrf else { return self.errorPage(user, "Forbidden: the form has expired.", status: .forbidden) }
            let strings = self.pages.strings(user.language)
            guard let accounts = self.accounts else { return self.errorPage(user, strings["account_remote"] ?? "", status: .conflict) }
            let name = user.session.user
            switch form["op"] {
            case "password":
                let current = form["current"] ?? "", new = form["new"] ?? "", again = form["again"] ?? ""
                guard try await self.verify(user: name, password: current) else {
                    return Self.redirect("/settings?account=wrongpassword")
                }
                guard new == again else { return Self.redirect("/settings?account=mismatch") }
                guard new.count >= 8 else { return Self.redirect("/settings?account=short") }
                try await accounts.setPassword(account: name, password: new)
                // This session goes on with the new password; the others fail their next IMAP
                // login and end, which is what a password change should do to other devices.
                try self.sessions.reseal(id: user.session.id, password: new, token: user.token)
                self.pool.close(sessionID: user.session.id)
                self.plugin.context.logger.info("webmail password changed", metadata: ["user": "\(name)"])
                return Self.redirect("/settings?account=passwordchanged")
            case "forwarding":
                let targets: [String]
                switch AddressField.parse(form["forward_to"] ?? "") {
                case .success(let list): targets = list
                case .failure: return Self.redirect("/settings?account=badaddress")
                }
                try await accounts.setForwarding(account: name, to: targets, keepCopy: form["keep_copy"] == "1" || targets.isEmpty)
                return Self.redirect("/settings?account=saved")
            case "vacation":
                if form["vacation_on"] == "1" {
                    let subject = (form["vacation_subject"] ?? "").trimmingCharacters(in: .whitespaces)
                    try await accounts.setVacation(account: name, Vacation(subject: subject.isEmpty ? (strings["account_vacationdefault"] ?? "Away") : subject,
                                                                          body: form["vacation_body"] ?? ""))
                } else {
                    try await accounts.setVacation(account: name, nil)
                }
                return Self.redirect("/settings?account=saved")
            case "app_password_create":
                guard let store = accounts as? any AppPasswordStore else { return Self.redirect("/settings") }
                let label = (form["name"] ?? "").trimmingCharacters(in: .whitespaces)
                let scopes = Set(AppPasswordScope.allCases.filter { form["scope_\($0.rawValue)"] == "1" })
                let secret: String
                do {
                    secret = try await store.createAppPassword(account: name, name: label, scopes: scopes)
                } catch let error as AccountError {
                    self.plugin.context.logger.notice("app password refused", metadata: ["user": "\(name)", "error": "\(error)"])
                    return Self.redirect("/settings?account=apppwbad#app-passwords")
                }
                self.plugin.context.logger.info("app password created", metadata: ["user": "\(name)", "name": "\(label)"])
                // Shown in this response only (pages are never cached): no redirect that would
                // have to carry the secret in a URL or keep it in the session.
                return try await self.signedInPage(request, context) { user, mail in
                    try await self.settingsPage(user, mail, saved: false, accountMessage: nil, newAppPassword: (label, secret))
                }
            case "app_password_revoke":
                guard let store = accounts as? any AppPasswordStore, let label = form["name"] else { return Self.redirect("/settings") }
                try? await store.revokeAppPassword(account: name, name: label)
                self.plugin.context.logger.info("app password revoked", metadata: ["user": "\(name)", "name": "\(label)"])
                return Self.redirect("/settings?account=apppwrevoked#app-passwords")
            default:
                return Self.redirect("/settings")
            }
        }
    }

    /// Checks a password with the host's credential backends (the same ones IMAP asks).
    private func verify(user: String, password: String) async throws -> Bool {
        for (_, backend) in plugin.context.services.credentialBackends {
            switch try await backend.verifyPassword(user: user, password: password) {
            case .verified: return true
            case .unknownUser: continue
            default: return false
            }
        }
        return false
    }

    /// What the settings page shows of the account (nil when the store is elsewhere).
    func accountSettings(_ user: SignedIn, message: String?, newAppPassword: (name: String, secret: String)? = nil) async -> [String: Any]? {
        guard let accounts else { return nil }
        let forwarding = try? await accounts.forwarding(account: user.session.user)
        let vacation = try? await accounts.vacation(account: user.session.user)
        let strings = pages.strings(user.language)
        var data: [String: Any] = [
            "forwardTo": forwarding?.to.joined(separator: ", ") ?? "", "keepCopy": forwarding?.keepCopy ?? true,
            "vacationOn": vacation != nil, "vacationSubject": vacation?.subject ?? "", "vacationBody": vacation?.body ?? "",
        ]
        if let message, let text = strings["account_\(message)"] {
            data["message"] = text
            data["isError"] = ["wrongpassword", "mismatch", "short", "badaddress", "apppwbad"].contains(message)
        }
        if let store = accounts as? any AppPasswordStore {
            let formatter = DateFormatter()
            formatter.dateFormat = "yyyy-MM-dd HH:mm"
            formatter.timeZone = TimeZone(identifier: user.preferences.timeZone ?? "UTC") ?? TimeZone(identifier: "UTC")!
            func date(_ t: Int64?) -> String {
                t.map { formatter.string(from: Date(timeIntervalSince1970: TimeInterval($0))) } ?? (strings["apppw_never"] ?? "never")
            }
            let list = ((try? await store.appPasswords(account: user.session.user)) ?? []).map {
                ["name": $0.name, "scopes": $0.scopes.map { $0.rawValue.uppercased() }.joined(separator: ", "),
                 "created": date($0.created), "lastUsed": date($0.lastUsed)]
            }
            var section: [String: Any] = ["list": list]
            // Mustache takes an empty string or list as true: keys only when there is something.
            if !list.isEmpty { section["hasList"] = true }
            if let created = newAppPassword { section["created"] = ["name": created.name, "secret": created.secret] }
            data["appPasswords"] = section
        }
        return data
    }
}
