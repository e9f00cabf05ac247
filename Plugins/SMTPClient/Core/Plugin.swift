import Foundation
import PluginAPI

// The outbound transports: `smtp` (RFC 5321 to the MX hosts of the recipients' domain, or to a
// next hop) and `lmtp` (RFC 2033 to a TCP or Unix-socket LMTP server). README.md in this folder
// describes keys and behaviour.

/// What `postern_plugin_entry` (Entry/Entry.swift) hands the host: the manifest and how to
/// activate the plugin. Here rather than in the entry so that tests can read it.
package enum SMTPClientRegistration {
    package static var registration: PluginRegistration {
        PluginRegistration(
            manifest: PluginManifest(
                name: "smtp-client", version: "1.0.0", summary: "outbound SMTP (RFC 5321) and LMTP (RFC 2033) transports",
                kinds: [.transport], dependencies: ["dns"], uses: [.lookupTable],
                roles: ["all-in-one", "gateway", "relay"], config: SMTPClientPlugin.schema),
            activate: { context in try SMTPClientPlugin(context: context) })
    }
}

struct SMTPClientConfigError: Error, CustomStringConvertible {
    var description: String
}

final class SMTPClientPlugin: Plugin {
    static let schema = ConfigSchema([
        ConfigField("hostname", .string, default: .string(""), help: "the name in EHLO/LHLO; default: the host name"),
        ConfigField("tls", .oneOf(SMTPClientTLSPolicy.allCases.map(\.rawValue)), default: .string("may"),
                    help: "STARTTLS: none, may (when offered, certificate not checked) or encrypt (required and verified)"),
        ConfigField("tls_ca_file", .string, default: .string(""),
                    help: "PEM file of the certificates trusted under tls = \"encrypt\"; default: the system's trust store"),
        ConfigField("port", .integer(1...65535), default: .integer(25), help: "port of MX hosts and of next hops without one"),
        ConfigField("lmtp_port", .integer(1...65535), default: .integer(24), help: "port of LMTP next hops without one"),
        ConfigField("lmtp_nexthop", .string, default: .string(""),
                    help: "LMTP server when routing names none: \"unix:/path\" or \"[host]:port\""),
        ConfigField("fallback_relay", .array(.string), default: .array([]),
                    help: "next hops tried, in order, when every host of a destination failed"),
        ConfigField("max_addresses", .integer(1...100), default: .integer(5),
                    help: "addresses tried per delivery attempt, over all MX hosts"),
        ConfigField("sasl_password_tables", .array(.string), default: .array([]),
                    help: "lookup tables giving USER:PASSWORD for a next hop ([host]:port or domain, as written in relayhost or the transport map): AUTH PLAIN or LOGIN to a smarthost, over TLS or loopback only"),
        ConfigField("connect_timeout", .duration, default: .string("30s")),
        ConfigField("greeting_timeout", .duration, default: .string("300s"), help: "waiting for the server's 220"),
        ConfigField("command_timeout", .duration, default: .string("300s"), help: "each command's reply, and the TLS handshake"),
        ConfigField("data_timeout", .duration, default: .string("180s"), help: "writing each 64 KiB block of the message"),
        ConfigField("final_timeout", .duration, default: .string("600s"), help: "the reply after the message's final dot"),
    ])

    let smtp: OutboundTransport
    let lmtp: OutboundTransport

    init(context: PluginContext) throws {
        let config = context.config
        let configuredName = config.string("hostname")!
        let heloName = configuredName.isEmpty ? ProcessInfo.processInfo.hostName : configuredName
        guard let tls = SMTPClientTLSPolicy(rawValue: config.string("tls")!) else { throw SMTPClientConfigError(description: "tls: unknown policy") }
        let port = config.int("port")!
        var timeouts = SMTPClientTimeouts(connect: 30, greeting: 300, command: 300, dataBlock: 180, finalReply: 600)
        let timeoutKeys: [(String, WritableKeyPath<SMTPClientTimeouts, Double>)] = [
            ("connect_timeout", \.connect), ("greeting_timeout", \.greeting), ("command_timeout", \.command),
            ("data_timeout", \.dataBlock), ("final_timeout", \.finalReply),
        ]
        for (key, path) in timeoutKeys {
            guard let seconds = config.duration(key), seconds > 0 else { throw SMTPClientConfigError(description: "\(key): must be more than 0s") }
            timeouts[keyPath: path] = seconds
        }
        let relays = try (config.strings("fallback_relay")!).map { try Destination.smtp(nextHop: $0, defaultPort: port) }
        let lmtpNextHop = config.string("lmtp_nexthop").flatMap { $0.isEmpty ? nil : $0 }
        if let lmtpNextHop { _ = try Destination.lmtp(nextHop: lmtpNextHop, defaultPort: config.int("lmtp_port")!) }
        let settings = OutboundSettings(heloName: heloName, tls: tls, port: port, lmtpPort: config.int("lmtp_port")!,
                                        lmtpNextHop: lmtpNextHop, fallbackRelays: relays,
                                        maxAddresses: config.int("max_addresses")!, timeouts: timeouts,
                                        saslPasswordTables: config.strings("sasl_password_tables")!)
        let context_ = context
        let counter: (String, [(String, String)]) -> Counter = { context_.counter($0, dimensions: $1) }
        let tlsContext = try Self.tlsContext(tls, caFile: config.string("tls_ca_file")!, services: context.services)
        smtp = OutboundTransport(kind: .smtp, settings: settings, services: context.services, group: context.eventLoopGroup,
                                 logger: context.logger, tlsContext: tlsContext, counter: counter)
        lmtp = OutboundTransport(kind: .lmtp, settings: settings, services: context.services, group: context.eventLoopGroup,
                                 logger: context.logger, tlsContext: nil, counter: counter)
    }

    var services: [ProvidedService] { [.transport(name: "smtp", smtp), .transport(name: "lmtp", lmtp)] }

    /// The STARTTLS context of a policy. `encrypt` takes the host's client context (certificate
    /// and name verified against the system trust store), or one trusting `tls_ca_file`. `may`
    /// needs one that does not verify at all: the host's verifies and offers no way to turn it
    /// off, and an unverified certificate is what opportunistic TLS accepts (RFC 7435; Postfix
    /// `may`). Built once here, so a broken CA file refuses the plugin at start, not each delivery.
    static func tlsContext(_ policy: SMTPClientTLSPolicy, caFile: String, services: HostServices) throws -> NIOSSLContext? {
        switch policy {
        case .none:
            return nil
        case .may:
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .none
            return try NIOSSLContext(configuration: configuration)
        case .encrypt:
            guard !caFile.isEmpty else { return try services.tls.clientContext() }
            guard FileManager.default.isReadableFile(atPath: caFile) else {
                throw SMTPClientConfigError(description: "tls_ca_file: cannot read \(caFile)")
            }
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.trustRoots = .file(caFile)
            return try NIOSSLContext(configuration: configuration)
        }
    }
}
