import Foundation
import PluginAPI

// The queue: spool, queue manager, retries and delivery reports, recipient routing (aliases,
// virtual domains, relay domains, transport map), and the `local` and `discard` transports.

package enum QueuePlugin {
    static let schema = ConfigSchema([
        ConfigField("hostname", .string, default: .string(""), help: "name in delivery reports; default: the host name"),
        ConfigField("min_backoff", .duration, default: .string("5m"), help: "wait after the first failed attempt; doubles each time"),
        ConfigField("max_backoff", .duration, default: .string("1h")),
        ConfigField("lifetime", .duration, default: .string("5d"), help: "after this a message still undelivered is returned"),
        ConfigField("delay_warning", .duration, default: .integer(0), help: "send one 'delayed' report after this long; 0: never"),
        ConfigField("scan_interval", .duration, default: .string("1s"), help: "how often the queue directories are looked at"),
        ConfigField("concurrency", .integer(1...10_000), default: .integer(50), help: "messages in delivery at once, per process"),
        ConfigField("destination_concurrency", .integer(1...1_000), default: .integer(10), help: "deliveries to one destination at once"),
        ConfigField("transport_concurrency", .map(.integer(1...10_000)), default: .table([:]),
                    help: "per transport (destination class), e.g. { smtp = 20, local = 10 }"),
        ConfigField("bounce_size_limit", .size, default: .string("50K"), help: "larger messages are returned as headers only"),
        ConfigField("double_bounce_recipient", .string, default: .string(""), help: "where failed bounces go; default postmaster@HOSTNAME"),
        ConfigField("max_hops", .integer(1...1000), default: .integer(50), help: "Received: fields after which a message is a loop"),
        ConfigField("relay_domains", .array(.string), default: .array([]), help: "domains accepted from anyone and delivered onward"),
        ConfigField("alias_tables", .array(.string), default: .array([]), help: "lookup tables of virtual aliases, before the store's own"),
        ConfigField("recipient_delimiter", .string, default: .string("+")),
        ConfigField("transports", .map(.string), default: .table([:]),
                    help: "domain (or .parent for subdomains) = \"transport[:nexthop]\", e.g. \"lmtp:[10.0.0.5]:24\", \"discard\""),
        ConfigField("transport_tables", .array(.string), default: .array([]),
                    help: "lookup tables of full address -> \"transport[:nexthop]\" (e.g. the ldap plugin's mailHost), before transports"),
        ConfigField("sender_canonical_tables", .array(.string), default: .array([]),
                    help: "lookup tables of sender address (or @domain) -> new address (or @domain)"),
        ConfigField("masquerade_domains", .array(.string), default: .array([]),
                    help: "user@host.sub.DOMAIN becomes user@DOMAIN in the sender and From/Sender/Reply-To"),
        ConfigField("relayhost", .string, default: .string(""), help: "smarthost for all remote mail, e.g. \"[mail.isp.example]:587\""),
        ConfigField("local_transport", .string, default: .string("local")),
        ConfigField("remote_transport", .string, default: .string("smtp")),
        ConfigField("store", .string, default: .string(""), help: "the storage plugin for local delivery; default: the first loaded"),
    ])

    /// What `postern_plugin_entry` (Entry/Entry.swift) hands the host.
    package static let registration = PluginRegistration(
        manifest: PluginManifest(name: "queue", version: "1.0.0",
                                 summary: "mail queue, routing and delivery reports; local and discard transports",
                                 kinds: [.hostService, .transport],
                                 // The store and transports it delivers through, and the alias and
                                 // canonical tables: started after them, stopped before them.
                                 uses: [.storage, .accounts, .transport, .lookupTable],
                                 roles: ["all-in-one", "gateway", "relay"], config: schema),
        activate: { context in try QueueInstance(context: context) })
}

// @unchecked Sendable: all stored properties are let (queue locks its own state, local is a Sendable struct, storeName a String)
final class QueueInstance: Plugin, @unchecked Sendable {
    let queue: QueueService
    let local: LocalTransport
    let storeName: String?

    init(context: PluginContext) throws {
        let c = context.config
        let configured = c.string("hostname")!
        let hostname = configured.isEmpty ? ProcessInfo.processInfo.hostName : configured
        let nonEmpty: (String) -> String? = { c.string($0).flatMap { $0.isEmpty ? nil : $0 } }
        var transports: [String: String] = [:]
        for (domain, value) in c.section("transports")?.values ?? [:] {
            if case .string(let s) = value { transports[domain.lowercased()] = s }
        }
        let spool = try Spool(root: context.dataDirectory + "/spool/queue")
        let router = Router(services: context.services, relayDomains: Set((c.strings("relay_domains")!).map { $0.lowercased() }),
                            aliasTables: c.strings("alias_tables")!, recipientDelimiter: c.string("recipient_delimiter")!,
                            transportMap: transports, relayHost: nonEmpty("relayhost"),
                            localTransport: c.string("local_transport")!, remoteTransport: c.string("remote_transport")!,
                            transportTables: c.strings("transport_tables")!)
        let settings = QueueService.Settings(
            hostname: hostname, minBackoff: c.duration("min_backoff")!, maxBackoff: c.duration("max_backoff")!,
            lifetime: c.duration("lifetime")!, delayWarning: c.duration("delay_warning")!, scanInterval: max(0.05, c.duration("scan_interval")!),
            concurrency: c.int("concurrency")!, destinationConcurrency: c.int("destination_concurrency")!,
            transportConcurrency: (c.section("transport_concurrency")?.values ?? [:]).compactMapValues { if case .integer(let i) = $0 { return i } else { return nil } },
            bounceSizeLimit: c.size("bounce_size_limit")!, doubleBounceRecipient: nonEmpty("double_bounce_recipient") ?? "postmaster@\(hostname)",
            maxHops: c.int("max_hops")!)
        let rewriter = SenderRewriter(services: context.services, canonicalTables: c.strings("sender_canonical_tables")!,
                                      masqueradeDomains: c.strings("masquerade_domains")!)
        queue = QueueService(spool: spool, settings: settings, router: router, senderRewriter: rewriter, services: context.services,
                             logger: context.logger, context: context)
        storeName = nonEmpty("store")
        local = LocalTransport(services: context.services, spool: spool, storeName: storeName, queue: queue)
    }

    /// The queue manager runs only once every plugin of the worker is active: before that, the
    /// router would not see the store (local domains) nor the transports.
    func start() throws {
        if let storeName, queue.services.store(named: storeName) == nil {
            throw QueueError.refused("[plugin.queue] store = \"\(storeName)\" names no storage plugin of this config")
        }
        queue.start()
    }

    var services: [ProvidedService] {
        [.queue(queue), .router(queue.router), .transport(name: "local", local), .transport(name: "discard", DiscardTransport())]
    }

    func shutdown() { queue.stop() }
}
