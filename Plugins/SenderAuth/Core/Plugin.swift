import Foundation
import PluginAPI

// Sender authentication: SPF (RFC 7208), DKIM signing and verification (RFC 6376, RFC 8463),
// DMARC (RFC 7489), ARC (RFC 8617) and the Authentication-Results field (RFC 8601) that records
// them. See README.md in this folder.

/// What `postern_plugin_entry` (Entry/Entry.swift) hands the host: the manifest and how to
/// activate the plugin. Here rather than in the entry so that tests can read it.
package enum SenderAuthRegistration {
    package static var registration: PluginRegistration {
        PluginRegistration(
            manifest: PluginManifest(
                name: "sender-auth", version: "0.1.0", summary: "SPF, DKIM, DMARC and ARC: verification, signing, Authentication-Results",
                kinds: [.filter],
                config: ConfigSchema([
                    ConfigField("authserv_id", .string,
                                help: "the authserv-id of Authentication-Results (RFC 8601 §2.5); default: the host name"),
                ])),
            activate: { context in try SenderAuthPlugin(context: context) })
    }
}

final class SenderAuthPlugin: Plugin {
    init(context: PluginContext) throws {}

    var services: [ProvidedService] { [] }
}
