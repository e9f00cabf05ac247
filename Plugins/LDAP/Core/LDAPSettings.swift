import Foundation
import PluginAPI

/// How the plugin checks passwords.
enum LDAPAuthMode: String, Sendable, CaseIterable {
    /// Bind as the DN built from `bind_dn_template` with the user's password.
    case bind
    /// Search the user's entry with `user_filter` (as the service account), then bind as its DN.
    case searchBind = "search_bind"
    /// Search the entry, then ask the server to compare the password attribute (needs a service
    /// account allowed to compare it; the password never leaves as a bind).
    case compare
    /// Search the entry, read the password attribute as the service account and verify it here
    /// (`{SSHA}`, `{SSHA512}`, `{CRYPT}`, crypt(3) strings or cleartext), as Dovecot's LDAP passdb
    /// does without auth_bind. OpenLDAP's compare only matches stored cleartext, so a directory
    /// of hashed passwords needs this mode or a bind mode.
    case password
}

/// The `[plugin.ldap]` section, validated (README.md lists every key).
struct LDAPSettings: Sendable {
    var servers: [LDAPConnectionSettings]
    var baseDN: String
    var bindDN: String
    var bindPassword: String
    var authMode: LDAPAuthMode
    var bindDNTemplate: LDAPTemplate?
    var userFilter: LDAPTemplate
    var recipientFilter: LDAPTemplate
    var searchFilter: LDAPTemplate
    var mailAttribute: String
    var aliasAttribute: String
    var routingAttribute: String
    var mailHostAttribute: String
    var quotaAttribute: String
    var suspendedAttribute: String
    var suspendedValue: String
    var memberAttributes: [String]
    var groupClasses: [String]
    var nameAttribute: String
    var phoneAttribute: String
    /// Per-user webmail defaults (DirectoryProfile); empty: not read.
    var displayNameAttribute: String
    var languageAttribute: String
    var timeZoneAttribute: String
    var passwordAttribute: String
    /// `mailHost` values that mean this node: such users are delivered here.
    var localMailHosts: Set<String>
    /// `transport[:nexthop]` for users on another `mailHost`, `%h` being that host.
    var mailHostTransport: String
    var cacheTTL: Double
    var poolSize: Int
    var provisionAccounts: Bool
    var aliasTable: String
    var transportTable: String
    var mailHostTable: String
    var searchLimit: Int

    static let schema = ConfigSchema([
        ConfigField("servers", .array(.string), required: true,
                    help: "ldap:// or ldaps:// URIs, tried in order (failover)"),
        ConfigField("base_dn", .string, required: true, help: "where users and groups are searched"),
        ConfigField("bind_dn", .string, default: .string(""), help: "the service account searches as; empty: anonymous"),
        ConfigField("bind_password", .string, default: .string("")),
        ConfigField("bind_password_file", .string, default: .string(""), help: "read the password from this file instead (first line)"),
        ConfigField("auth_mode", .oneOf(LDAPAuthMode.allCases.map(\.rawValue)), default: .string("search_bind")),
        ConfigField("bind_dn_template", .string, default: .string(""), help: "for auth_mode = \"bind\": e.g. \"uid=%n,ou=people,dc=example,dc=org\""),
        ConfigField("user_filter", .string, default: .string("(&(objectClass=inetOrgPerson)(|(mail=%u)(uid=%u)))")),
        ConfigField("recipient_filter", .string, default: .string("(|(mail=%u)(mailLocalAddress=%u))")),
        ConfigField("search_filter", .string, default: .string("(&(objectClass=inetOrgPerson)(|(cn=*%s*)(mail=*%s*)(telephoneNumber=*%s*)))"),
                    help: "the white-pages search, %s the text typed"),
        ConfigField("mail_attribute", .string, default: .string("mail")),
        ConfigField("alias_attribute", .string, default: .string("mailLocalAddress")),
        ConfigField("routing_attribute", .string, default: .string("mailRoutingAddress")),
        ConfigField("mail_host_attribute", .string, default: .string("mailHost")),
        ConfigField("quota_attribute", .string, default: .string(""), help: "bytes; empty: no quota from the directory"),
        ConfigField("suspended_attribute", .string, default: .string(""), help: "an entry whose attribute has suspended_value may not log in"),
        ConfigField("suspended_value", .string, default: .string("")),
        ConfigField("member_attributes", .array(.string), default: .array([.string("member"), .string("uniqueMember")])),
        ConfigField("group_classes", .array(.string), default: .array([.string("groupOfNames"), .string("groupOfUniqueNames")])),
        ConfigField("name_attribute", .string, default: .string("cn")),
        ConfigField("phone_attribute", .string, default: .string("telephoneNumber")),
        ConfigField("display_name_attribute", .string, default: .string("displayName"),
                    help: "the webmail's default sender name (falls back to name_attribute)"),
        ConfigField("language_attribute", .string, default: .string("preferredLanguage"), help: "the webmail's default language"),
        ConfigField("time_zone_attribute", .string, default: .string(""), help: "the webmail's default time zone (an IANA name); empty: none"),
        ConfigField("password_attribute", .string, default: .string("userPassword"), help: "for auth_mode = \"compare\" and \"password\""),
        ConfigField("local_mail_hosts", .array(.string), default: .array([]), help: "mailHost values that mean this node"),
        ConfigField("mail_host_transport", .string, default: .string("smtp:[%h]"),
                    help: "transport[:nexthop] for users on another mailHost; %h is the host"),
        ConfigField("start_tls", .boolean, default: .boolean(false)),
        ConfigField("ca_file", .string, default: .string(""), help: "CA certificates (PEM) for StartTLS and ldaps://"),
        ConfigField("verify_certificates", .boolean, default: .boolean(true)),
        ConfigField("cache_ttl", .duration, default: .string("60s"), help: "how long directory answers are reused; 0: never"),
        ConfigField("pool_size", .integer(1...64), default: .integer(4), help: "threads and connections"),
        ConfigField("connect_timeout", .duration, default: .string("3s")),
        ConfigField("timeout", .duration, default: .string("5s"), help: "limit on each LDAP operation"),
        ConfigField("provision_accounts", .boolean, default: .boolean(true),
                    help: "create a store account (mailboxes, no password) for a directory user at first login or delivery"),
        ConfigField("alias_table", .string, default: .string("ldap-aliases"), help: "the lookup table name for the queue's alias_tables"),
        ConfigField("transport_table", .string, default: .string("ldap-transport"), help: "the lookup table name for the queue's transport_tables"),
        ConfigField("mail_host_table", .string, default: .string("ldap-mailhost"), help: "the lookup table name for the access proxy's route_tables"),
        ConfigField("search_limit", .integer(1...1000), default: .integer(50), help: "most white-pages entries per search"),
    ])

    enum SettingsError: Error, CustomStringConvertible {
        case invalid(String)
        var description: String { if case .invalid(let s) = self { return s }; return "" }
    }

    init(_ c: ConfigSection, dataDirectory: String) throws {
        let absolute: (String) -> String = { $0.isEmpty || $0.hasPrefix("/") ? $0 : dataDirectory + "/" + $0 }
        let uris = c.strings("servers") ?? []
        guard !uris.isEmpty else { throw SettingsError.invalid("servers: at least one ldap:// or ldaps:// URI") }
        for uri in uris where !(uri.lowercased().hasPrefix("ldap://") || uri.lowercased().hasPrefix("ldaps://")) {
            throw SettingsError.invalid("servers: \"\(uri)\" is not an ldap:// or ldaps:// URI")
        }
        let connectTimeout = Int((c.duration("connect_timeout") ?? 3).rounded(.up))
        let timeout = Int((c.duration("timeout") ?? 5).rounded(.up))
        servers = uris.map {
            LDAPConnectionSettings(uri: $0, startTLS: c.bool("start_tls") ?? false, caFile: absolute(c.string("ca_file") ?? ""),
                                   verifyCertificates: c.bool("verify_certificates") ?? true,
                                   connectTimeout: max(1, connectTimeout), operationTimeout: max(1, timeout))
        }
        baseDN = c.string("base_dn") ?? ""
        bindDN = c.string("bind_dn") ?? ""
        let passwordFile = absolute(c.string("bind_password_file") ?? "")
        if !passwordFile.isEmpty {
            guard let text = try? String(contentsOfFile: passwordFile, encoding: .utf8) else {
                throw SettingsError.invalid("bind_password_file: cannot read \(passwordFile)")
            }
            bindPassword = String(text.split(separator: "\n", omittingEmptySubsequences: false).first ?? "")
        } else {
            bindPassword = c.string("bind_password") ?? ""
        }
        authMode = LDAPAuthMode(rawValue: c.string("auth_mode") ?? "search_bind") ?? .searchBind
        let template = c.string("bind_dn_template") ?? ""
        if authMode == .bind && template.isEmpty { throw SettingsError.invalid("auth_mode = \"bind\" needs bind_dn_template") }
        do {
            bindDNTemplate = template.isEmpty ? nil : try LDAPTemplate(template, kind: .dn)
            userFilter = try LDAPTemplate(c.string("user_filter")!, kind: .filter)
            recipientFilter = try LDAPTemplate(c.string("recipient_filter")!, kind: .filter)
            searchFilter = try LDAPTemplate(c.string("search_filter")!, kind: .filter)
        } catch {
            throw SettingsError.invalid("\(error)")
        }
        mailAttribute = c.string("mail_attribute")!
        aliasAttribute = c.string("alias_attribute")!
        routingAttribute = c.string("routing_attribute")!
        mailHostAttribute = c.string("mail_host_attribute")!
        quotaAttribute = c.string("quota_attribute")!
        suspendedAttribute = c.string("suspended_attribute")!
        suspendedValue = c.string("suspended_value")!
        memberAttributes = c.strings("member_attributes")!
        groupClasses = c.strings("group_classes")!.map { $0.lowercased() }
        nameAttribute = c.string("name_attribute")!
        phoneAttribute = c.string("phone_attribute")!
        displayNameAttribute = c.string("display_name_attribute")!
        languageAttribute = c.string("language_attribute")!
        timeZoneAttribute = c.string("time_zone_attribute")!
        passwordAttribute = c.string("password_attribute")!
        localMailHosts = Set(c.strings("local_mail_hosts")!.map { $0.lowercased() })
        mailHostTransport = c.string("mail_host_transport")!
        cacheTTL = c.duration("cache_ttl") ?? 60
        poolSize = c.int("pool_size") ?? 4
        provisionAccounts = c.bool("provision_accounts") ?? true
        aliasTable = c.string("alias_table")!
        transportTable = c.string("transport_table")!
        mailHostTable = c.string("mail_host_table")!
        searchLimit = c.int("search_limit") ?? 50
    }

    /// The attributes every user or recipient search asks for.
    var entryAttributes: [String] {
        var a = ["objectClass", mailAttribute, aliasAttribute, routingAttribute, mailHostAttribute, nameAttribute]
        for x in [quotaAttribute, suspendedAttribute, displayNameAttribute, languageAttribute, timeZoneAttribute] where !x.isEmpty { a.append(x) }
        return a + memberAttributes
    }
}
