import PluginAPI

// The dns plugin: the worker's DNS resolver (MX routing, DNSBL and reverse-DNS checks), a stub
// resolver asking recursive nameservers. README.md in this folder describes keys and behaviour.

/// What `postern_plugin_entry` (Entry/Entry.swift) hands the host: the manifest and how to
/// activate the plugin. Here rather than in the entry so that tests can read it.
package enum DNSRegistration {
    package static var registration: PluginRegistration {
        PluginRegistration(
            manifest: PluginManifest(
                name: "dns", version: "1.0.0", summary: "DNS stub resolver for mail routing (RFC 1035)",
                kinds: [.hostService], roles: ["all-in-one", "gateway", "relay", "proxy"], config: DNSPlugin.schema),
            activate: { context in try DNSPlugin(context: context) })
    }
}

final class DNSPlugin: Plugin {
    static let schema = ConfigSchema([
        ConfigField("nameservers", .array(.string), default: .array([]),
                    help: "ADDRESS, ADDRESS:PORT or [IPV6]:PORT of recursive resolvers; default: /etc/resolv.conf"),
        ConfigField("timeout", .duration, default: .string("5s"), help: "per UDP or TCP exchange with one server"),
        ConfigField("attempts", .integer(1...10), default: .integer(3),
                    help: "exchanges per question, rotating through the nameservers, before a temporary error"),
        ConfigField("cache_entries", .integer(0...1_000_000), default: .integer(10_000),
                    help: "answers kept for their TTL; 0 disables the cache"),
    ])

    let resolver: StubResolver

    init(context: PluginContext) throws {
        let config = context.config
        var nameservers = try (config.strings("nameservers")!).map { try NameserverAddress(parsing: $0) }
        if nameservers.isEmpty {
            let (found, skipped) = ResolvConf.read()
            for address in skipped {
                context.logger.warning("ignoring a nameserver of /etc/resolv.conf", metadata: ["address": "\(address)"])
            }
            nameservers = found.isEmpty ? ResolvConf.fallback : found
        }
        let seconds = config.duration("timeout")!
        guard seconds > 0 else { throw DNSConfigError("timeout: must be more than 0s") }
        let settings = ResolverSettings(nameservers: nameservers,
                                        timeout: .nanoseconds(Int64(seconds * 1e9)),
                                        attempts: config.int("attempts")!,
                                        cacheEntries: config.int("cache_entries")!)
        resolver = try StubResolver(settings: settings, group: context.eventLoopGroup,
                                    metrics: ResolverMetrics { context.counter($0, dimensions: $1) },
                                    logger: context.logger)
        context.logger.debug("DNS resolver ready", metadata: ["nameservers": "\(nameservers.map(\.description))"])
    }

    var services: [ProvidedService] { [.dnsResolver(resolver)] }
}
