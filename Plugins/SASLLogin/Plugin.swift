import PluginAPI

// The sasl-login plugin: registers the LOGIN mechanism of LoginMechanism.swift. Plaintext, so the
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
                name: "sasl-login", version: "1.0.0", summary: "SASL LOGIN mechanism (draft-murchison-sasl-login)",
                kinds: [.saslMechanism]),
            activate: { _ in SASLLoginPlugin() })
    }
}

final class SASLLoginPlugin: Plugin {
    var services: [ProvidedService] { [.saslMechanism(LoginMechanism())] }
}
