import PluginAPI

// The sasl-external plugin: EXTERNAL (RFC 4422 Appendix A) over TLS client certificates.
// README.md in this folder describes keys and behaviour.

package enum SASLExternalRegistration {
    package static var registration: PluginRegistration {
        PluginRegistration(
            manifest: PluginManifest(
                name: "sasl-external", version: "1.0.0", summary: "SASL EXTERNAL (RFC 4422) with TLS client certificates",
                kinds: [.saslMechanism],
                config: ConfigSchema([
                    ConfigField("map", .array(.oneOf(CertificateNameSource.allCases.map(\.rawValue))),
                                default: .array([.string("san-email"), .string("subject-email")]),
                                help: "where the account name is read, in order: san-email, subject-email, subject-cn"),
                    ConfigField("cn_domain", .string, help: "appended as @domain to a commonName without @ (with subject-cn)"),
                ])),
            activate: { context in SASLExternalPlugin(context: context) })
    }
}

final class SASLExternalPlugin: Plugin {
    let mechanism: ExternalMechanism

    init(context: PluginContext) {
        let sources = (context.config.strings("map") ?? ["san-email", "subject-email"]).compactMap(CertificateNameSource.init(rawValue:))
        let logger = context.logger
        mechanism = ExternalMechanism(map: CertificateIdentityMap(sources: sources, cnDomain: context.config.string("cn_domain"))) { why in
            logger.notice("EXTERNAL refused", metadata: ["reason": "\(why)"])
        }
    }

    var services: [ProvidedService] { [.saslMechanism(mechanism)] }
}
