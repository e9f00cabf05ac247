import Foundation
import PluginAPI
import TOMLKit

/// The `[authproxyd]` section: when present, the master runs `postern authproxyd`, the one
/// process that holds privileged secrets (the Kerberos keytab), as its own user.
///
/// ```toml
/// [authproxyd]
/// socket = "var/authproxyd/authproxyd.sock"   # default: DATA_DIR/authproxyd/authproxyd.sock
/// user = "postern-auth"                       # required when started as root; never root
/// group = "postern"                           # the socket's group; default: the workers' group
/// backends = ["auth-kerberos"]                # plugins authproxyd loads (never the workers)
/// [authproxyd.backend.auth-kerberos]          # each backend's own keys (its README)
/// keytab = "/etc/postern/krb5.keytab"
/// ```
public struct AuthProxyConfig: Sendable, Equatable {
    public var socket: String
    public var user: String?
    public var group: String?
    public var backends: [String]
    /// Per backend plugin: its config section.
    public var sections: [String: [String: ConfigValue]]
    /// A connection that sends nothing for this long is closed (a worker asks and waits; it never idles).
    public var idleTimeout: Double
    /// Connections served at once; more wait in the listen backlog.
    public var maxConnections: Int

    static let schema = ConfigSchema([
        ConfigField("socket", .string, help: "Unix socket workers reach authproxyd on; default DATA_DIR/authproxyd/authproxyd.sock"),
        ConfigField("user", .string, help: "the user authproxyd runs as (it alone may read the keytab)"),
        ConfigField("group", .string, help: "group of the socket (mode 0660); default: the workers' group"),
        ConfigField("backends", .array(.string), default: .array([.string("auth-kerberos")]), help: "backend plugins authproxyd loads"),
        ConfigField("backend", .map(.anyTable), default: .table([:]), help: "[authproxyd.backend.NAME]: a backend's settings"),
        ConfigField("idle_timeout", .duration, default: .string("30s")),
        ConfigField("max_connections", .integer(1...10_000), default: .integer(256)),
    ])

    /// The schema entry for the host's own schema.
    public static let field = ConfigField("authproxyd", .table(schema), help: "run authproxyd (Kerberos, privileged secrets)")
}

extension HostConfig {
    /// The `[authproxyd]` section, nil when the config has none. Read from the checked source
    /// (the host schema validated its types already).
    public var authProxy: AuthProxyConfig? {
        guard let table = try? TOMLTable(string: source), let raw = table["authproxyd"]?.table else { return nil }
        let s = ConfigSection(AuthProxyConfig.schema.applyingDefaults(to: HostConfig.convert(raw)))
        let base = HostConfig.baseDirectory(of: file)
        var sections: [String: [String: ConfigValue]] = [:]
        if case .table(let t)? = s["backend"] {
            for (name, value) in t { if case .table(let section) = value { sections[name] = section } }
        }
        // Paths in a backend section are relative to the config file, like every other path.
        for (name, section) in sections {
            if case .string(let keytab)? = section["keytab"] { sections[name]?["keytab"] = .string(HostConfig.absolute(keytab, base: base)) }
        }
        return AuthProxyConfig(
            socket: s.string("socket").map { HostConfig.absolute($0, base: base) } ?? dataDirectory + "/authproxyd/authproxyd.sock",
            user: s.string("user"), group: s.string("group"), backends: s.strings("backends") ?? [],
            sections: sections, idleTimeout: s.duration("idle_timeout") ?? 30, maxConnections: s.int("max_connections") ?? 256)
    }
}
