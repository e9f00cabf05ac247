import Foundation
import PluginAPI

/// The master process (ARCHITECTURE.md, "Processes"): binds every listener, probes plugins in a
/// throw-away child, runs generations of workers on the bound sockets, restarts crashed workers
/// with backoff, reloads into a new generation, and answers the control socket and `/metrics`.
/// It never maps a plugin itself. All of its state lives on one event loop.
// @unchecked Sendable: every mutable property is read and written on `loop` only (run() hands its results over there)
public final class Master: @unchecked Sendable {
    final class WorkerRecord {
        enum State: String { case starting, ready, draining }
        let pid: pid_t
        let generation: Int
        let index: Int
        var state: State = .starting
        var channel: (any Channel)?
        let started = Date()
        var ready: EventLoopPromise<Void>?
        var pending: [Int: EventLoopPromise<WorkerMessage?>] = [:]

        init(pid: pid_t, generation: Int, index: Int) {
            self.pid = pid
            self.generation = generation
            self.index = index
        }
    }

    let configFile: String
    private(set) var config: HostConfig
    let logger = Logger(label: "master")
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let loop: any EventLoop
    private var generation = 0
    private var listenerFDs: [String: CInt] = [:]
    private var workers: [pid_t: WorkerRecord] = [:]
    private var plugins: [ProbeReport.PluginInfo] = []
    private var reloading = false
    private var stopping = false
    private var reloads = 0
    /// The last reload's outcome, for the status file (Master+StatusFile.swift).
    var lastReload: NodeStatusFile.Reload?
    private var failedReloads = 0
    private var restarts = 0
    private var restartFailures: [Int: Int] = [:]
    private var nextRequestID = 0
    private let started = Date()
    private var signalSources: [any DispatchSourceSignal] = []
    private var controlChannel: (any Channel)?
    private var metricsChannel: (any Channel)?
    private let done = DispatchSemaphore(value: 0)
    /// authproxyd, when the config has an `[authproxyd]` section (AuthProxySupervisor).
    private var authProxy: AuthProxySupervisor?

    private let reloadsOK = Counter(label: "postern_reloads_total", dimensions: [("result", "ok")])
    private let reloadsFailed = Counter(label: "postern_reloads_total", dimensions: [("result", "failed")])
    private let restartCounter = Counter(label: "postern_worker_restarts_total")
    private let generationGauge = Gauge(label: "postern_generation")
    private let workersGauge = Gauge(label: "postern_workers")

    public init(configFile: String, config: HostConfig) {
        self.configFile = configFile
        self.config = config
        self.loop = group.next()
    }

    // MARK: start and stop

    /// Starts everything and blocks until the master stops. Returns the exit status.
    public func run() -> Int32 {
        // Workers inherit it: one descriptor per connection, 10,000 idle IMAP sessions need more
        // than the usual soft limit of 1,024.
        let descriptors = Self.raiseDescriptorLimit()
        logger.info("descriptor limit", metadata: ["soft": "\(descriptors)"])
        do {
            try prepareDirectories()
            let report = try Master.probe(config, snapshotDirectory: runDirectory)
            guard report.ok else {
                report.messages(config: config).forEach { logger.critical("\($0)") }
                return 78
            }
            plugins = report.plugins
            try createFirstAccount(report)
            try bindListeners(for: config)
            try startControlSocket()
            try startMetricsEndpoint()
            try installSignalHandlers()
            if let proxy = config.authProxy {
                let supervisor = AuthProxySupervisor(snapshot: try writeSnapshot(config, name: "authproxyd"), origin: configFile, socket: proxy.socket)
                authProxy = supervisor
                supervisor.start()
            }
            try loop.flatSubmit { self.startGeneration(config: self.config, number: 1) }.wait()
            // From here a reload (SIGHUP, ctl) may replace `config` on `loop`: read it there.
            let started = try loop.submit {
                self.generation = 1
                self.generationGauge.record(1)
                return self.config
            }.wait()
            loop.execute { self.startStatusHeartbeat() }
            logger.info("postern started", metadata: ["role": "\(started.role)", "generation": "1",
                                                      "listeners": "\(started.listeners.map { "\($0.name)@\($0.endpoint)" })",
                                                      "control": "\(started.controlSocket)"])
        } catch {
            logger.critical("cannot start: \(error)")
            shutdownNow()
            return 1
        }
        done.wait()
        try? group.syncShutdownGracefully()
        return 0
    }

    /// Runs `postern probe` on a config in a child process and returns its report. The child
    /// loads every plugin the config needs exactly as a worker would, so a refused or crashing
    /// plugin is found without mapping it here.
    /// With `snapshotDirectory`, the probe reads exactly the text that was validated here (written
    /// there, mode 0600), not whatever the file holds by the time the child starts.
    public static func probe(_ config: HostConfig, snapshotDirectory: String? = nil) throws -> ProbeReport {
        var arguments = ["probe", "--config", config.file]
        if let snapshotDirectory {
            let snapshot = snapshotDirectory + "/probe-\(UInt32.random(in: 0...UInt32.max)).toml"
            try writeFile(snapshot, config.source)
            arguments = ["probe", "--config", snapshot, "--origin", config.file]
        }
        defer { if snapshotDirectory != nil { unlink(arguments[2]) } }
        let (status, output) = try Spawner.run(arguments: arguments)
        // The report is the probe's last line; a plugin that printed something comes before it.
        let lastLine = output.split(separator: UInt8(ascii: "\n")).last.map { Data($0) } ?? Data()
        if let report = try? JSONDecoder().decode(ProbeReport.self, from: lastLine) { return report }
        var report = ProbeReport()
        report.refusals = [PluginRefusal(plugin: "(probe)", file: nil,
                                         reason: "the plugin probe \(Spawner.describe(status: status)) before reporting; a plugin crashed while loading")]
        return report
    }

    /// Where the master keeps its control socket and config snapshots.
    var runDirectory: String { (config.controlSocket as NSString).deletingLastPathComponent }

    private func writeSnapshot(_ config: HostConfig, name: String) throws -> String {
        let path = runDirectory + "/\(name).toml"
        try Self.writeFile(path, config.source)
        return path
    }

    /// Raises the soft limit on open descriptors to the hard limit (as Dovecot and nginx do); the
    /// hard limit is the administrator's (`LimitNOFILE=` in systemd, `ulimit -Hn`). Returns the
    /// soft limit now in force.
    static func raiseDescriptorLimit() -> UInt64 {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { return UInt64(raised.rlim_cur) }
        }
        return UInt64(limit.rlim_cur)
    }

    /// Writes a file readable by its owner only (configs may hold secrets).
    static func writeFile(_ path: String, _ text: String) throws {
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SystemError.call("open \(tmp)", errno) }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        guard written == bytes.count, rename(tmp, path) == 0 else { throw SystemError.call("write \(path)", errno) }
    }

    private func bindListeners(for config: HostConfig) throws {
        var bound: [String: CInt] = [:]
        for l in config.listeners where listenerFDs[l.endpoint] == nil && bound[l.endpoint] == nil {
            do {
                if let path = l.path {
                    bound[l.endpoint] = try ListeningSocket.bindUnix(path: path, mode: l.mode, backlog: l.backlog)
                    Privileges.chown(path, user: config.workerUser, group: config.workerGroup)
                } else {
                    bound[l.endpoint] = try ListeningSocket.bind(address: l.address, port: l.port, backlog: l.backlog)
                }
            } catch {
                bound.values.forEach { close($0) }
                throw SystemError.message("listener '\(l.name)': \(error)")
            }
        }
        listenerFDs.merge(bound) { a, _ in a }
    }

    /// Closes listening sockets (and removes Unix socket files) by endpoint.
    private func closeListeners(_ endpoints: [String]) {
        for endpoint in endpoints {
            guard let fd = listenerFDs.removeValue(forKey: endpoint) else { continue }
            close(fd)
            if endpoint.hasPrefix("unix:") { unlink(String(endpoint.dropFirst(5))) }
        }
    }

    private func startControlSocket() throws {
        let path = config.controlSocket
        if FileManager.default.fileExists(atPath: path) {
            if (try? ControlClient.send(ControlRequest(command: .status), socket: path, timeout: 2)) != nil {
                throw SystemError.message("another postern master is running on \(path)")
            }
            unlink(path)
        }
        let old = umask(0o177)
        defer { umask(old) }
        let control = try ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineFrameDecoder(maxLength: 65536)))
                    try channel.pipeline.syncOperations.addHandler(JSONLineHandler<ControlRequest>(onMessage: { [weak self] request, context in
                        guard let self else { return }
                        let channel = context.channel
                        self.loop.flatSubmit { self.handle(request) }.whenComplete { result in
                            let response = (try? result.get()) ?? ControlResponse(ok: false, message: "internal error")
                            channel.writeAndFlush(JSONLines.encode(response)).whenComplete { _ in channel.close(promise: nil) }
                        }
                    }, onInvalid: { why, context in
                        let known = ControlCommand.allCases.map(\.rawValue).joined(separator: ", ")
                        let response = ControlResponse(ok: false, message: "not a control request (commands: \(known)): \(why)")
                        let channel = context.channel
                        channel.writeAndFlush(JSONLines.encode(response)).whenComplete { _ in channel.close(promise: nil) }
                    }))
                }
            }
            .bind(unixDomainSocketPath: path)
            .wait()
        chmod(path, 0o600)
        // The master's state belongs to `loop`; a stop handled there reads this.
        try loop.submit { self.controlChannel = control }.wait()
    }

    private func startMetricsEndpoint() throws {
        guard let listen = config.metricsListen else { return }
        let metrics = try ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(MetricsHTTPHandler(master: self))
                }
            }
            .bind(host: listen.host, port: listen.port)
            .wait()
        try loop.submit { self.metricsChannel = metrics }.wait()
    }

    private func installSignalHandlers() throws {
        let actions: [(CInt, () -> Void)] = [
            (SIGHUP, { [weak self] in
                guard let self else { return }
                self.loop.execute {
                    self.reload().whenSuccess { r in
                        if !r.ok { self.logger.error("reload on SIGHUP failed: \(r.message)") }
                    }
                }
            }),
            (SIGTERM, { [weak self] in self?.loop.execute { self?.stop(reason: "SIGTERM") } }),
            (SIGINT, { [weak self] in self?.loop.execute { self?.stop(reason: "SIGINT") } }),
            (SIGCHLD, { [weak self] in self?.loop.execute { self?.reap() } }),
        ]
        var sources: [any DispatchSourceSignal] = []
        for (sig, action) in actions {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler(handler: action)
            source.resume()
            sources.append(source)
        }
        try loop.submit { self.signalSources += sources }.wait()
        signal(SIGPIPE, SIG_IGN)
    }

    /// Asks every worker to drain, waits for them (up to the drain timeout plus a margin, then
    /// SIGKILL), and ends `run`.
    private func stop(reason: String) {
        guard !stopping else { return }
        stopping = true
        logger.info("stopping", metadata: ["reason": "\(reason)", "workers": "\(workers.count)"])
        controlChannel?.close(promise: nil)
        metricsChannel?.close(promise: nil)
        for w in workers.values {
            w.state = .draining
            kill(w.pid, SIGTERM)
        }
        loop.scheduleTask(in: .milliseconds(Int64((config.drainTimeout + 5) * 1000))) {
            for w in self.workers.values { kill(w.pid, SIGKILL) }
        }
        finishIfStopped()
    }

    private var finished = false

    private func finishIfStopped() {
        guard stopping, workers.isEmpty, !finished else { return }
        finished = true
        authProxy?.stop()
        unlink(config.controlSocket)
        closeListeners(Array(listenerFDs.keys))
        logger.info("postern stopped")
        done.signal()
    }

    /// Start-up failed: kill what was spawned and leave. The state is `loop`'s, where `reap` may
    /// be running because a worker just exited, so it is read there.
    private func shutdownNow() {
        try? loop.submit {
            for w in self.workers.values { kill(w.pid, SIGKILL) }
            if self.controlChannel != nil { unlink(self.config.controlSocket) }
        }.wait()
        authProxy?.stop()
        try? group.syncShutdownGracefully()
    }

    // MARK: generations

    /// Spawns `config.workers` workers of generation `number`; succeeds once all are ready.
    private func startGeneration(config: HostConfig, number: Int) -> EventLoopFuture<Void> {
        let snapshot: String
        do {
            snapshot = try writeSnapshot(config, name: "generation-\(number)")
        } catch {
            return loop.makeFailedFuture(error)
        }
        let readies = (0..<config.workers).map { index -> EventLoopFuture<Void> in
            spawnWorker(config: config, generation: number, index: index, snapshot: snapshot)
        }
        return EventLoopFuture.whenAllSucceed(readies, on: loop).map { _ in }
    }

    /// Starts one worker; the future succeeds when it reports ready, fails if it exits first or
    /// takes more than a minute.
    private func spawnWorker(config: HostConfig, generation: Int, index: Int, snapshot: String) -> EventLoopFuture<Void> {
        var pair: [CInt] = [0, 0]
        guard socketpair(AF_UNIX, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            return loop.makeFailedFuture(SystemError.call("socketpair", errno))
        }
        let fds = config.listeners.map { listenerFDs[$0.endpoint]! }
        let child: Spawner.Child
        do {
            child = try Spawner.spawn(arguments: ["worker", "--config", snapshot, "--origin", config.file,
                                                  "--generation", String(generation), "--index", String(index),
                                                  "--listeners", String(fds.count)],
                                      descriptors: fds + [pair[1]])
        } catch {
            close(pair[0]); close(pair[1])
            return loop.makeFailedFuture(error)
        }
        close(pair[1])
        let record = WorkerRecord(pid: child.pid, generation: generation, index: index)
        let ready = loop.makePromise(of: Void.self)
        record.ready = ready
        workers[child.pid] = record
        workersGauge.record(workers.count)
        ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineFrameDecoder(maxLength: 64 << 20)))
                    try channel.pipeline.syncOperations.addHandler(JSONLineHandler<WorkerMessage>(onMessage: { [weak self] message, _ in
                        self?.loop.execute { self?.received(message, from: record) }
                    }, onInvalid: { [weak self] why, _ in
                        self?.logger.error("worker \(record.pid) sent a status line that is not a worker message: \(why)")
                    }))
                }
            }
            .withConnectedSocket(pair[0])
            .whenComplete { result in
                switch result {
                case .success(let channel): record.channel = channel
                case .failure(let error):
                    close(pair[0])
                    self.logger.error("status channel to worker \(child.pid) failed: \(error)")
                }
            }
        loop.scheduleTask(in: .seconds(60)) {
            if record.state == .starting {
                record.ready?.fail(SystemError.message("worker \(record.pid) did not become ready within 60 s"))
                kill(record.pid, SIGKILL)
            }
        }
        logger.info("worker spawned", metadata: ["pid": "\(child.pid)", "generation": "\(generation)", "index": "\(index)"])
        return ready.futureResult
    }

    private func received(_ message: WorkerMessage, from record: WorkerRecord) {
        switch message.event {
        case .ready:
            if record.state == .starting { record.state = .ready }
            record.ready?.succeed(())
            record.ready = nil
        case .report:
            if let id = message.id, let promise = record.pending.removeValue(forKey: id) { promise.succeed(message) }
        case .reloadRequest:
            guard let id = message.id else { return }
            logger.info("reload asked by worker \(record.pid)")
            reload().whenSuccess { response in
                let answer = WorkerRequest(id: id, request: .reloaded,
                                           reply: HostControlReply(ok: response.ok, message: response.message, errors: response.errors))
                record.channel?.writeAndFlush(JSONLines.encode(answer), promise: nil)
            }
        }
    }

    /// Collects exited workers (only our own pids, so a probe's status is never taken from it).
    private func reap() {
        for pid in Array(workers.keys) {
            var status: CInt = 0
            guard waitpid(pid, &status, WNOHANG) == pid, let record = workers.removeValue(forKey: pid) else { continue }
            workersGauge.record(workers.count)
            record.channel?.close(promise: nil)
            record.pending.values.forEach { $0.succeed(nil) }
            let how = Spawner.describe(status: status)
            switch record.state {
            case .draining:
                logger.info("worker exited", metadata: ["pid": "\(pid)", "generation": "\(record.generation)", "status": "\(how)"])
            case .starting:
                logger.error("worker failed to start", metadata: ["pid": "\(pid)", "generation": "\(record.generation)", "status": "\(how)"])
                record.ready?.fail(SystemError.message("worker \(pid) of generation \(record.generation) \(how) before it was ready (see its log lines above)"))
                if record.generation == generation && !stopping { scheduleRestart(index: record.index, uptime: 0) }
            case .ready:
                logger.error("worker crashed", metadata: ["pid": "\(pid)", "generation": "\(record.generation)", "status": "\(how)"])
                if record.generation == generation && !stopping {
                    scheduleRestart(index: record.index, uptime: Date().timeIntervalSince(record.started))
                }
            }
        }
        finishIfStopped()
    }

    /// Restarts worker `index` of the current generation: at once after a long run, then with
    /// exponential backoff (50 ms doubling to 30 s) while it keeps failing.
    private func scheduleRestart(index: Int, uptime: TimeInterval) {
        let failures = uptime > 10 ? 0 : restartFailures[index, default: 0]
        restartFailures[index] = failures + 1
        let delay = min(30.0, 0.05 * pow(2, Double(failures)))
        restarts += 1
        restartCounter.increment()
        // The console's alert on restarting workers reads the count from the status file.
        writeStatusFile()
        let gen = generation
        logger.info("restarting worker", metadata: ["index": "\(index)", "delay": "\(delay)s"])
        loop.scheduleTask(in: .milliseconds(Int64(delay * 1000))) {
            guard !self.stopping, self.generation == gen,
                  !self.workers.values.contains(where: { $0.generation == gen && $0.index == index }),
                  let snapshot = try? self.writeSnapshot(self.config, name: "generation-\(gen)") else { return }
            self.spawnWorker(config: self.config, generation: gen, index: index, snapshot: snapshot)
                .whenFailure { self.logger.error("restart of worker \(index) failed: \($0)") }
        }
    }

    // MARK: reload

    /// Re-reads the config, probes the plugins in a child, binds new listeners, starts the next
    /// generation and, once it is ready, drains the previous one. Any failure leaves the running
    /// generation as it was and says why.
    func reload() -> EventLoopFuture<ControlResponse> {
        reloadNow().map { response in
            self.lastReload = NodeStatusFile.Reload(time: Date().timeIntervalSince1970, ok: response.ok, message: response.message,
                                                    errors: response.errors)
            self.writeStatusFile()
            return response
        }
    }

    private func reloadNow() -> EventLoopFuture<ControlResponse> {
        guard !stopping else { return loop.makeSucceededFuture(ControlResponse(ok: false, message: "the master is stopping")) }
        guard !reloading else { return loop.makeSucceededFuture(ControlResponse(ok: false, message: "a reload is already running")) }
        reloading = true
        let failed: ([String]) -> ControlResponse = { errors in
            self.failedReloads += 1
            self.reloadsFailed.increment()
            errors.forEach { self.logger.error("reload refused: \($0)") }
            return ControlResponse(ok: false, message: "reload refused; generation \(self.generation) keeps serving", errors: errors)
        }
        let newConfig: HostConfig
        switch HostConfig.load(file: configFile) {
        case .failure(let diagnostics):
            reloading = false
            return loop.makeSucceededFuture(failed(diagnostics.all.map { $0.description }))
        case .success(let c):
            newConfig = c
        }
        if newConfig.controlSocket != config.controlSocket || newConfig.dataDirectory != config.dataDirectory
            || newConfig.user != config.user || newConfig.group != config.group {
            reloading = false
            return loop.makeSucceededFuture(failed(["control.socket, data_dir, user and group change only with a restart"]))
        }
        let probed = loop.makePromise(of: ProbeReport.self)
        DispatchQueue.global().async {
            do { probed.succeed(try Master.probe(newConfig, snapshotDirectory: self.runDirectory)) } catch { probed.fail(error) }
        }
        return probed.futureResult.flatMap { report -> EventLoopFuture<ControlResponse> in
            guard report.ok else { return self.loop.makeSucceededFuture(failed(report.messages(config: newConfig))) }
            let before = Set(self.listenerFDs.keys)
            do {
                try self.bindListeners(for: newConfig)
            } catch {
                return self.loop.makeSucceededFuture(failed(["\(error)"]))
            }
            let added = Set(self.listenerFDs.keys).subtracting(before)
            let number = self.generation + 1
            return self.startGeneration(config: newConfig, number: number).flatMap { () -> EventLoopFuture<ControlResponse> in
                let previous = self.generation
                self.generation = number
                self.config = newConfig
                self.plugins = report.plugins
                self.restartFailures = [:]
                self.generationGauge.record(number)
                // The old workers stop accepting before the answer goes out: a connection made
                // after "reloaded" always meets the new generation. SIGTERM follows in any case
                // (a worker whose status channel is gone drains on it).
                let old = self.workers.values.filter { $0.generation < number }
                old.forEach { $0.state = .draining }
                let stopped = old.map { self.ask($0, .drain, timeout: .seconds(3)) }
                return EventLoopFuture.whenAllComplete(stopped, on: self.loop).map { _ in
                    old.forEach { kill($0.pid, SIGTERM) }
                    let inUse = Set(newConfig.listeners.map(\.endpoint))
                    self.closeListeners(self.listenerFDs.keys.filter { !inUse.contains($0) })
                    unlink(self.runDirectory + "/generation-\(previous).toml")
                    self.reloads += 1
                    self.reloadsOK.increment()
                    self.logger.info("reloaded", metadata: ["generation": "\(number)", "plugins": "\(report.plugins.map { "\($0.name) \($0.version)" })"])
                    return ControlResponse(ok: true, message: "generation \(number) serving; generation \(previous) draining")
                }
            }.flatMapError { error in
                for w in self.workers.values where w.generation == number {
                    w.state = .draining
                    kill(w.pid, SIGKILL)
                }
                self.closeListeners(Array(added))
                return self.loop.makeSucceededFuture(failed(["\(error)"]))
            }
        }.always { _ in self.reloading = false }
    }

    // MARK: control and metrics

    private func handle(_ request: ControlRequest) -> EventLoopFuture<ControlResponse> {
        switch request.command {
        case .status:
            return status().map { ControlResponse(ok: true, message: "running", status: $0) }
        case .reload:
            return reload()
        case .stop:
            loop.execute { self.stop(reason: "postern ctl stop") }
            return loop.makeSucceededFuture(ControlResponse(ok: true, message: "stopping: draining \(workers.count) workers"))
        }
    }

    /// Asks a worker over its status channel; nil if it does not answer within `timeout`.
    private func ask(_ record: WorkerRecord, _ request: WorkerRequest.Kind,
                     timeout: TimeAmount = .seconds(1)) -> EventLoopFuture<WorkerMessage?> {
        guard let channel = record.channel else { return loop.makeSucceededFuture(nil) }
        nextRequestID += 1
        let id = nextRequestID
        let promise = loop.makePromise(of: WorkerMessage?.self)
        record.pending[id] = promise
        channel.writeAndFlush(JSONLines.encode(WorkerRequest(id: id, request: request)), promise: nil)
        loop.scheduleTask(in: timeout) {
            record.pending.removeValue(forKey: id)?.succeed(nil)
        }
        return promise.futureResult
    }

    func status() -> EventLoopFuture<StatusSnapshot> {
        let records = workers.values.sorted { ($0.generation, $0.index, $0.pid) < ($1.generation, $1.index, $1.pid) }
        let answers = records.map { ask($0, .report) }
        return EventLoopFuture.whenAllComplete(answers, on: loop).map { results in
            let ws = zip(records, results).map { record, result in
                StatusSnapshot.Worker(pid: record.pid, generation: record.generation, index: record.index,
                                      state: record.state.rawValue, sessions: (try? result.get())??.sessions,
                                      uptimeSeconds: Date().timeIntervalSince(record.started))
            }
            return StatusSnapshot(
                pid: getpid(), role: self.config.role, configFile: self.configFile,
                uptimeSeconds: Date().timeIntervalSince(self.started), generation: self.generation, workers: ws,
                plugins: self.plugins,
                listeners: self.config.listeners.map { .init(name: $0.name, address: $0.path ?? $0.address, port: $0.port, plugin: $0.plugin, tls: $0.tls.rawValue) },
                reloads: self.reloads, failedReloads: self.failedReloads, workerRestarts: self.restarts)
        }
    }

    /// The master's metrics and every live worker's, each worker's labelled with its pid.
    func metrics() -> EventLoopFuture<String> {
        loop.flatSubmit {
            let records = self.workers.values.filter { $0.state != .starting }.sorted { $0.pid < $1.pid }
            return EventLoopFuture.whenAllComplete(records.map { self.ask($0, .metrics) }, on: self.loop).map { results in
                var sources = [MetricsMerge.Source(label: nil, text: PosternMetrics.exposition())]
                if let text = self.authProxy?.metrics() { sources.append(.init(label: ("process", "authproxyd"), text: text)) }
                for (record, result) in zip(records, results) {
                    if let text = (try? result.get())??.metrics {
                        sources.append(.init(label: ("worker", String(record.pid)), text: text))
                    }
                }
                return MetricsMerge.merge(sources)
            }
        }
    }
}
