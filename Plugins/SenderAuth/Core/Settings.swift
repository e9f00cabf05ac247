import Foundation
import PluginAPI

/// What a listener does with a failed check. Each listener that runs the `sender-auth` filter
/// has one, from `[plugin.sender-auth.listeners.NAME]`; listeners not named there get the default.
package struct ListenerPolicy: Sendable, Equatable {
    /// SPF `fail` (RFC 7208 §8.4): refuse at RCPT, or only record the result.
    package enum SPFAction: String, Sendable, CaseIterable {
        case reject, record
    }

    /// A DMARC `fail` under the author domain's policy (RFC 7489 §6.7).
    package enum DMARCAction: String, Sendable, CaseIterable {
        /// As the domain asks: `p=reject` refused, `p=quarantine` to the hold queue.
        case enforce
        /// Neither refused nor held by `p=reject`: both go to the hold queue.
        case quarantine
        /// `p=reject` refused, `p=quarantine` delivered into the recipient's Junk mailbox (what
        /// large mailbox providers do).
        case junk
        /// Only recorded in Authentication-Results (and the aggregate report).
        case record
    }

    package var spf: SPFAction
    package var dmarc: DMARCAction

    package init(spf: SPFAction = .record, dmarc: DMARCAction = .enforce) {
        self.spf = spf
        self.dmarc = dmarc
    }
}

/// A signing key of one domain (DKIM) or of the site's seals (ARC), from the config.
package struct SigningKeySetting: Sendable, Equatable {
    package var domain: String
    package var selector: String
    /// Absolute (relative paths are resolved under data_dir when the settings are read).
    package var keyFile: String
}

/// The validated `[plugin.sender-auth]` section.
package struct SenderAuthSettings: Sendable {
    /// RFC 8601 §2.5; nil: the name the listener greets with.
    package var authservID: String?
    package var defaultPolicy: ListenerPolicy
    package var listenerPolicies: [String: ListenerPolicy]
    /// Clients whose mail is not verified (the site's own relays); authenticated clients never are.
    package var trustedNetworks: [IPNetwork]
    package var maxSignatures: Int
    package var publicSuffixList: String
    package var dkimKeys: [SigningKeySetting]
    package var arcKey: SigningKeySetting?
    package var reports: DMARCReportSettings?

    package func policy(forListener name: String) -> ListenerPolicy { listenerPolicies[name] ?? defaultPolicy }
}

/// Who sends the daily DMARC aggregate reports (RFC 7489 §7.2), and where observations are kept.
package struct DMARCReportSettings: Sendable, Equatable {
    package var organization: String
    /// The report's `From` and `email`.
    package var address: String
    /// Absolute path of the folder holding the observations database.
    package var directory: String
    /// The largest report sent to a `rua` address that gives no `!size` limit.
    package var maxReportBytes: Int
}

package struct SenderAuthConfigError: Error, CustomStringConvertible {
    package let description: String
    package init(_ description: String) { self.description = description }
}

extension SenderAuthSettings {
    package static var schema: ConfigSchema {
        let key = ConfigSchema([
            ConfigField("domain", .string, required: true, help: "the signing domain (d=)"),
            ConfigField("selector", .string, required: true, help: "the selector (s=): the key's record is at SELECTOR._domainkey.DOMAIN"),
            ConfigField("key_file", .string, required: true,
                        help: "a PEM private key (RSA of 1,024 bits or more, or Ed25519), as `postern admin dkim keygen` writes; relative to data_dir"),
        ])
        let listener = ConfigSchema([
            ConfigField("spf", .oneOf(ListenerPolicy.SPFAction.allCases.map(\.rawValue)), default: .string("record"),
                        help: "SPF fail: \"reject\" at RCPT (550 5.7.23), or \"record\" only"),
            ConfigField("dmarc", .oneOf(ListenerPolicy.DMARCAction.allCases.map(\.rawValue)), default: .string("enforce"),
                        help: "DMARC fail: \"enforce\" the domain's p= (quarantine: hold queue), \"junk\" (quarantine: the Junk mailbox), \"quarantine\" (hold queue, never refuse), or \"record\" only"),
        ])
        return ConfigSchema([
            ConfigField("authserv_id", .string,
                        help: "the authserv-id of Authentication-Results (RFC 8601 §2.5); default: the listener's host name"),
            ConfigField("spf", .oneOf(ListenerPolicy.SPFAction.allCases.map(\.rawValue)), default: .string("record"),
                        help: "SPF fail on listeners not in [listeners]: \"reject\" or \"record\""),
            ConfigField("dmarc", .oneOf(ListenerPolicy.DMARCAction.allCases.map(\.rawValue)), default: .string("enforce"),
                        help: "DMARC fail on listeners not in [listeners]: \"enforce\", \"junk\", \"quarantine\" or \"record\""),
            ConfigField("listeners", .map(.table(listener)), help: "[plugin.sender-auth.listeners.NAME]: the policy of one listener"),
            ConfigField("trusted_networks", .array(.string), default: .array([.string("127.0.0.0/8"), .string("::1/128")]),
                        help: "clients whose mail is not verified (the site's own hosts); authenticated clients never are"),
            ConfigField("max_signatures", .integer(1...50), default: .integer(5), help: "DKIM signatures verified per message"),
            ConfigField("public_suffix_list", .string, default: .string("/usr/share/publicsuffix/public_suffix_list.dat"),
                        help: "the Public Suffix List (Debian package publicsuffix): DMARC's organisational domains"),
            ConfigField("dkim", .array(.table(key)), default: .array([]),
                        help: "[[plugin.sender-auth.dkim]]: a signing key per sending domain; mail whose From is in DOMAIN (or under it) is signed on its way out"),
            ConfigField("arc", .table(key), help: "[plugin.sender-auth.arc]: the key that seals forwarded mail (RFC 8617)"),
            ConfigField("reports", .table(ConfigSchema([
                ConfigField("organization", .string, required: true, help: "org_name of the aggregate reports"),
                ConfigField("address", .string, required: true, help: "the reports' sender address"),
                ConfigField("directory", .string, default: .string("dmarc"), help: "where observations are kept; relative to data_dir"),
                ConfigField("max_report_size", .size, default: .string("10M"), help: "the largest report sent where rua gives no limit"),
            ])), help: "[plugin.sender-auth.reports]: send DMARC aggregate reports (rua) daily"),
        ])
    }

    /// The settings of a validated section; relative paths are resolved under `dataDirectory`.
    package init(_ config: ConfigSection, dataDirectory: String) throws {
        func path(_ p: String) -> String { p.hasPrefix("/") ? p : dataDirectory + "/" + p }
        func policy(_ section: ConfigSection, defaults: ListenerPolicy) -> ListenerPolicy {
            ListenerPolicy(spf: section.string("spf").flatMap(ListenerPolicy.SPFAction.init(rawValue:)) ?? defaults.spf,
                           dmarc: section.string("dmarc").flatMap(ListenerPolicy.DMARCAction.init(rawValue:)) ?? defaults.dmarc)
        }
        func key(_ section: ConfigSection, _ origin: String) throws -> SigningKeySetting {
            guard let domain = section.string("domain"), let selector = section.string("selector"), let file = section.string("key_file") else {
                throw SenderAuthConfigError("\(origin): domain, selector and key_file are required")
            }
            guard !domain.isEmpty, !domain.contains(" "), !selector.isEmpty, !selector.contains(" ") else {
                throw SenderAuthConfigError("\(origin): '\(domain)' and '\(selector)' must be DNS names")
            }
            return SigningKeySetting(domain: domain.lowercased(), selector: selector, keyFile: path(file))
        }
        authservID = config.string("authserv_id")
        defaultPolicy = policy(config, defaults: ListenerPolicy())
        var listeners: [String: ListenerPolicy] = [:]
        if case .table(let table)? = config["listeners"] {
            for (name, value) in table {
                guard case .table(let fields) = value else { throw SenderAuthConfigError("[plugin.sender-auth.listeners.\(name)] must be a table") }
                listeners[name] = policy(ConfigSection(fields), defaults: defaultPolicy)
            }
        }
        listenerPolicies = listeners
        trustedNetworks = try (config.strings("trusted_networks") ?? ["127.0.0.0/8", "::1/128"]).map { text in
            guard let network = IPNetwork(text) else {
                throw SenderAuthConfigError("[plugin.sender-auth] trusted_networks: '\(text)' is not an address or CIDR network")
            }
            return network
        }
        maxSignatures = config.int("max_signatures") ?? 5
        publicSuffixList = config.string("public_suffix_list") ?? "/usr/share/publicsuffix/public_suffix_list.dat"
        var keys: [SigningKeySetting] = []
        if case .array(let items)? = config["dkim"] {
            for (i, item) in items.enumerated() {
                guard case .table(let fields) = item else { throw SenderAuthConfigError("[[plugin.sender-auth.dkim]] #\(i + 1) must be a table") }
                let k = try key(ConfigSection(fields), "[[plugin.sender-auth.dkim]] #\(i + 1)")
                if keys.contains(where: { $0.domain == k.domain }) {
                    throw SenderAuthConfigError("[[plugin.sender-auth.dkim]]: two keys for \(k.domain); keep one per domain")
                }
                keys.append(k)
            }
        }
        dkimKeys = keys
        // An absent table arrives empty (or holding only its defaults).
        arcKey = try config.section("arc").flatMap { $0.values.isEmpty ? nil : try key($0, "[plugin.sender-auth.arc]") }
        if let section = config.section("reports"), section.string("organization") != nil || section.string("address") != nil {
            guard let organization = section.string("organization"), let address = section.string("address"), address.contains("@") else {
                throw SenderAuthConfigError("[plugin.sender-auth.reports]: give organization and address (the reports' sender, user@domain)")
            }
            reports = DMARCReportSettings(organization: organization, address: address,
                                          directory: path(section.string("directory") ?? "dmarc"),
                                          maxReportBytes: section.size("max_report_size") ?? 10 << 20)
        } else {
            reports = nil
        }
    }
}
