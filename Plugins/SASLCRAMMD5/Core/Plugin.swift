import PluginAPI

// The sasl-cram-md5 plugin: registers CRAM-MD5. Loading it makes the store keep each account's
// HMAC-MD5 contexts (password-equivalent for CRAM-MD5), written when a password is set and at
// the next plaintext login of an account that lacks them.

package enum SASLCRAMMD5Registration {
    package static var registration: PluginRegistration {
        PluginRegistration(
            manifest: PluginManifest(
                name: "sasl-cram-md5", version: "1.0.0", summary: "SASL CRAM-MD5 mechanism (RFC 2195)",
                kinds: [.saslMechanism]),
            activate: { _ in SASLCRAMMD5Plugin() })
    }
}

final class SASLCRAMMD5Plugin: Plugin {
    var services: [ProvidedService] { [.saslMechanism(CRAMMD5Mechanism())] }
}
