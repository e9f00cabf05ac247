import PluginAPI

// The sasl-anonymous plugin: ANONYMOUS (RFC 4505), off unless a site loads it with a guest
// account. README.md in this folder describes keys and behaviour.

package enum SASLAnonymousRegistration {
    package static var registration: PluginRegistration {
        PluginRegistration(
            manifest: PluginManifest(
                name: "sasl-anonymous", version: "1.0.0", summary: "SASL ANONYMOUS (RFC 4505) onto a read-only guest account",
                kinds: [.saslMechanism],
                config: ConfigSchema([
                    ConfigField("account", .string, required: true,
                                help: "the existing account anonymous logins become; IMAP opens it read-only, SMTP refuses ANONYMOUS"),
                ])),
            activate: { context in SASLAnonymousPlugin(context: context) })
    }
}

final class SASLAnonymousPlugin: Plugin {
    let mechanism: AnonymousMechanism

    init(context: PluginContext) {
        let logger = context.logger
        let account = context.config.string("account") ?? ""
        mechanism = AnonymousMechanism(account: account) { trace in
            // RFC 4505 §3: the trace is for the log, and says nothing trustworthy.
            logger.info("anonymous login", metadata: ["trace": "\(trace)", "account": "\(account)"])
        }
    }

    var services: [ProvidedService] { [.saslMechanism(mechanism)] }
}
