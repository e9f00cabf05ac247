import ArgumentParser
import Foundation
import PluginAPI
import PosternHost
import PosternCommands

@main
struct Postern: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "postern",
        abstract: "Postern mail system: one host binary, protocol and policy plugins loaded at run time.",
        subcommands: [Serve.self, CheckConfig.self, Ctl.self, Admin.self, QueueCommand.self, WorkerCommand.self, ProbeCommand.self, AuthProxyCommand.self])
}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Start the master: bind the listeners and run workers.")
    @Option(name: .shortAndLong, help: ArgumentHelp(configHelp)) var config: String?

    func run() throws {
        let found = try locateConfig(config)
        let cfg = loadConfig(found.path)
        PosternLogHandler.bootstrap(level: cfg.logLevel)
        PosternMetrics.bootstrap()
        Logger(label: "master").info("config \(found.description)")
        Foundation.exit(Master(configFile: found.path, config: cfg).run())
    }
}

struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Check a configuration: syntax, keys, files, ports and every plugin it loads.")
    @Option(name: .shortAndLong, help: ArgumentHelp(configHelp)) var config: String?

    func run() throws {
        let found = try locateConfig(config)
        let config = found.path
        print("using \(found.description)")
        var messages: [String] = []
        switch HostConfig.load(file: config) {
        case .failure(let diagnostics):
            messages = diagnostics.all.map(\.description)
        case .success(let cfg):
            // Ports held by a master running this config are fine; anything else in use is not.
            let running = try? ControlClient.send(ControlRequest(command: .status), socket: cfg.controlSocket, timeout: 5)
            let held = Set((running?.status?.listeners ?? []).map { "\($0.address):\($0.port)" })
            for l in cfg.listeners where l.path == nil && !held.contains(l.endpoint) {
                if let problem = ListeningSocket.probeAvailable(address: l.address, port: l.port) {
                    messages.append(cfg.diagnostic(ConfigIssue(keyPath: ["listener", String(l.index), "port"],
                                                               message: "cannot listen on \(l.endpoint): \(problem)")).description)
                }
            }
            if let m = cfg.metricsListen, running == nil,
               let problem = ListeningSocket.probeAvailable(address: m.host, port: m.port) {
                messages.append(cfg.diagnostic(ConfigIssue(keyPath: ["metrics", "listen"], message: "cannot listen on \(m.host):\(m.port): \(problem)")).description)
            }
            let report = try Master.probe(cfg)
            messages += report.messages(config: cfg)
            if messages.isEmpty {
                print("\(config): OK (role \(cfg.role); plugins: \(report.plugins.map { "\($0.name) \($0.version)" }.joined(separator: ", ")))")
                return
            }
        }
        for m in messages { print(m) }
        throw ExitCode(1)
    }
}

struct Ctl: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Talk to a running master over its control socket.",
        discussion: "Commands: status, reload, stop.")
    @Argument(help: "status | reload | stop") var command: ControlCommand
    @Option(name: .shortAndLong, help: ArgumentHelp(configHelp + " (To find the control socket.)")) var config: String?
    @Option(name: .long, help: "The control socket, instead of the one in the config.") var socket: String?
    @Flag(name: .long, help: "Print the answer as JSON.") var json = false

    func run() throws {
        let config = socket == nil ? try locateConfig(self.config).path : ""
        guard let path = socket ?? HostConfig.controlSocket(file: config) else {
            FileHandle.standardError.write(Data("postern ctl: cannot read \(config); name the control socket with --socket\n".utf8))
            throw ExitCode(2)
        }
        let response: ControlResponse
        do {
            response = try ControlClient.send(ControlRequest(command: command), socket: path)
        } catch {
            FileHandle.standardError.write(Data("postern ctl: cannot reach the master at \(path): \(error)\n".utf8))
            throw ExitCode(2)
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(response), as: UTF8.self))
        } else {
            print(response.message)
            response.errors.forEach { print("  \($0)") }
            if let s = response.status { print(Self.render(s)) }
        }
        if !response.ok { throw ExitCode(1) }
    }

    static func render(_ s: StatusSnapshot) -> String {
        var out = "master pid \(s.pid), role \(s.role), config \(s.configFile), up \(Int(s.uptimeSeconds)) s\n"
        out += "generation \(s.generation); reloads \(s.reloads) (\(s.failedReloads) refused); worker restarts \(s.workerRestarts)\n"
        out += "workers:\n"
        for w in s.workers {
            out += "  pid \(w.pid)  generation \(w.generation)  #\(w.index)  \(w.state)  sessions \(w.sessions.map(String.init) ?? "?")  up \(Int(w.uptimeSeconds)) s\n"
        }
        out += "plugins:\n"
        for p in s.plugins { out += "  \(p.name) \(p.version)  [\(p.kinds.joined(separator: ","))]  \(p.file)\n" }
        out += "listeners:\n"
        for l in s.listeners { out += "  \(l.name)  \(l.port == 0 ? l.address : "\(l.address):\(l.port)")  \(l.plugin)  tls=\(l.tls)\n" }
        return out
    }
}

struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "worker", abstract: "(internal) A worker process, started by the master.", shouldDisplay: false)
    @Option var config: String
    @Option var origin: String
    @Option var generation: Int
    @Option var index: Int
    @Option var listeners: Int

    func run() throws {
        InheritedDescriptors.closeAll(from: CInt(3 + listeners + 1))
        let cfg = loadConfig(config, label: origin)
        PosternLogHandler.bootstrap(level: cfg.logLevel)
        PosternMetrics.bootstrap()
        // Listening sockets are at fds 3..3+n-1 and the status channel right after them.
        let fds = (0..<listeners).map { CInt(3 + $0) }
        let worker = Worker(config: cfg, generation: generation, index: index, statusFD: CInt(3 + listeners), listenerFDs: fds)
        Foundation.exit(worker.run())
    }
}

struct ProbeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "probe", abstract: "(internal) Load every plugin of a config in a throw-away process and report as JSON.", shouldDisplay: false)
    @Option var config: String
    @Option var origin: String?

    func run() throws {
        InheritedDescriptors.closeAll(from: 3)
        let cfg = loadConfig(config, label: origin)
        PosternLogHandler.bootstrap(level: cfg.logLevel)
        try Privileges.drop(user: cfg.workerUser, group: cfg.workerGroup)
        let (report, _) = Probe.run(config: cfg)
        let data = try JSONEncoder().encode(report)
        print("")
        print(String(decoding: data, as: UTF8.self))
        if !report.ok { throw ExitCode(1) }
    }
}

struct AuthProxyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "authproxyd", abstract: "(internal) authproxyd, started by the master when the config has [authproxyd].", shouldDisplay: false)
    @Option var config: String
    @Option var origin: String?

    func run() throws {
        InheritedDescriptors.closeAll(from: 3)
        let cfg = loadConfig(config, label: origin)
        PosternLogHandler.bootstrap(level: cfg.logLevel)
        PosternMetrics.bootstrap()
        guard let proxy = cfg.authProxy else {
            FileHandle.standardError.write(Data("postern authproxyd: the config has no [authproxyd] section\n".utf8))
            throw ExitCode(78)
        }
        Foundation.exit(AuthProxyServer(config: cfg, proxy: proxy).run())
    }
}

extension ControlCommand: ExpressibleByArgument {}
