import PluginAPI

// The sasl-plain plugin: registers the PLAIN mechanism of PlainMechanism.swift. Plaintext, so the
// auth service offers it only under TLS or on loopback when the listener allows it.

/// What `postern_plugin_entry` (Entry/Entry.swift) hands the host: the manifest and how to
/// activate the plugin. Here rather than in the entry so that tests can read it.
package enum SASLPlainRegistration {
    package static var registration: PluginRegistration {
        PluginRegistration(
            manifest: PluginManifest(
                name: "sasl-plain", version: "1.0.0", summary: "SASL PLAIN mechanism (RFC 4616)",
                kinds: [.saslMechanism]),
            activate: { _ in SASLPlainPlugin() })
    }
}

final class SASLPlainPlugin: Plugin {
    var services: [ProvidedService] { [.saslMechanism(PlainMechanism())] }
}
