import PluginAPI

// The sasl-scram plugin: registers the SCRAM mechanisms of SCRAMMechanism.swift that the config
// names. SCRAM-SHA-256 (and -PLUS) by default; SCRAM-SHA-1 only when asked for, because it needs
// one more stored secret per account.

package enum SASLSCRAMRegistration {
    static let allMechanisms = ["SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1", "SCRAM-SHA-1-PLUS"]

    static let schema = ConfigSchema([
        ConfigField("mechanisms", .array(.oneOf(allMechanisms)), default: .array([.string("SCRAM-SHA-256"), .string("SCRAM-SHA-256-PLUS")]),
                    help: "SCRAM mechanisms to offer; -PLUS ones only under TLS; SCRAM-SHA-1 stores extra keys per account"),
    ])

    package static var registration: PluginRegistration {
        PluginRegistration(
            manifest: PluginManifest(
                name: "sasl-scram", version: "1.0.0", summary: "SASL SCRAM-SHA-256, SCRAM-SHA-1 and -PLUS (RFC 5802, 7677)",
                kinds: [.saslMechanism], config: schema),
            activate: { context in SASLSCRAMPlugin(names: context.config.strings("mechanisms") ?? []) })
    }

    /// The mechanisms for the configured names, in the order of `allMechanisms`.
    static func mechanisms(_ names: [String]) -> [SCRAMMechanism] {
        let wanted = Set(names.map { $0.uppercased() })
        return allMechanisms.filter(wanted.contains).map { name in
            let algorithm: SCRAMSecret.Algorithm = name.hasPrefix("SCRAM-SHA-256") ? .sha256 : .sha1
            return SCRAMMechanism(algorithm: algorithm, plus: name.hasSuffix("-PLUS"),
                                  plusOffered: wanted.contains(algorithm.rawValue + "-PLUS"))
        }
    }
}

final class SASLSCRAMPlugin: Plugin {
    let mechanisms: [SCRAMMechanism]

    init(names: [String]) { mechanisms = SASLSCRAMRegistration.mechanisms(names) }

    var services: [ProvidedService] { mechanisms.map { .saslMechanism($0) } }
}
