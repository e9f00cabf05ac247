import Foundation
import PluginAPI

// A test double of the queue plugin for the SMTP interop tests: `services.queue` writes each
// message and its envelope into a directory, `services.router` classifies recipients from lists
// in its config. The real queue plugin (queue, router, delivery) is developed elsewhere; the SMTP
// tests run against this one and, when libPosternQueue.so is built, against the real one too.

@_cdecl("postern_plugin_abi")
public func posternPluginABI() -> UnsafePointer<CChar> { PluginABI.exportedTag() }

@_cdecl("postern_plugin_entry")
public func posternPluginEntry() -> UnsafeMutableRawPointer {
    PluginExport.entry {
        PluginRegistration(
            manifest: PluginManifest(
                name: "test-queue", version: "1.0.0", summary: "queue and router test double",
                kinds: [.hostService],
                config: ConfigSchema([
                    ConfigField("directory", .string, default: .string("test-queue"), help: "under data_dir"),
                    ConfigField("local_domains", .array(.string), default: .array([])),
                    ConfigField("users", .array(.string), default: .array([])),
                    ConfigField("disabled", .array(.string), default: .array([])),
                    ConfigField("relay_domains", .array(.string), default: .array([])),
                    ConfigField("fail", .boolean, default: .boolean(false), help: "every enqueue throws"),
                ])),
            activate: { context in try TestQueuePlugin(context: context) })
    }
}

final class TestQueuePlugin: Plugin, MailQueue, MailRouter, @unchecked Sendable {
    let directory: String
    let localDomains: Set<String>
    let users: Set<String>
    let disabled: Set<String>
    let relayDomains: Set<String>
    let fail: Bool
    private let counter = NIOLockedValueBox(0)

    init(context: PluginContext) throws {
        directory = context.dataDirectory + "/" + (context.config.string("directory") ?? "test-queue")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        localDomains = Set((context.config.strings("local_domains") ?? []).map { $0.lowercased() })
        users = Set((context.config.strings("users") ?? []).map { $0.lowercased() })
        disabled = Set((context.config.strings("disabled") ?? []).map { $0.lowercased() })
        relayDomains = Set((context.config.strings("relay_domains") ?? []).map { $0.lowercased() })
        fail = context.config.bool("fail") ?? false
    }

    var services: [ProvidedService] { [.queue(self), .router(self)] }

    struct Failure: Error, CustomStringConvertible { var description: String { "test queue configured to fail" } }

    func enqueue(envelope: Envelope, messagePath path: String) async throws -> String {
        if fail { throw Failure() }
        let n = counter.withLockedValue { $0 += 1; return $0 }
        let id = "TQ\(getpid())x\(n)"
        guard rename(path, "\(directory)/\(id).eml") == 0 else { throw POSIXError(.EIO) }
        let json = try JSONEncoder().encode(envelope)
        try json.write(to: URL(fileURLWithPath: "\(directory)/\(id).json"))
        return id
    }

    func classify(_ recipient: String) async throws -> RecipientClass {
        let lower = recipient.lowercased()
        let domain = lower.split(separator: "@").last.map(String.init) ?? ""
        if localDomains.contains(domain) {
            if users.contains(lower) { return .local(expandsTo: [lower]) }
            if disabled.contains(lower) { return .disabled }
            return .unknownUser
        }
        return relayDomains.contains(domain) ? .relayDomain : .remote
    }

    func isLocalDomain(_ domain: String) async throws -> Bool { localDomains.contains(domain.lowercased()) }
}
