import Foundation
import PluginAPI

// The sasl-digest-md5 plugin: registers DIGEST-MD5 (authentication only). Loading it makes the
// store keep each account's H(user:realm:password) (password-equivalent for DIGEST-MD5), written
// when a password is set and at the next plaintext login of an account that lacks it.

package enum SASLDigestMD5Registration {
    static let schema = ConfigSchema([
        ConfigField("realm", .string, default: .string(""),
                    help: "the realm offered and hashed into stored secrets; default: this host's name"),
        ConfigField("hostnames", .array(.string), default: .array([]),
                    help: "host names accepted in digest-uri besides the protocol's own hostname"),
    ])

    package static var registration: PluginRegistration {
        PluginRegistration(
            manifest: PluginManifest(
                name: "sasl-digest-md5", version: "1.0.0", summary: "SASL DIGEST-MD5 mechanism, authentication only (RFC 2831)",
                kinds: [.saslMechanism], config: schema),
            activate: { context in
                let configured = context.config.string("realm") ?? ""
                return SASLDigestMD5Plugin(mechanism: DigestMD5Mechanism(
                    realm: configured.isEmpty ? ProcessInfo.processInfo.hostName : configured,
                    extraHostnames: context.config.strings("hostnames") ?? []))
            })
    }
}

final class SASLDigestMD5Plugin: Plugin {
    let mechanism: DigestMD5Mechanism

    init(mechanism: DigestMD5Mechanism) { self.mechanism = mechanism }

    var services: [ProvidedService] { [.saslMechanism(mechanism)] }
}
