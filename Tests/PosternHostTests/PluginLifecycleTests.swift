import Foundation
import PluginAPI
import PosternHost
import XCTest

/// The two-phase start (ARCHITECTURE.md, "Start and stop order") and the fail-closed rule.
final class PluginLifecycleTests: XCTestCase {
    typealias Node = PluginLifecycle.StartNode

    func testStartOrderFollowsDependenciesAndUses() {
        // Activation order as a worker of the all-in-one config has it: the queue before the
        // store and the transports it delivers through.
        let nodes = [
            Node(name: "smtp", uses: [.queue, .router, .credentialBackend, .lookupTable], provides: [.protocolService]),
            Node(name: "dns", provides: [.dnsResolver]),
            Node(name: "queue", uses: [.storage, .accounts, .transport, .lookupTable], provides: [.queue, .router, .transport]),
            Node(name: "smtp-client", dependencies: ["dns"], uses: [.lookupTable], provides: [.transport]),
            Node(name: "store-sqlite", provides: [.storage, .accounts, .credentialBackend, .changeNotifier]),
        ]
        let (order, cycles) = PluginLifecycle.startOrder(nodes)
        let names = order.map { nodes[$0].name }
        XCTAssertEqual(cycles, [])
        XCTAssertEqual(names, ["dns", "smtp-client", "store-sqlite", "queue", "smtp"])
    }

    func testOwnServicesDoNotOrderAPluginAfterItself() {
        // The queue provides a transport and uses transports: no self-edge, no cycle.
        let nodes = [Node(name: "queue", uses: [.transport], provides: [.transport])]
        let (order, cycles) = PluginLifecycle.startOrder(nodes)
        XCTAssertEqual(order, [0])
        XCTAssertEqual(cycles, [])
    }

    func testCycleOfUsesIsReportedAndEveryPluginStillStarts() {
        let nodes = [
            Node(name: "a", uses: [.filter], provides: [.lookupTable]),
            Node(name: "b", uses: [.lookupTable], provides: [.filter]),
            Node(name: "c"),
        ]
        let (order, cycles) = PluginLifecycle.startOrder(nodes)
        XCTAssertEqual(order.map { nodes[$0].name }, ["b", "a", "c"])
        XCTAssertEqual(cycles, ["a -> b -> a"])
    }

    func testShippedPluginsStartProvidersFirst() throws {
        let data = NSTemporaryDirectory() + "lifecycle-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: data) }
        let names = ["lmtp", "smtp", "pop3", "imap", "dns", "queue", "smtp-client", "store-sqlite", "sasl-plain"]
        let (loaded, refused) = PluginLoader(configuredPath: []).loadAll(names)
        XCTAssertEqual(refused.map(\.description), [])
        let services = HostServices(tls: try HostTLS(listeners: []))
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let lifecycle = try PluginLifecycle(activating: loaded, role: "all-in-one", dataDirectory: data,
                                            sections: ["store-sqlite": ["password_iterations": .integer(4096)]],
                                            group: group, services: services)
        defer { lifecycle.shutdown() }
        XCTAssertTrue(services.isComplete)
        let order = lifecycle.startNames
        XCTAssertEqual(Set(order), Set(names))
        func before(_ a: String, _ b: String, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertLessThan(order.firstIndex(of: a)!, order.firstIndex(of: b)!, "\(a) starts before \(b): \(order)", file: file, line: line)
        }
        before("store-sqlite", "queue")
        before("smtp-client", "queue")
        before("dns", "smtp-client")
        before("queue", "smtp")
        for reader in ["imap", "pop3", "lmtp"] { before("store-sqlite", reader) }
        before("sasl-plain", "imap")
    }

    /// The router answers "not local" only when it can know: while a process is still activating
    /// its plugins, the question is an error (a temporary failure for every caller).
    func testRouterFailsClosedUntilEveryPluginIsActive() async throws {
        let (loaded, refused) = PluginLoader(configuredPath: []).loadAll(["queue"])
        XCTAssertEqual(refused.map(\.description), [])
        let data = NSTemporaryDirectory() + "router-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: data) }
        let services = HostServices(tls: try HostTLS(listeners: []))
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let queue = try XCTUnwrap(loaded.first)
        let context = PluginContext(pluginName: "queue", role: "all-in-one", logger: Logger(label: "queue"),
                                    config: ConfigSection(queue.manifest.config.applyingDefaults(to: [:])), dataDirectory: data,
                                    eventLoopGroup: group, services: services)
        let instance = try queue.registration.activate(context)
        services.register(instance.services)
        let router = try XCTUnwrap(services.router)
        do {
            let answer = try await router.classify("alice@example.org")
            XCTFail("classified before the plugins were all active: \(answer)")
        } catch {
            XCTAssertTrue("\(error)".contains("still starting"), "\(error)")
        }
        // Every plugin active and no store among them (a gateway): remote is a real answer.
        services.markComplete()
        let answer = try await router.classify("alice@example.org")
        XCTAssertEqual("\(answer)", "remote")
    }
}
