import Foundation
import PluginAPI
import PosternHost

/// What `postern admin` works on: the storage plugins of a config, loaded and activated in this
/// process (a short-lived one, like a probe). Works whether or not the server runs: the embedded
/// store is shared between processes.
// @unchecked Sendable: plugins is written only in init and read in deinit; config, services and group are let
public final class AdminContext: @unchecked Sendable {
    public let config: HostConfig
    public let services: HostServices
    private let group: MultiThreadedEventLoopGroup
    private var plugins: PluginLifecycle?

    /// `serving`: start the plugins after activating them, as a worker does (a queue manager starts
    /// delivering); tools leave it false and only read and change data.
    public init(config: HostConfig, serving: Bool = false) throws {
        self.config = config
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        services = HostServices(tls: try HostTLS(listeners: []))
        let loader = PluginLoader(configuredPath: config.pluginPath)
        let (loaded, refused) = loader.loadAll(config.requestedPlugins)
        if let refusal = refused.first { throw SystemError.message(refusal.description) }
        // Only what keeps data: storage plugins, host services (the queue) and what they depend on;
        // and the SASL mechanisms (no I/O), whose stored secrets the store writes with a password.
        var wanted = Set(loaded.filter { !$0.manifest.kinds.isDisjoint(with: [.storage, .hostService, .saslMechanism]) }.map(\.manifest.name))
        var changed = true
        while changed {
            changed = false
            for p in loaded where wanted.contains(p.manifest.name) {
                for d in p.manifest.dependencies where !wanted.contains(d) { wanted.insert(d); changed = true }
            }
        }
        let lifecycle = try PluginLifecycle(activating: loaded.filter { wanted.contains($0.manifest.name) }, config: config,
                                            group: group, services: services)
        plugins = lifecycle
        if serving { try lifecycle.start(logger: Logger(label: "admin")) }
    }

    /// The account store, or a clear error when the config loads none.
    public func accounts() throws -> any AccountStore {
        guard let a = services.accounts else {
            throw SystemError.message("no plugin of \(config.file) keeps accounts: add [plugin.store-sqlite] (or another store) to it")
        }
        return a
    }

    public func queue() throws -> any MailQueue {
        guard let q = services.queue else { throw SystemError.message("no queue plugin in \(config.file): add [plugin.queue] to it") }
        return q
    }

    public func store() throws -> any StorageBackend {
        guard let s = services.store() else { throw SystemError.message("no storage plugin in \(config.file)") }
        return s
    }

    deinit {
        plugins?.shutdown()
        try? group.syncShutdownGracefully()
    }
}

/// Runs async work from a synchronous command and returns its result.
public func runBlocking<T>(_ work: @escaping @Sendable () async throws -> T) throws -> T {
    let semaphore = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var result: Result<T, any Error>?
    Task {
        do { result = .success(try await work()) } catch { result = .failure(error) }
        semaphore.signal()
    }
    semaphore.wait()
    return try result!.get()
}
