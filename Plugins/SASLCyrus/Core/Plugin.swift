import Foundation
import PluginAPI

// The sasl-cyrus plugin: a bridge that runs the server side of libsasl2 mechanisms, so a site
// keeps its sasldb2, saslauthd or Cyrus plug-ins. See README.md for the keys and the behaviour.

package enum SASLCyrusRegistration {
    static let schema = ConfigSchema([
        ConfigField("mechanisms", .array(.string), required: true,
                    help: "libsasl2 mechanisms offered through the bridge, e.g. [\"CRAM-MD5\", \"DIGEST-MD5\", \"PLAIN\"]"),
        ConfigField("app_name", .string, default: .string("postern"), help: "the application name libsasl2 is initialised with"),
        ConfigField("pwcheck_method", .oneOf(["auxprop", "saslauthd"]), default: .string("auxprop"),
                    help: "auxprop: libsasl2 reads the secrets (sasldb2); saslauthd: it asks saslauthd (plaintext mechanisms only)"),
        ConfigField("sasldb_path", .string, default: .string(""), help: "the sasldb2 file; default libsasl2's (/etc/sasldb2)"),
        ConfigField("saslauthd_path", .string, default: .string(""), help: "saslauthd's socket directory's mux; default libsasl2's"),
        ConfigField("realm", .string, default: .string(""), help: "libsasl2's user realm (saslpasswd2 -u REALM)"),
        ConfigField("domain", .string, default: .string(""), help: "the Postern domain of names libsasl2 returns bare or @realm; default the realm, lower-cased"),
        ConfigField("server_fqdn", .string, default: .string(""), help: "the server name for DIGEST-MD5's digest-uri; default the listener's hostname"),
        ConfigField("require_account", .boolean, default: .boolean(true),
                    help: "a user libsasl2 authenticates must also be a Postern account (and enabled)"),
        ConfigField("timeout", .duration, default: .string("10s"), help: "the longest one libsasl2 call may take (saslauthd)"),
        ConfigField("options", .map(.string), default: .table([:]),
                    help: "further libsasl2 options answered through sasl_getopt (e.g. log_level, auxprop_plugin)"),
    ])

    /// Mechanisms the bridge never offers: ANONYMOUS logs in nobody in particular, and the
    /// security-layer-only or external ones have no meaning here.
    static let refusedMechanisms: Set<String> = ["ANONYMOUS", "EXTERNAL"]

    package static var registration: PluginRegistration {
        PluginRegistration(
            manifest: PluginManifest(
                name: "sasl-cyrus", version: "1.0.0", summary: "libsasl2 (Cyrus SASL) mechanisms through a bridge: sasldb2, saslauthd, Cyrus plug-ins",
                kinds: [.saslMechanism], config: schema),
            activate: { context in try SASLCyrusPlugin(context) })
    }

    /// The libsasl2 options of a config: the plugin's keys, then `options` (which may override).
    static func options(_ c: ConfigSection, mechanisms: [String]) -> CyrusOptions {
        var values: [String: String] = [
            "pwcheck_method": c.string("pwcheck_method")!,
            "mech_list": mechanisms.joined(separator: " "),
            "log_level": "2",
        ]
        if c.string("pwcheck_method") == "auxprop" { values["auxprop_plugin"] = "sasldb" }
        if let path = c.string("sasldb_path"), !path.isEmpty { values["sasldb_path"] = path }
        if let path = c.string("saslauthd_path"), !path.isEmpty { values["saslauthd_path"] = path }
        for (key, value) in c.section("options")?.values ?? [:] {
            if case .string(let text) = value { values[key] = text }
        }
        return CyrusOptions(appName: c.string("app_name")!, values: values)
    }
}

final class SASLCyrusPlugin: Plugin {
    let mechanisms: [CyrusMechanism]

    init(_ context: PluginContext) throws {
        let c = context.config
        let names = (c.strings("mechanisms") ?? []).map { $0.uppercased() }
        guard !names.isEmpty else { throw SASLCyrusConfigError("mechanisms: name at least one libsasl2 mechanism") }
        guard Set(names).count == names.count else { throw SASLCyrusConfigError("mechanisms: a name appears twice") }
        if let refused = names.first(where: { SASLCyrusRegistration.refusedMechanisms.contains($0) }) {
            throw SASLCyrusConfigError("mechanisms: \(refused) is not offered through the bridge")
        }
        try CyrusLibrary.shared.initialise(SASLCyrusRegistration.options(c, mechanisms: names), logger: context.logger)
        let missing = names.filter { !CyrusLibrary.shared.available.contains($0) }
        if !missing.isEmpty { throw CyrusLibraryError.unknownMechanisms(missing, available: CyrusLibrary.shared.available) }

        let realm = c.string("realm")!
        let domain = c.string("domain")!.isEmpty ? realm.lowercased() : c.string("domain")!.lowercased()
        let settings = CyrusSettings(realm: realm, domain: domain, serverFQDN: c.string("server_fqdn")!,
                                     requireAccount: c.bool("require_account")!, timeout: c.duration("timeout")!)
        let services = context.services
        // Looked up per call, never captured at activation (ARCHITECTURE.md, "Fail closed"): a
        // backend that throws is a temporary failure, never a login.
        let lookup: AccountLookup = { name in
            for (_, backend) in services.credentialBackends {
                do {
                    if let record = try await backend.lookupUser(name) { return .found(canonical: record.name, enabled: record.enabled) }
                } catch {
                    return .unavailable("account lookup failed: \(error)")
                }
            }
            return services.isComplete ? .unknown : .unavailable("the process's services are not complete yet")
        }
        mechanisms = names.map { CyrusMechanism(name: $0, settings: settings, lookup: lookup) }
        context.logger.info("libsasl2 bridge ready", metadata: ["mechanisms": "\(names.joined(separator: " "))",
                                                                 "pwcheck_method": "\(c.string("pwcheck_method")!)"])
    }

    var services: [ProvidedService] { mechanisms.map { .saslMechanism($0) } }
}

struct SASLCyrusConfigError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
