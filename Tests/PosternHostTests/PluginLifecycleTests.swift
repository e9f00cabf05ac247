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
