import Foundation
import PosternTestSupport
import PosternHost
import XCTest

/// The host as an administrator and a plugin author meet it.
final class HostOperationsTests: XCTestCase {
    /// The SDK example, built out of tree against PluginAPI/ by path with its own SwiftPM build,
    /// loads into this separately built host, logs through the host's handler and counts through
    /// the host's metrics.
    func testOutOfTreeExamplePluginLoadsIntoSeparatelyBuiltHost() throws {
        let scratch = Build.packageRoot + "/.build-example"
        let package = Build.packageRoot + "/Examples/HelloPlugin"
        let (code, output) = Build.run(try Build.tool("swift"), ["build", "--build-tests", "--package-path", package, "--scratch-path", scratch])
        XCTAssertEqual(code, 0, output)
        // Its core's own tests, as a third party would run them.
        let tests = Build.run(try Build.tool("swift"), ["test", "--skip-build", "--package-path", package, "--scratch-path", scratch])
        XCTAssertEqual(tests.status, 0, tests.output)
        XCTAssertTrue(tests.output.contains("Executed 1 test, with 0 failures"), tests.output)
        let pluginDir = scratch + "/debug"
        XCTAssertTrue(FileManager.default.fileExists(atPath: pluginDir + "/libPosternHello.so"), output)

        let dir = TempDir("example")
        let port = freePort(), metricsPort = freePort()
        let server = try ServerProcess.start(dir, """
            data_dir = "./var"
            [metrics]
            listen = "127.0.0.1:\(metricsPort)"
            [plugins]
            path = ["\(pluginDir)"]
            [plugin.hello]
            greeting = "hi from an out-of-tree plugin"
            [[listener]]
            name = "hello"
            address = "127.0.0.1"
            port = \(port)
            protocol = "hello"
            """)
        defer { server.stop() }
        let client = try LineClient(port: port)
        XCTAssertEqual(try client.readLine(), "200 hi from an out-of-tree plugin")
        XCTAssertEqual(try client.command("NAME Ada"), "200 Hello, Ada!")
        XCTAssertEqual(try client.command("BYE"), "221 bye")
        let plugin = try XCTUnwrap(try server.status().plugins.first { $0.name == "hello" })
        XCTAssertEqual(plugin.version, "0.1.0")
        XCTAssertTrue(plugin.file.hasPrefix(scratch), plugin.file)
        let metrics = try httpGet(port: metricsPort, path: "/metrics")
        XCTAssertTrue(metrics.contains("hello_names_total{worker="), metrics)
        XCTAssertTrue(metrics.contains("plugin=\"hello\"} 1"), metrics)
        XCTAssertTrue(server.log.contains("plugin.hello: hello plugin activated"), server.log)
        XCTAssertTrue(server.log.contains("greeted someone") && server.log.contains("listener=hello"), server.log)
    }

    func testSIGHUPReloadsAndConnectionLimitIsEnforced() throws {
        let dir = TempDir("hup")
        let port = freePort(), metricsPort = freePort()
        let server = try ServerProcess.start(dir, """
            data_dir = "./var"
            [metrics]
            listen = "127.0.0.1:\(metricsPort)"
            [[listener]]
            name = "greet"
            address = "127.0.0.1"
            port = \(port)
            protocol = "greeter"
            max_connections = 2
            """)
        defer { server.stop() }
        let first = try LineClient(port: port), second = try LineClient(port: port)
        XCTAssertEqual(try first.readLine(), "220 postern greeter build 0")
        XCTAssertEqual(try second.readLine(), "220 postern greeter build 0")
        let third = try LineClient(port: port)
        XCTAssertThrowsError(try third.readLine(), "the third connection is closed at once")
        let metrics = try httpGet(port: metricsPort, path: "/metrics")
        XCTAssertTrue(metrics.contains("postern_connections_refused_total{worker="), metrics)
        XCTAssertTrue(metrics.split(separator: "\n").contains { $0.hasPrefix("postern_connections_refused_total{") && $0.hasSuffix(" 1") }, metrics)

        let master = try server.status().pid
        XCTAssertEqual(kill(master, SIGHUP), 0)
        var generation = 1
        for _ in 0..<100 where generation == 1 {
            usleep(50_000)
            generation = try server.status().generation
        }
        XCTAssertEqual(generation, 2)
        // The old generation drains: the two held sessions still work, then end.
        XCTAssertEqual(try first.command("PING"), "250 PONG")
        XCTAssertEqual(try first.command("QUIT"), "221 bye")
        XCTAssertEqual(try second.command("QUIT"), "221 bye")
    }

    /// Started as root with `user`, the master keeps root (to bind on reload) and every worker
    /// runs as that user; the data directory is handed to it.
    func testWorkersDropPrivilegesWhenStartedAsRoot() throws {
        guard geteuid() == 0 else { throw XCTSkip("not root: the privilege drop is checked in CI, which runs as root") }
        let dir = TempDir("privs")
        chmod(dir.path, 0o755)
        let port = freePort()
        let server = try ServerProcess.start(dir, """
            data_dir = "./var"
            user = "nobody"
            [[listener]]
            name = "greet"
            address = "127.0.0.1"
            port = \(port)
            protocol = "greeter"
            """)
        defer { server.stop() }
        let client = try LineClient(port: port)
        XCTAssertEqual(try client.readLine(), "220 postern greeter build 0")
        let status = try server.status()
        func uid(_ pid: Int32) -> String? {
            let text = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
            return text.split(separator: "\n").first { $0.hasPrefix("Uid:") }.map { String($0.split(separator: "\t")[1]) }
        }
        let nobody = String(getpwnam("nobody")!.pointee.pw_uid)
        XCTAssertEqual(uid(status.pid), "0")
        for w in status.workers { XCTAssertEqual(uid(w.pid), nobody, "worker \(w.pid)") }
        let owner = try FileManager.default.attributesOfItem(atPath: dir.path + "/var")[.ownerAccountID] as? NSNumber
        XCTAssertEqual(owner?.stringValue, nobody)
        let socketMode = try FileManager.default.attributesOfItem(atPath: dir.path + "/var/run/postern.sock")[.posixPermissions] as? NSNumber
        XCTAssertEqual(socketMode?.intValue, 0o600, "the control socket is for root only")
    }

    /// Started as root with no `user` at all, the workers still never run as root: they take the
    /// system user `postern` when it exists, else `nobody`; the data written before (by root) is
    /// handed over, and a tool run as root afterwards works as that user too.
    func testWorkersNeverKeepRootWithoutUser() throws {
        guard geteuid() == 0 else { throw XCTSkip("not root: the privilege drop is checked in CI, which runs as root") }
        let dir = TempDir("privs-default")
        let expected = HostConfig.defaultWorkerUser
        let workerUID = String(getpwnam(expected)!.pointee.pw_uid)
        let imapPort = freePort()
        let config = """
            data_dir = "./var"
            [plugin.store-sqlite]
            password_iterations = 4096
            [[listener]]
            name = "imap"
            address = "127.0.0.1"
            port = \(imapPort)
            protocol = "imap"
            [listener.options]
            allow_plaintext_on_loopback = true
            """
        // Data made by root before the server ever ran (an older install, or a tool as root).
        let file = dir.write("postern.toml", "first_account = false\n" + config)
        XCTAssertEqual(Build.run(Build.postern, ["admin", "domain", "add", "example.org", "-c", file], cwd: dir.path).status, 0)
        let server = try ServerProcess.start(dir, config)
        defer { server.stop() }
        XCTAssertTrue(server.log.contains("started as root without `user`: workers run as \(expected)"), server.log)
        let status = try server.status()
        func uid(_ pid: Int32) -> String? {
            let text = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
            return text.split(separator: "\n").first { $0.hasPrefix("Uid:") }.map { String($0.split(separator: "\t")[1]) }
        }
        XCTAssertEqual(uid(status.pid), "0", "the master keeps root to bind ports on reload")
        XCTAssertFalse(status.workers.isEmpty)
        for w in status.workers { XCTAssertEqual(uid(w.pid), workerUID, "worker \(w.pid) runs as \(expected)") }
        for path in ["/var", "/var/store", "/var/store/index.sqlite"] {
            let owner = try FileManager.default.attributesOfItem(atPath: dir.path + path)[.ownerAccountID] as? NSNumber
            XCTAssertEqual(owner?.stringValue, workerUID, "\(path) belongs to the worker user")
        }
        let runOwner = try FileManager.default.attributesOfItem(atPath: dir.path + "/var/run")[.ownerAccountID] as? NSNumber
        XCTAssertEqual(runOwner?.stringValue, "0", "the control socket's directory stays root's")
        // A tool run as root now adds files as the worker user, and the workers can use them.
        XCTAssertEqual(Build.run(Build.postern, ["admin", "user", "add", "ann@example.org", "--password", "pw", "-c", server.configFile], cwd: dir.path).status, 0)
        let mbox = dir.write("old.mbox", "From a@b Thu Jan  1 00:00:00 2026\nSubject: old\n\nold mail\n")
        let imported = Build.run(Build.postern, ["admin", "import", "mbox", mbox, "--user", "ann@example.org", "-c", server.configFile], cwd: dir.path)
        XCTAssertEqual(imported.status, 0, imported.output)
        let python = try Build.tool("python3")
        let check = dir.write("imap.py", """
            import imaplib, sys
            m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1])); m.login("ann@example.org", "pw"); m.select("INBOX")
            typ, data = m.fetch("1", "(BODY[])"); assert b"old mail" in data[0][1], data
            m.store("1", "+FLAGS", "\\\\Deleted"); m.expunge(); m.logout(); print("ok")
            """)
        let r = Build.run(python, [check, "\(imapPort)"])
        XCTAssertEqual(r.status, 0, "a worker expunges what a root tool imported: \(r.output)")

        // A data directory the worker user cannot reach (a tree under a 0700 directory, as /root
        // is) is refused at start, saying why, rather than failing later in a worker.
        let locked = TempDir("privs-locked")
        chmod(locked.path, 0o700)
        let lockedConfig = locked.write("postern.toml", "first_account = false\ndata_dir = \"./var\"\n[plugin.store-sqlite]\n")
        let refused = Build.run(Build.postern, ["serve", "-c", lockedConfig], cwd: "/")
        XCTAssertEqual(refused.status, 1, refused.output)
        XCTAssertTrue(refused.output.contains("cannot reach \(locked.path)/var: \(locked.path) is mode 700"), refused.output)
        // A tool started as root says the same instead of failing inside the store.
        let tool = Build.run(Build.postern, ["admin", "user", "list", "-c", lockedConfig], cwd: "/")
        XCTAssertEqual(tool.status, 1, tool.output)
        XCTAssertTrue(tool.output.contains("cannot reach \(locked.path)/var"), tool.output)
    }

    /// The control protocol is typed: an unknown command gets a clear refusal from the master
    /// (not silence), and `postern ctl` refuses it before sending anything.
    func testUnknownControlCommandsAreRefused() throws {
        let dir = TempDir("control")
        let server = try ServerProcess.start(dir, "data_dir = \"./var\"\nworkers = 1\n")
        defer { server.stop() }
        let script = dir.write("ctl.py", """
            import socket, sys
            s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b'{"command":"explode"}\\n')
            print(s.makefile().readline().strip())
            """)
        let raw = Build.run(try Build.tool("python3"), [script, dir.path + "/var/run/postern.sock"])
        XCTAssertEqual(raw.status, 0, raw.output)
        XCTAssertTrue(raw.output.contains("\"ok\":false") && raw.output.contains("not a control request (commands: status, reload, stop)"), raw.output)
        let cli = Build.run(Build.postern, ["ctl", "explode", "-c", server.configFile], cwd: dir.path)
        XCTAssertNotEqual(cli.status, 0)
        XCTAssertTrue(cli.output.contains("explode"), cli.output)
        XCTAssertEqual(server.ctl("status").status, 0, "the master still answers")
    }

    /// A role means something: a store listener in a gateway, or an MX in a store, is refused by
    /// check-config with the file and line of the listener's protocol.
    func testRoleAndListenerMismatchIsRefusedWithFileAndLine() throws {
        let dir = TempDir("roles")
        let gateway = dir.write("gateway.toml", """
            role = "gateway"
            data_dir = "./var"
            [plugin.queue]
            [plugin.smtp]
            [[listener]]
            name = "mx"
            address = "127.0.0.1"
            port = \(freePort())
            protocol = "smtp"
            [[listener]]
            name = "imap"
            address = "127.0.0.1"
            port = \(freePort())
            protocol = "imap"
            """)
        var (code, output) = Build.run(Build.postern, ["check-config", "-c", gateway], cwd: dir.path)
        XCTAssertEqual(code, 1, output)
        XCTAssertTrue(output.contains("\(gateway):14: listener[1].protocol: listener 'imap' (imap) does not belong in the role 'gateway': imap serves all-in-one, store"), output)

        let store = dir.write("store.toml", """
            role = "store"
            data_dir = "./var"
            [plugin.store-sqlite]
            [[listener]]
            name = "mx"
            address = "127.0.0.1"
            port = \(freePort())
            protocol = "smtp"
            """)
        (code, output) = Build.run(Build.postern, ["check-config", "-c", store], cwd: dir.path)
        XCTAssertEqual(code, 1, output)
        XCTAssertTrue(output.contains("\(store):8: listener[0].protocol: listener 'mx' (smtp) does not belong in the role 'store': smtp serves all-in-one, gateway, relay"), output)
        // serve refuses the same config before starting a worker.
        let refused = Build.run(Build.postern, ["serve", "-c", store], cwd: dir.path)
        XCTAssertEqual(refused.status, 78, refused.output)

        // One plugin, two services with their own roles: LMTP (the smtp plugin's lmtp service)
        // belongs to the store roles, and is refused in a gateway beside an smtp listener that is not.
        let mixed = dir.write("mixed.toml", """
            role = "gateway"
            data_dir = "./var"
            [plugin.queue]
            [[listener]]
            name = "mx"
            address = "127.0.0.1"
            port = \(freePort())
            protocol = "smtp"
            [[listener]]
            name = "lmtp"
            address = "127.0.0.1"
            port = \(freePort())
            protocol = "lmtp"
            """)
        (code, output) = Build.run(Build.postern, ["check-config", "-c", mixed], cwd: dir.path)
        XCTAssertEqual(code, 1, output)
        XCTAssertTrue(output.contains("\(mixed):13: listener[1].protocol: listener 'lmtp' (lmtp) does not belong in the role 'gateway': lmtp serves all-in-one, store"), output)
        XCTAssertFalse(output.contains("listener[0]"), output)
    }

    /// Every config shipped in Config/ passes check-config on this machine.
    func testShippedConfigsAreValid() throws {
        let configDir = Build.packageRoot + "/Config"
        let files = try FileManager.default.contentsOfDirectory(atPath: configDir).filter { $0.hasSuffix(".toml") }.sorted()
        XCTAssertEqual(Set(files), Set(HostConfig.roles.map { $0 + ".toml" }), "one config per role")
        let dir = TempDir("shipped")
        for file in files {
            let (code, output) = Build.run(Build.postern, ["check-config", "-c", configDir + "/" + file], cwd: dir.path)
            XCTAssertEqual(code, 0, "\(file): \(output)")
        }
    }
}
