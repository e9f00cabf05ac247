import PluginAPI

// The sasl-plain plugin: registers the PLAIN mechanism of PlainMechanism.swift. Plaintext, so the
// auth service offers it only under TLS or on loopback when the listener allows it.

/// The ABI tag this plugin was compiled against; the loader refuses a mismatch before calling anything else.
@_cdecl("postern_plugin_abi")
public func posternPluginABI() -> UnsafePointer<CChar> { PluginABI.exportedTag() }

/// Describes the plugin to the loader; cheap, activation happens per worker.
@_cdecl("postern_plugin_entry")
public func posternPluginEntry() -> UnsafeMutableRawPointer {
    PluginExport.entry {
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
