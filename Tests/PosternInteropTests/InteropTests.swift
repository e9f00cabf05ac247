import Foundation
import PosternTestSupport
import PosternHost
import PluginAPI
import XCTest

/// End to end: the real `postern` binary, real plugins, real sockets on 127.0.0.1.
final class HostInteropTests: XCTestCase {
    func greeterConfig(port: Int, workers: Int = 2, extra: String = "", pluginPath: [String] = [], listenerExtra: String = "") -> String {
        """
        data_dir = "./var"
        workers = \(workers)
        drain_timeout = "10s"
        \(extra)
        [log]
        level = "info"
        [plugins]
        path = [\((pluginPath + [FixturePlugins.path]).map { "\"\($0)\"" }.joined(separator: ", "))]
        [plugin.greeter]
        suffix = ""
        [[listener]]
        name = "greet"
        address = "127.0.0.1"
        port = \(port)
        protocol = "greeter"
        \(listenerExtra)
        """
    }

    /// One full session of the greeter protocol; returns the greeting.
    func greeterSession(port: Int, token: String = "x") throws -> String {
        let c = try LineClient(port: port)
        let greeting = try c.readLine()
        let echo = try c.command("ECHO \(token)")
        guard echo == "250 \(token)" else { throw SystemError.message("bad echo: \(echo)") }
        let bye = try c.command("QUIT")
        guard bye == "221 bye" else { throw SystemError.message("bad quit: \(bye)") }
        return greeting
    }

    static let badPlugins = ["bad-abi", "private-nio", "missing-dep", "throwing-entry"]

    static let refusalTexts = [
        "refused plugin 'bad-abi' (", "libPosternBadABI.so): ABI mismatch: expected \"postern-plugin-api/\(PluginABI.apiLevelCompiledIn) swift/",
        "\", found \"postern-plugin-api/\(PluginABI.apiLevelCompiledIn + 998) swift/",
        "refused plugin 'private-nio' (", "libPosternPrivateNIO.so): carries its own copy of NIOCore (expected the one in libPluginAPI.so, found one inside the plugin)",
        "refused plugin 'missing-dep' (", "libPosternMissingDep.so): depends on plugin 'ghost', expected libPostern<Name>.so for it in the search path",
        "refused plugin 'throwing-entry' (", "libPosternThrowingEntry.so): entry point failed: no licence key configured for this plugin",
    ]

    func testRefusedPluginsGetTheirOwnMessageAndNeverReachAServingProcess() throws {
        let dir = TempDir("refuse")
        let port = freePort()
        let bad = "load = [\(Self.badPlugins.map { "\"\($0)\"" }.joined(separator: ", "))]\n[plugin.greeter]"
        // check-config names each refusal.
        let badFile = dir.write("bad.toml", greeterConfig(port: port).replacingOccurrences(of: "[plugin.greeter]", with: bad))
        let (code, output) = Build.run(Build.postern, ["check-config", "-c", badFile], cwd: dir.path)
        XCTAssertEqual(code, 1, output)
        for text in Self.refusalTexts { XCTAssertTrue(output.contains(text), "missing «\(text)» in:\n\(output)") }
        XCTAssertEqual(output.split(separator: "\n").filter { !$0.hasPrefix("using ") }.count, 4, "one line per refused plugin:\n\(output)")

        // serve refuses to start, and never spawns a worker.
        let refusedDir = TempDir("refuse-serve")
        let refused = try ServerProcess(dir: refusedDir, config: try String(contentsOfFile: badFile, encoding: .utf8))
        refused.process.waitUntilExit()
        XCTAssertEqual(refused.process.terminationStatus, 78)
        XCTAssertFalse(refused.log.contains("worker spawned"), refused.log)
        XCTAssertTrue(refused.log.contains("entry point failed: no licence key"), refused.log)

        // A running server asked to reload into the bad plugins keeps its generation, and neither
        // the master nor a worker has any of them mapped.
        let server = try ServerProcess.start(dir, greeterConfig(port: port))
        defer { server.stop() }
        try String(contentsOfFile: badFile, encoding: .utf8).write(toFile: server.configFile, atomically: true, encoding: .utf8)
        let response = try server.reload()
        XCTAssertFalse(response.ok)
        for text in Self.refusalTexts {
            XCTAssertTrue(response.errors.joined(separator: "\n").contains(text), "missing «\(text)» in \(response.errors)")
        }
        let status = try server.status()
        XCTAssertEqual(status.generation, 1)
        XCTAssertEqual(status.failedReloads, 1)
        XCTAssertTrue(try greeterSession(port: port).hasPrefix("220 postern greeter"))
        for pid in [status.pid] + status.workers.map(\.pid) {
            XCTAssertTrue(processMaps(pid, contain: "libPluginAPI.so"), "sanity: \(pid) maps libPluginAPI")
            for file in ["libPosternBadABI", "libPosternPrivateNIO", "libPosternMissingDep", "libPosternThrowingEntry"] {
                XCTAssertFalse(processMaps(pid, contain: file), "\(file) is mapped in serving process \(pid)")
            }
        }
        XCTAssertFalse(processMaps(status.pid, contain: "libPosternGreeter"), "the master never maps a plugin")
        XCTAssertTrue(server.log.split(separator: "\n").contains { $0.contains("reload refused: \(server.configFile):9: plugins.load: refused plugin 'throwing-entry'") },
                      "the log says why too:\n\(server.log)")
    }

    func testCheckConfigNamesFileLineAndKeyOfEveryError() throws {
        let dir = TempDir("check")
        let port = freePort()
        let busy = try ListeningSocket.bind(address: "127.0.0.1", port: freePort(), backlog: 1)
        defer { close(busy) }
        var busyAddress = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &busyAddress) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(busy, $0, &len) } }
        let busyPort = Int(UInt16(bigEndian: busyAddress.sin_port))
        let notPEM = dir.write("not-a-cert.pem", "hello\n")
        let good = greeterConfig(port: port)

        // (file, config, what one line of the output must say after "DIR/file")
        let cases: [(String, String, String)] = [
            ("syntax", "workers = \n", ":1: TOML syntax error"),
            ("unknown-key", good.replacingOccurrences(of: "workers = 2", with: "wrokers = 2"),
             ":2: wrokers: unknown key 'wrokers'"),
            ("wrong-type", good.replacingOccurrences(of: "workers = 2", with: "workers = \"two\""),
             ":2: workers: expected integer in 1...64, found string \"two\""),
            ("missing-plugin", good.replacingOccurrences(of: "protocol = \"greeter\"", with: "protocol = \"smtpx\""),
             ":15: listener[0].protocol: refused plugin 'smtpx': no file libPostern<Name>.so for it in the search path"),
            ("port-in-use", good.replacingOccurrences(of: "port = \(port)", with: "port = \(busyPort)"),
             ":14: listener[0].port: cannot listen on 127.0.0.1:\(busyPort): bind 127.0.0.1:\(busyPort): Address already in use"),
            ("unreadable-certificate", good + "\ntls = \"implicit\"\ncertificate = \"/nonexistent/cert.pem\"\nkey = \"/nonexistent/key.pem\"\n",
             ":18: listener[0].certificate: cannot read certificate file /nonexistent/cert.pem"),
            ("key-not-pem", good + "\ntls = \"starttls\"\ncertificate = \"\(notPEM)\"\nkey = \"\(notPEM)\"\n",
             ":19: listener[0].key: \(notPEM) is not a PEM private key"),
            ("plugin-section-unknown-key", good.replacingOccurrences(of: "suffix = \"\"", with: "sufix = \"!\""),
             ":10: plugin.greeter.sufix: unknown key 'sufix' (known keys: suffix)"),
            ("listener-option-type", good + "\n[listener.options]\nmax_line = 5\n",
             ":18: listener[0].options.max_line: expected integer in 16...65536, found integer 5"),
            ("unknown-service", good + "\nservice = \"imap\"\n",
             ":17: listener[0].service: plugin 'greeter' provides the protocol services [\"greeter\"], expected 'imap'"),
            ("bad-tls-mode", good + "\ntls = \"sometimes\"\n",
             ":17: listener[0].tls: expected one of \"none\", \"starttls\", \"implicit\", found string \"sometimes\""),
            ("missing-required", good.replacingOccurrences(of: "address = \"127.0.0.1\"\n", with: ""),
             ":11: listener[0].address: a listener needs 'address' and 'port', or 'path' for a Unix socket"),
            ("no-such-user", "user = \"nobody-here-xyz\"\n" + good,
             ":1: user: no such user 'nobody-here-xyz'"),
            ("refused-plugin", good.replacingOccurrences(of: "[plugin.greeter]", with: "load = [\"throwing-entry\"]\n[plugin.greeter]"),
             ":9: plugins.load: refused plugin 'throwing-entry' ("),
        ]
        XCTAssertGreaterThanOrEqual(cases.count, 10)
        for (name, config, expected) in cases {
            let file = dir.write(name + ".toml", config)
            let (code, output) = Build.run(Build.postern, ["check-config", "-c", file], cwd: dir.path)
            XCTAssertEqual(code, 1, "\(name): \(output)")
            XCTAssertTrue(output.split(separator: "\n").contains { $0.hasPrefix(file + expected) },
                          "\(name): expected a line starting «\(file + expected)», got:\n\(output)")
        }
        let goodFile = dir.write("good.toml", good)
        let (code, output) = Build.run(Build.postern, ["check-config", "-c", goodFile], cwd: dir.path)
        XCTAssertEqual(code, 0, output)
        XCTAssertTrue(output.contains("good.toml: OK (role all-in-one; plugins: greeter 1.0.0)"), output)
    }

    /// Clients hold a steady stream of sessions while `postern ctl reload` runs 20 times, the
    /// plugin rebuilt with a new greeting before each reload.
    func testReloadUnderLoadWithRebuiltPlugin() throws {
        let dir = TempDir("reload")
        let plugins = dir.path + "/plugins"
        try FileManager.default.createDirectory(atPath: plugins, withIntermediateDirectories: true)
        try rebuildGreeter(greeting: "reload build 0", into: plugins, work: dir.path + "/work")
        let port = freePort()
        let server = try ServerProcess.start(dir, greeterConfig(port: port, pluginPath: [plugins]))
        defer { server.stop() }
        XCTAssertEqual(try greeterSession(port: port), "220 reload build 0")

        let lock = NSLock()
        var sessions = 0, refused = 0, broken = 0
        var failures: [String] = []
        let stop = NSCondition()
        var stopping = false
        let clients = 6
        let group = DispatchGroup()
        for c in 0..<clients {
            DispatchQueue.global().async(group: group) {
                var n = 0
                while true {
                    stop.lock(); let done = stopping; stop.unlock()
                    if done { break }
                    n += 1
                    do {
                        let client = try LineClient(port: port)
                        _ = try client.readLine()
                        // A session that spans the reload: several commands, one of them slow.
                        for i in 0..<3 {
                            let token = "\(c)-\(n)-\(i)"
                            let reply = try client.command(i == 1 ? "SLEEP 20" : "ECHO \(token)")
                            if reply != (i == 1 ? "250 slept 20" : "250 \(token)") { throw SystemError.message("bad reply \(reply)") }
                        }
                        guard try client.command("QUIT") == "221 bye" else { throw SystemError.message("bad QUIT") }
                        lock.lock(); sessions += 1; lock.unlock()
                    } catch LineClient.Failure.refused(let e) {
                        lock.lock(); refused += 1; failures.append("refused: \(String(cString: strerror(e)))"); lock.unlock()
                    } catch {
                        lock.lock(); broken += 1; failures.append("\(error)"); lock.unlock()
                    }
                }
            }
        }
        var reloadSeconds: [Double] = []
        for build in 1...20 {
            try rebuildGreeter(greeting: "reload build \(build)", into: plugins, work: dir.path + "/work")
            let started = Date()
            let response = try server.reload()
            reloadSeconds.append(Date().timeIntervalSince(started))
            XCTAssertTrue(response.ok, "reload \(build): \(response.message) \(response.errors)")
            // Every session that starts after the reload answered sees the new build.
            XCTAssertEqual(try greeterSession(port: port), "220 reload build \(build)", "after reload \(build)")
        }
        stop.lock(); stopping = true; stop.unlock()
        group.wait()
        let status = try server.status()
        XCTAssertEqual(status.generation, 21)
        XCTAssertEqual(refused, 0, "refused connections: \(failures.prefix(5))")
        XCTAssertEqual(broken, 0, "broken sessions: \(failures.prefix(5))")
        XCTAssertGreaterThan(sessions, 100, "the load kept going")
        print("FIGURES reload-under-load: 20 reloads, \(sessions) sessions by \(clients) clients, \(refused) refused, \(broken) broken, reload took median \(String(format: "%.3f", reloadSeconds.sorted()[10])) s, max \(String(format: "%.3f", reloadSeconds.max()!)) s")
    }

    func testKilledWorkerIsRestartedAndListenerKeepsAccepting() throws {
        let dir = TempDir("kill")
        let port = freePort()
        let server = try ServerProcess.start(dir, greeterConfig(port: port, workers: 1))
        defer { server.stop() }
        let victim = try XCTUnwrap(try server.status().workers.first?.pid)

        let lock = NSLock()
        var longestGap = 0.0, sessions = 0, failures: [String] = []
        var stopping = false
        let group = DispatchGroup()
        for _ in 0..<3 {
            DispatchQueue.global().async(group: group) {
                while true {
                    lock.lock(); let done = stopping; lock.unlock()
                    if done { break }
                    let t0 = Date()
                    do {
                        _ = try self.greeterSession(port: port)
                        let gap = Date().timeIntervalSince(t0)
                        lock.lock(); sessions += 1; longestGap = max(longestGap, gap); lock.unlock()
                    } catch {
                        lock.lock(); failures.append("\(error)"); lock.unlock()
                    }
                }
            }
        }
        usleep(300_000)
        XCTAssertEqual(kill(victim, SIGKILL), 0)
        // Wait for the replacement.
        var replacement: Int32?
        for _ in 0..<200 {
            if let w = try server.status().workers.first(where: { $0.pid != victim && $0.state == "ready" }) { replacement = w.pid; break }
            usleep(50_000)
        }
        usleep(500_000)
        lock.lock(); stopping = true; lock.unlock()
        group.wait()
        XCTAssertNotNil(replacement, "the master restarted the worker")
        let status = try server.status()
        XCTAssertEqual(status.workerRestarts, 1)
        XCTAssertEqual(status.generation, 1)
        // Sessions cut by the kill itself are lost with the process; new connections must not be.
        let refusedOnes = failures.filter { $0.contains("connect failed") }
        XCTAssertEqual(refusedOnes, [], "no connection refused while the worker was down")
        XCTAssertLessThanOrEqual(failures.count, 3, "at most the sessions in flight at the kill: \(failures)")
        XCTAssertTrue(server.log.contains("worker crashed"), server.log)
        print("FIGURES worker-kill: \(sessions) sessions, \(failures.count) cut by the kill, longest connect-to-end gap \(String(format: "%.3f", longestGap)) s")
    }

    func testStatusMetricsAndFailedReloadKeepServing() throws {
        let dir = TempDir("status")
        let port = freePort()
        let metricsPort = freePort()
        let server = try ServerProcess.start(dir, greeterConfig(port: port, extra: "[metrics]\nlisten = \"127.0.0.1:\(metricsPort)\""))
        defer { server.stop() }
        for i in 0..<7 { _ = try greeterSession(port: port, token: "s\(i)") }
        let status = try server.status()
        XCTAssertEqual(status.workers.count, 2)
        XCTAssertEqual(Set(status.workers.map(\.state)), ["ready"])
        XCTAssertEqual(status.plugins.map(\.name), ["greeter"])
        XCTAssertEqual(status.plugins.first?.version, "1.0.0")
        XCTAssertTrue(status.plugins.first?.file.hasSuffix("/libPosternGreeter.so") ?? false)
        XCTAssertEqual(status.listeners.first?.port, port)
        let text = Build.run(Build.postern, ["ctl", "status", "-c", server.configFile], cwd: dir.path).output
        XCTAssertTrue(text.contains("greeter 1.0.0  [protocol]"), text)

        let metrics = try httpGet(port: metricsPort, path: "/metrics")
        let total = metrics.split(separator: "\n").filter { $0.hasPrefix("postern_connections_total{") && $0.contains("listener=\"greet\"") }
            .compactMap { Int($0.split(separator: " ").last!) }.reduce(0, +)
        XCTAssertEqual(total, 7, metrics)
        XCTAssertTrue(metrics.contains("# TYPE postern_connections_total counter"), metrics)
        XCTAssertEqual(metrics.components(separatedBy: "# TYPE postern_connections_total").count, 2, "one TYPE line per family")
        XCTAssertTrue(metrics.contains("postern_generation 1"), metrics)

        // A broken config on reload: refused with file and line, generation 1 keeps serving.
        try "workers = [\n".write(toFile: server.configFile, atomically: true, encoding: .utf8)
        let response = try server.reload()
        XCTAssertFalse(response.ok)
        XCTAssertTrue(response.errors.first?.hasPrefix(server.configFile + ":") ?? false, "\(response.errors)")
        XCTAssertEqual(try server.status().generation, 1)
        XCTAssertEqual(try greeterSession(port: port), "220 postern greeter build 0")
        let after = try httpGet(port: metricsPort, path: "/metrics")
        XCTAssertTrue(after.contains("postern_reloads_total{result=\"failed\"} 1"), after)
    }

    func testStopDrainsSessionsInProgress() throws {
        let dir = TempDir("drain")
        let port = freePort()
        let server = try ServerProcess.start(dir, greeterConfig(port: port, workers: 1))
        let client = try LineClient(port: port)
        _ = try client.readLine()
        try client.send("SLEEP 700")
        usleep(100_000)
        let stopped = Build.run(Build.postern, ["ctl", "stop", "-c", server.configFile], cwd: dir.path)
        XCTAssertEqual(stopped.status, 0, stopped.output)
        // The session in progress still gets its answer and can finish.
        XCTAssertEqual(try client.readLine(), "250 slept 700")
        XCTAssertEqual(try client.command("QUIT"), "221 bye")
        server.process.waitUntilExit()
        XCTAssertEqual(server.process.terminationStatus, 0)
        XCTAssertThrowsError(try LineClient(port: port), "no longer listening")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.path + "/var/run/postern.sock"))
    }
}
