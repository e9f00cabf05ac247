import Foundation
import PluginAPI
import TOMLKit

/// One configuration error: where it is (file, line, key) and what is wrong.
public struct ConfigDiagnostic: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int?
    public var key: String?
    public var message: String

    public init(file: String, line: Int?, key: String?, message: String) {
        self.file = file
        self.line = line
        self.key = key
        self.message = message
    }

    /// `FILE:LINE: KEY: message`, the form compilers use so editors can jump to it.
    public var description: String {
        var s = file
        if let line { s += ":\(line)" }
        s += ":"
        if let key { s += " \(key):" }
        return s + " " + message
    }

    /// `listener[0].port` for `["listener", "0", "port"]`.
    public static func render(_ keyPath: [String]) -> String {
        var out = ""
        for segment in keyPath {
            if !segment.isEmpty, segment.allSatisfy(\.isNumber), !out.isEmpty {
                out += "[\(segment)]"
            } else {
                out += out.isEmpty ? segment : ".\(segment)"
            }
        }
        return out
    }
}

/// Every problem of one configuration file.
public struct ConfigDiagnostics: Error, Sendable, Equatable {
    public var all: [ConfigDiagnostic]
    public init(_ all: [ConfigDiagnostic]) { self.all = all }
}

/// A listener as configured: `[[listener]]`.
public struct ListenerConfig: Sendable, Equatable {
    public struct SNICertificate: Sendable, Equatable {
        public var domain: String
        public var certificate: String
        public var key: String
    }

    public var index: Int
    public var name: String
    /// Empty for a Unix-socket listener.
    public var address: String
    /// 0 for a Unix-socket listener.
    public var port: Int
    /// The Unix socket path, when the listener is one.
    public var path: String?
    /// Permissions of the Unix socket.
    public var mode: mode_t
    /// The plugin that serves it.
    public var plugin: String
    /// The plugin's protocol service, when it has several.
    public var service: String?
    public var tls: TLSMode
    /// The listener's certificate and key; for a TLS listener that names neither, the
    /// installation's self-signed pair (`HostConfig.selfSignedCertificate`), made at first start.
    public var certificate: String?
    public var key: String?
    /// True when `certificate` and `key` are the self-signed pair rather than the config's.
    public var selfSigned: Bool = false
    public var sni: [SNICertificate]
    public var options: [String: ConfigValue]
    public var backlog: Int
    public var maxConnections: Int
    /// `client_certificates = "optional"`: the TLS handshake asks for a client certificate and
    /// verifies one that is sent against `clientCAFile` (a client that sends none still connects);
    /// SASL EXTERNAL maps a verified one to an account.
    public var requestsClientCertificate: Bool = false
    /// `client_certificates = "required"`: as "optional", and a client without a valid certificate
    /// fails the handshake (the admin plugin's node API, which answers consoles only).
    public var requiresClientCertificate: Bool = false
    /// `client_ca_file`: PEM certificates of the CAs that client certificates must chain to.
    public var clientCAFile: String? = nil

    /// What identifies the socket: listeners with the same endpoint share one.
    public var endpoint: String { path.map { "unix:\($0)" } ?? "\(address):\(port)" }
}

/// A parsed, schema-checked host configuration.
public struct HostConfig: Sendable {
    public var file: String
    public var source: String
    public var role: String
    public var dataDirectory: String
    public var workers: Int
    /// `user` and `group` as written; the processes use `workerUser`/`workerGroup`.
    public var user: String?
    public var group: String?

    /// Who workers, probes and tools run as when started as root (nil: they keep the identity they
    /// were started with, which is never root unless `user = "root"` says so explicitly): `user`,
    /// else the system user `postern` (`make install` creates it), else `nobody`.
    public var workerUser: String? {
        guard geteuid() == 0 else { return nil }
        if let user { return user == "root" ? nil : user }
        return Self.defaultWorkerUser
    }
    public var workerGroup: String? { workerUser == nil ? nil : group }
    /// True when no `user` was given and the default applies (the master logs which).
    public var workerUserIsDefault: Bool { geteuid() == 0 && user == nil }

    public static var defaultWorkerUser: String { getpwnam("postern") != nil ? "postern" : "nobody" }
    public var drainTimeout: Double
    /// `first_account`: on a store without any domain, `postern serve` creates one and its
    /// postmaster (FirstRun).
    public var firstAccount: Bool
    public var controlSocket: String
    public var logLevel: Logger.Level
    public var metricsListen: (host: String, port: Int)?
    public var pluginPath: [String]
    /// Plugins named in `[plugins] load`, by listeners and by `[plugin.NAME]` sections, in that order.
    public var requestedPlugins: [String]
    public var pluginSections: [String: [String: ConfigValue]]
    public var listeners: [ListenerConfig]
    public let locator: KeyLocator

    public static let roles = ["all-in-one", "gateway", "relay", "store", "proxy", "webmail", "admin"]

    /// Protocol services served by a plugin of another name. A listener's `protocol` (and a
    /// `[plugins] load` entry) names a plugin, or one of these services, which then means its plugin
    /// and that service: LMTP became a mode of the smtp plugin's state machine (a core is linked into
    /// one plugin image only), and configs that say `protocol = "lmtp"` keep working. The
    /// access-proxy plugin serves both proxies.
    public static let servicesOfOtherPlugins: [String: String] = ["lmtp": "smtp", "imap-proxy": "access-proxy", "pop3-proxy": "access-proxy"]

    static let sniSchema = ConfigSchema([
        ConfigField("domain", .string, required: true, help: "the server name clients ask for"),
        ConfigField("certificate", .string, required: true),
        ConfigField("key", .string, required: true),
    ])

    static let listenerSchema = ConfigSchema([
        ConfigField("name", .string, required: true, help: "unique name, used in logs and metrics"),
        ConfigField("address", .string, help: "IPv4 or IPv6 address to bind (with 'port')"),
        ConfigField("port", .integer(1...65535)),
        ConfigField("path", .string, help: "a Unix socket to listen on instead of address and port"),
        ConfigField("mode", .string, default: .string("0660"), help: "permissions of the Unix socket"),
        ConfigField("protocol", .string, required: true, help: "the protocol plugin serving it"),
        ConfigField("service", .string, help: "the plugin's protocol service, when it has several"),
        ConfigField("tls", .oneOf(TLSMode.allCases.map(\.rawValue)), default: .string("none")),
        ConfigField("certificate", .string, help: "PEM certificate chain"),
        ConfigField("key", .string, help: "PEM private key"),
        ConfigField("sni", .array(.table(sniSchema)), default: .array([])),
        ConfigField("client_certificates", .oneOf(["none", "optional", "required"]), default: .string("none"),
                    help: "\"optional\": ask for a TLS client certificate and verify it against client_ca_file (for SASL EXTERNAL); \"required\": refuse clients without one"),
        ConfigField("client_ca_file", .string, help: "PEM CA certificates that client certificates must chain to"),
        ConfigField("options", .anyTable, default: .table([:])),
        ConfigField("backlog", .integer(1...65535), default: .integer(511)),
        ConfigField("max_connections", .integer(1...1_000_000), default: .integer(1000)),
    ])

    /// The host's own keys. Plugin sections (`[plugin.NAME]`) are checked against each plugin's
    /// manifest once the plugin is probed.
    public static let schema = ConfigSchema([
        ConfigField("role", .oneOf(roles), default: .string("all-in-one")),
        ConfigField("data_dir", .string, default: .string("./var")),
        ConfigField("workers", .integer(1...64), default: .integer(1), help: "worker processes per generation"),
        ConfigField("user", .string, help: "user the workers run as when started as root"),
        ConfigField("group", .string),
        ConfigField("drain_timeout", .duration, default: .string("30s")),
        ConfigField("first_account", .boolean, default: .boolean(true),
                    help: "on a store with no domain, serve creates one and postmaster@ it, password in DATA/first-account.txt"),
        ConfigField("control", .table(ConfigSchema([
            ConfigField("socket", .string, help: "default: DATA_DIR/run/postern.sock"),
        ]))),
        ConfigField("log", .table(ConfigSchema([
            ConfigField("level", .oneOf(Logger.Level.allCases.map(\.rawValue)), default: .string("info")),
        ]))),
        ConfigField("metrics", .table(ConfigSchema([
            ConfigField("listen", .string, help: "HOST:PORT of the Prometheus /metrics endpoint"),
        ]))),
        ConfigField("plugins", .table(ConfigSchema([
            ConfigField("path", .array(.string), default: .array([]), help: "directories searched for plugins"),
            ConfigField("load", .array(.string), default: .array([])),
        ]))),
        ConfigField("plugin", .map(.anyTable), default: .table([:])),
        ConfigField("listener", .array(.table(listenerSchema)), default: .array([])),
        AuthProxyConfig.field,
    ])

    /// Reads and checks a configuration file. Returns the config, or every problem found.
    /// `label` names the file in diagnostics (a worker reads the master's snapshot of `label`).
    public static func load(file: String, label: String? = nil) -> Result<HostConfig, ConfigDiagnostics> {
        guard let data = FileManager.default.contents(atPath: file) else {
            return .failure(ConfigDiagnostics([ConfigDiagnostic(file: file, line: nil, key: nil,
                                              message: "cannot read the file (\(String(cString: strerror(errno))))")]))
        }
        guard let source = String(data: data, encoding: .utf8) else {
            return .failure(ConfigDiagnostics([ConfigDiagnostic(file: file, line: nil, key: nil, message: "the file is not UTF-8")]))
        }
        return parse(source: source, file: label ?? file)
    }

    public static func parse(source: String, file: String) -> Result<HostConfig, ConfigDiagnostics> {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: source)
        } catch let error as TOMLParseError {
            return .failure(ConfigDiagnostics([ConfigDiagnostic(file: file, line: error.source.begin.line, key: nil,
                                              message: "TOML syntax error: \(error.description)")]))
        } catch {
            return .failure(ConfigDiagnostics([ConfigDiagnostic(file: file, line: nil, key: nil, message: "TOML syntax error: \(error)")]))
        }
        let locator = KeyLocator(source: source)
        let values = convert(table)
        let issues = schema.validate(values)
        if !issues.isEmpty {
            return .failure(ConfigDiagnostics(issues.map { diagnostic(file: file, locator: locator, $0) }))
        }
        let v = ConfigSection(schema.applyingDefaults(to: values))
        var diagnostics: [ConfigDiagnostic] = []
        func fail(_ keyPath: [String], _ message: String) {
            diagnostics.append(diagnostic(file: file, locator: locator, ConfigIssue(keyPath: keyPath, message: message)))
        }

        // Relative paths are relative to the config file's directory, wherever postern runs from.
        let base = baseDirectory(of: file)
        func absolute(_ path: String) -> String { HostConfig.absolute(path, base: base) }
        let dataDirectory = absolute(v.string("data_dir")!)
        var metricsListen: (String, Int)?
        if let listen = v.section("metrics")?.string("listen") {
            if let parsed = parseHostPort(listen) { metricsListen = parsed } else {
                fail(["metrics", "listen"], "expected HOST:PORT (e.g. \"127.0.0.1:9465\"), found \"\(listen)\"")
            }
        }
        let pluginsSection = v.section("plugins")!
        let pluginSections: [String: [String: ConfigValue]] = {
            guard case .table(let t)? = v["plugin"] else { return [:] }
            return t.compactMapValues { if case .table(let s) = $0 { return s } else { return nil } }
        }()
        var requested = pluginsSection.strings("load")!.map { Self.servicesOfOtherPlugins[$0] ?? $0 }

        var listeners: [ListenerConfig] = []
        if case .array(let items)? = v["listener"] {
            for (i, item) in items.enumerated() {
                guard case .table(let raw) = item else { continue }
                let l = ConfigSection(listenerSchema.applyingDefaults(to: raw))
                let sni: [ListenerConfig.SNICertificate] = {
                    guard case .array(let entries)? = l["sni"] else { return [] }
                    return entries.compactMap {
                        guard case .table(let e) = $0 else { return nil }
                        let s = ConfigSection(e)
                        return .init(domain: s.string("domain")!, certificate: absolute(s.string("certificate")!),
                                     key: absolute(s.string("key")!))
                    }
                }()
                let options: [String: ConfigValue] = {
                    if case .table(let o)? = l["options"] { return o } else { return [:] }
                }()
                let tls = TLSMode(rawValue: l.string("tls")!)!
                let named = l.string("protocol")!
                let home = Self.servicesOfOtherPlugins[named]
                var listener = ListenerConfig(
                    index: i, name: l.string("name")!, address: l.string("address") ?? "", port: l.int("port") ?? 0,
                    path: l.string("path").map(absolute), mode: mode_t(l.string("mode").flatMap { Int($0, radix: 8) } ?? -1),
                    plugin: home ?? named, service: l.string("service") ?? (home == nil ? nil : named),
                    tls: tls, certificate: l.string("certificate").map(absolute),
                    key: l.string("key").map(absolute), sni: sni, options: options,
                    backlog: l.int("backlog")!, maxConnections: l.int("max_connections")!)
                listener.requestsClientCertificate = l.string("client_certificates") != "none"
                listener.requiresClientCertificate = l.string("client_certificates") == "required"
                listener.clientCAFile = l.string("client_ca_file").map(absolute)
                if tls != .none && listener.certificate == nil && listener.key == nil {
                    let pair = Self.selfSignedPair(dataDirectory: dataDirectory)
                    listener.certificate = pair.certificate
                    listener.key = pair.key
                    listener.selfSigned = true
                }
                listeners.append(listener)
            }
        }
        for l in listeners { requested.append(l.plugin) }
        requested += pluginSections.keys.sorted()

        var config = HostConfig(
            file: file, source: source, role: v.string("role")!, dataDirectory: dataDirectory,
            workers: v.int("workers")!, user: v.string("user"), group: v.string("group"),
            drainTimeout: v.duration("drain_timeout")!, firstAccount: v.bool("first_account")!,
            controlSocket: v.section("control")?.string("socket").map(absolute) ?? dataDirectory + "/run/postern.sock",
            logLevel: Logger.Level(rawValue: v.section("log")!.string("level")!)!,
            metricsListen: metricsListen.map { (host: $0.0, port: $0.1) },
            pluginPath: pluginsSection.strings("path")!.map(absolute),
            requestedPlugins: [], pluginSections: pluginSections, listeners: listeners, locator: locator)
        var seen = Set<String>()
        config.requestedPlugins = requested.filter { seen.insert($0).inserted }

        for issue in config.semanticIssues() { fail(issue.keyPath, issue.message) }
        return diagnostics.isEmpty ? .success(config) : .failure(ConfigDiagnostics(diagnostics))
    }

    /// Where the installation's self-signed certificate and key live (under the data directory).
    public static func selfSignedPair(dataDirectory: String) -> (certificate: String, key: String) {
        (dataDirectory + "/tls/self-signed.crt", dataDirectory + "/tls/self-signed.key")
    }

    /// The TLS listeners that use the self-signed pair.
    public var selfSignedListeners: [ListenerConfig] { listeners.filter(\.selfSigned) }

    /// The control socket of a config file, even when the file no longer parses: `postern ctl
    /// reload` after a bad edit must still reach the master, which then says what is wrong.
    public static func controlSocket(file: String) -> String? {
        if case .success(let config) = load(file: file) { return config.controlSocket }
        guard let data = FileManager.default.contents(atPath: file) else { return nil }
        var table = ""
        var dataDir = "./var"
        var socket: String?
        for raw in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("[") { table = line; continue }
            guard let eq = line.firstIndex(of: "=") else { continue }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            guard value.hasPrefix("\""), let end = value.dropFirst().firstIndex(of: "\"") else { continue }
            let text = String(value[value.index(after: value.startIndex)..<end])
            if table.isEmpty && key == "data_dir" { dataDir = text }
            if table == "[control]" && key == "socket" { socket = text }
        }
        return absolute(socket ?? dataDir + "/run/postern.sock", base: baseDirectory(of: file))
    }

    /// Checks that need more than types: uniqueness, files, accounts.
    func semanticIssues() -> [ConfigIssue] {
        var issues: [ConfigIssue] = []
        var names: [String: Int] = [:]
        var endpoints: [String: Int] = [:]
        for l in listeners {
            let at = ["listener", String(l.index)]
            if let first = names[l.name] {
                issues.append(ConfigIssue(keyPath: at + ["name"], message: "listener name '\(l.name)' is already used by listener[\(first)]"))
            } else { names[l.name] = l.index }
            if let first = endpoints[l.endpoint] {
                issues.append(ConfigIssue(keyPath: at + ["port"], message: "\(l.endpoint) is already used by listener[\(first)]"))
            } else { endpoints[l.endpoint] = l.index }
            if l.path != nil {
                if !l.address.isEmpty || l.port != 0 {
                    issues.append(ConfigIssue(keyPath: at + ["path"], message: "a listener has either 'path' or 'address' and 'port', not both"))
                }
                if l.mode > 0o777 {
                    issues.append(ConfigIssue(keyPath: at + ["mode"], message: "expected octal permissions such as \"0660\""))
                }
            } else if l.address.isEmpty || l.port == 0 {
                issues.append(ConfigIssue(keyPath: at + [l.address.isEmpty ? "address" : "port"],
                                          message: "a listener needs 'address' and 'port', or 'path' for a Unix socket"))
            } else if SocketAddressParse.isValidIP(l.address) == false {
                issues.append(ConfigIssue(keyPath: at + ["address"], message: "expected an IPv4 or IPv6 address, found \"\(l.address)\""))
            }
            if !PluginManifest.isValidName(l.plugin) {
                issues.append(ConfigIssue(keyPath: at + ["protocol"], message: "'\(l.plugin)' is not a plugin name (lower case letters, digits and '-')"))
            }
            if l.tls != .none && (l.certificate == nil || l.key == nil) {
                issues.append(ConfigIssue(keyPath: at + ["tls"], message: "tls = \"\(l.tls.rawValue)\" needs both 'certificate' and 'key' (or neither: a self-signed certificate is made at first start)"))
            }
            // The self-signed pair is checked once it exists; the master makes it before anything reads it.
            let pending = l.selfSigned && !FileManager.default.fileExists(atPath: l.certificate ?? "")
            if let cert = l.certificate, !pending { issues += Self.checkCertificate(cert, at: at + ["certificate"]) }
            if let key = l.key, !pending { issues += Self.checkKey(key, at: at + ["key"]) }
            if l.requestsClientCertificate {
                if l.tls == .none {
                    issues.append(ConfigIssue(keyPath: at + ["client_certificates"], message: "client certificates need tls = \"starttls\" or \"implicit\""))
                }
                if let ca = l.clientCAFile {
                    issues += Self.checkCertificate(ca, at: at + ["client_ca_file"])
                } else {
                    issues.append(ConfigIssue(keyPath: at + ["client_ca_file"], message: "client_certificates needs client_ca_file (the CAs that client certificates must chain to)"))
                }
            }
            for (j, s) in l.sni.enumerated() {
                issues += Self.checkCertificate(s.certificate, at: at + ["sni", String(j), "certificate"])
                issues += Self.checkKey(s.key, at: at + ["sni", String(j), "key"])
            }
        }
        for name in pluginSections.keys.sorted() {
            if let home = Self.servicesOfOtherPlugins[name] {
                issues.append(ConfigIssue(keyPath: ["plugin", name], message: "'\(name)' is a protocol service of the plugin '\(home)', not a plugin: its settings are in [plugin.\(home)]"))
            }
        }
        for name in pluginSections.keys.sorted() where !PluginManifest.isValidName(name) {
            issues.append(ConfigIssue(keyPath: ["plugin", name], message: "'\(name)' is not a plugin name (lower case letters, digits and '-')"))
        }
        if let user, getpwnam(user) == nil {
            issues.append(ConfigIssue(keyPath: ["user"], message: "no such user '\(user)'"))
        }
        if let group, getgrnam(group) == nil {
            issues.append(ConfigIssue(keyPath: ["group"], message: "no such group '\(group)'"))
        }
        return issues
    }

    static func checkCertificate(_ path: String, at keyPath: [String]) -> [ConfigIssue] {
        guard FileManager.default.isReadableFile(atPath: path) else {
            return [ConfigIssue(keyPath: keyPath, message: "cannot read certificate file \(path)")]
        }
        do {
            let certs = try NIOSSLCertificate.fromPEMFile(path)
            if certs.isEmpty { return [ConfigIssue(keyPath: keyPath, message: "no PEM certificate in \(path)")] }
        } catch {
            return [ConfigIssue(keyPath: keyPath, message: "\(path) is not a PEM certificate (\(error))")]
        }
        return []
    }

    static func checkKey(_ path: String, at keyPath: [String]) -> [ConfigIssue] {
        guard FileManager.default.isReadableFile(atPath: path) else {
            return [ConfigIssue(keyPath: keyPath, message: "cannot read key file \(path)")]
        }
        do {
            _ = try NIOSSLPrivateKey(file: path, format: .pem)
        } catch {
            return [ConfigIssue(keyPath: keyPath, message: "\(path) is not a PEM private key (\(error))")]
        }
        return []
    }

    /// Turns a key path issue into a diagnostic with file and line.
    public func diagnostic(_ issue: ConfigIssue) -> ConfigDiagnostic {
        Self.diagnostic(file: file, locator: locator, issue)
    }

    static func diagnostic(file: String, locator: KeyLocator, _ issue: ConfigIssue) -> ConfigDiagnostic {
        ConfigDiagnostic(file: file, line: locator.line(of: issue.keyPath),
                         key: ConfigDiagnostic.render(issue.keyPath), message: issue.message)
    }

    /// `path` made absolute against `base` (default: the working directory).
    public static func absolute(_ path: String, base: String? = nil) -> String {
        if path.hasPrefix("/") { return (path as NSString).standardizingPath }
        let from = base ?? FileManager.default.currentDirectoryPath
        return ((from as NSString).appendingPathComponent(path) as NSString).standardizingPath
    }

    /// The directory relative paths in a config are taken from: the file's own directory. A label
    /// that is no path (a config parsed from text) falls back to the working directory.
    public static func baseDirectory(of file: String) -> String {
        let looksLikePath = file.hasSuffix(".toml") || file.contains("/")
        guard looksLikePath else { return FileManager.default.currentDirectoryPath }
        return (absolute(file) as NSString).deletingLastPathComponent
    }

    static func parseHostPort(_ text: String) -> (String, Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              (1...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard SocketAddressParse.isValidIP(host) else { return nil }
        return (host, port)
    }

    /// TOMLKit values as plain `ConfigValue`s. Dates become strings (no Postern key takes a date).
    static func convert(_ table: TOMLTable) -> [String: ConfigValue] {
        var out: [String: ConfigValue] = [:]
        for (key, value) in table { out[key] = convert(value) }
        return out
    }

    static func convert(_ value: TOMLValueConvertible) -> ConfigValue {
        switch value.type {
        case .table: return .table(convert(value.table!))
        case .array: return .array(value.array!.map { convert($0) })
        case .string: return .string(value.string!)
        case .int: return .integer(value.int!)
        case .double: return .float(value.double!)
        case .bool: return .boolean(value.bool!)
        default: return .string(value.tomlValue.debugDescription)
        }
    }
}

enum SocketAddressParse {
    static func isValidIP(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }
}
