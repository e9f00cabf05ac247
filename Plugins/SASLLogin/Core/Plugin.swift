import PluginAPI

// The sasl-login plugin: registers the LOGIN mechanism of LoginMechanism.swift. Plaintext, so the
// auth service offers it only under TLS or on loopback when the listener allows it.

/// What `postern_plugin_entry` (Entry/Entry.swift) hands the host: the manifest and how to
/// activate the plugin. Here rather than in the entry so that tests can read it.
package enum SASLLoginRegistration {
    package static var registration: PluginRegistration {
        PluginRegistration(
            manifest: PluginManifest(
                name: "sasl-login", version: "1.0.0", summary: "SASL LOGIN mechanism (draft-murchison-sasl-login)",
                kinds: [.saslMechanism]),
            activate: { _ in SASLLoginPlugin() })
    }
}

final class SASLLoginPlugin: Plugin {
    var services: [ProvidedService] { [.saslMechanism(LoginMechanism())] }
}
