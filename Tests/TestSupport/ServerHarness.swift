import Foundation
import PosternHost
import XCTest

/// Runs the real `postern` binary built beside this test bundle.
public enum Build {
    /// `.build/<triple>/<configuration>`, where SwiftPM put postern, libPluginAPI.so and the plugins.
    public static let directory: String = {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = (exe as NSString).deletingLastPathComponent
        // xctest bundles live in PosternPackageTests.xctest/ on some layouts.
        if dir.hasSuffix(".xctest") { dir = (dir as NSString).deletingLastPathComponent }
        return dir
    }()
    public static let postern = directory + "/postern"
    /// The package root (for Examples/ and the plugin sources).
    public static let packageRoot: String = {
        var dir = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { dir.deleteLastPathComponent() }
        return dir.path
    }()

    /// A program from PATH.
    public static func tool(_ name: String) throws -> String {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw SystemError.message("\(name) not found in PATH")
    }

    /// Runs a command and returns its exit status and combined output.
    @discardableResult
    public static func run(_ executable: String, _ arguments: [String], cwd: String? = nil, environment: [String: String]? = nil) -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let cwd { process.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, b in b } }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch { return (-1, "cannot run \(executable): \(error)") }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Runs a command; returns its exit status and its standard output and error apart, as text.
    @discardableResult
    public static func runSeparately(_ executable: String, _ arguments: [String], cwd: String? = nil,
                                     environment: [String: String]? = nil) -> (status: Int32, stdout: String, stderr: String) {
        let r = runBytes(executable, arguments, cwd: cwd, environment: environment)
        return (r.status, String(decoding: r.stdout, as: UTF8.self), String(decoding: r.stderr, as: UTF8.self))
    }

    /// Runs a command; returns its exit status and raw standard output and error (for message
    /// bytes compared exactly). `environment` replaces the process's environment.
    public static func runBytes(_ executable: String, _ arguments: [String], cwd: String? = nil,
                                environment: [String: String]? = nil) -> (status: Int32, stdout: Data, stderr: Data) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let cwd { process.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        if let environment { process.environment = environment }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch { return (-1, Data(), Data("cannot run \(executable): \(error)".utf8)) }
        // Both pipes drained concurrently, so a chatty child never blocks on a full pipe.
        nonisolated(unsafe) var errData = Data()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errData = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return (process.terminationStatus, outData, errData)
    }
}

/// A running `postern serve`, stopped (and checked to stop) when the test ends.
public final class ServerProcess {
    public let dir: TempDir
    public let configFile: String
    public let process = Process()
    public let logFile: String

    public init(dir: TempDir, config: String) throws {
        self.dir = dir
        // The tests make their own accounts; FirstRunTests turns the first account on.
        var text = config.contains("first_account") ? config : "first_account = false\n" + config
        // The test plugins live outside the package's products (FixturePlugins).
        if !text.contains("[plugins]"), FixturePlugins.isNamed(in: text) {
            text += "\n[plugins]\npath = [\"\(FixturePlugins.path)\"]\n"
        }
        configFile = dir.write("postern.toml", text)
        logFile = dir.path + "/postern.log"
        // A server started again in the same directory (after a crash) appends to the same log.
        if !FileManager.default.fileExists(atPath: logFile) { FileManager.default.createFile(atPath: logFile, contents: nil) }
        process.executableURL = URL(fileURLWithPath: Build.postern)
        process.arguments = ["serve", "-c", configFile]
        process.currentDirectoryURL = URL(fileURLWithPath: dir.path)
        let output = FileHandle(forWritingAtPath: logFile)
        output?.seekToEndOfFile()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // The child holds its own copy; the suite runs in one process, which must not keep a
        // descriptor per server it ever started.
        try? output?.close()
    }

    /// Starts `postern serve` and waits until it says it started; throws with its log otherwise.
    public static func start(_ dir: TempDir, _ config: String) throws -> ServerProcess {
        let server = try ServerProcess(dir: dir, config: config)
        guard server.waitStarted() else {
            server.stop()
            throw SystemError.message("postern did not start:\n\(server.log)")
        }
        return server
    }

    public var log: String { (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "" }

    /// Waits for "postern started" (or the process to end); false on failure. Only what this
    /// process wrote counts, so a restart in the same directory waits for its own start.
    public func waitStarted(timeout: Double = 60) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if log.contains("serve[\(process.processIdentifier)] info master: postern started") { return true }
            if !process.isRunning { return false }
            usleep(50_000)
        }
        return false
    }

    public func ctl(_ command: String) -> (status: Int32, output: String) {
        Build.run(Build.postern, ["ctl", command, "-c", configFile, "--json"], cwd: dir.path)
    }

    public func status() throws -> StatusSnapshot {
        let (code, output) = ctl("status")
        guard code == 0 else { throw SystemError.message("ctl status failed: \(output)") }
        return try XCTUnwrap(JSONDecoder().decode(ControlResponse.self, from: Data(output.utf8)).status)
    }

    public func reload() throws -> ControlResponse {
        let (_, output) = ctl("reload")
        return try JSONDecoder().decode(ControlResponse.self, from: Data(output.utf8))
    }

    /// Stops the master with `ctl stop` and waits for it to exit.
    public func stop(timeout: Double = 30) {
        guard process.isRunning else { return }
        _ = ctl("stop")
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        if process.isRunning { process.terminate() }
    }

    /// A crash of the whole server: SIGKILL to the master and every worker at once (no drain,
    /// no clean-up), then waits for the master to be gone.
    public func killEverything() {
        let workers = (try? status().workers.map(\.pid)) ?? []
        kill(process.processIdentifier, SIGKILL)
        for pid in workers { kill(pid, SIGKILL) }
        process.waitUntilExit()
        // Workers of a dead master are not our children: wait until each pid is gone.
        let deadline = Date().addingTimeInterval(10)
        while workers.contains(where: { kill($0, 0) == 0 }) && Date() < deadline { usleep(20_000) }
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
        }
    }
}

/// Why `connectLoopback` failed: the connect's errno.
public struct ConnectError: Error { public let code: Int32 }

/// A blocking TCP connection to 127.0.0.1:`port` with send and receive timeouts.
public func connectLoopback(port: Int, timeout: Int) -> Result<CInt, ConnectError> {
    let fd = socket(AF_INET, CInt(SOCK_STREAM.rawValue), 0)
    var tv = timeval(tv_sec: timeout, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    guard rc == 0 else {
        let e = errno
        close(fd)
        return .failure(ConnectError(code: e))
    }
    return .success(fd)
}

/// A blocking line client for the test protocols, with timeouts.
public final class LineClient {
    public let fd: CInt
    private var buffer: [UInt8] = []

    public enum Failure: Error, CustomStringConvertible {
        case refused(Int32), timeout, closed, io(Int32)
        public var description: String {
            switch self {
            case .refused(let e): return "connect failed: \(String(cString: strerror(e)))"
            case .timeout: return "timed out"
            case .closed: return "connection closed"
            case .io(let e): return "io error: \(String(cString: strerror(e)))"
            }
        }
    }

    public init(port: Int, timeout: Int = 10) throws {
        switch connectLoopback(port: port, timeout: timeout) {
        case .success(let fd): self.fd = fd
        case .failure(let e): throw Failure.refused(e.code)
        }
    }

    deinit { close(fd) }

    public func send(_ line: String) throws {
        let bytes = Array((line + "\r\n").utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { throw Failure.io(errno) }
            offset += n
        }
    }

    public func readLine() throws -> String {
        while true {
            if let i = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                var line = Array(buffer[..<i])
                buffer.removeSubrange(...i)
                if line.last == UInt8(ascii: "\r") { line.removeLast() }
                return String(decoding: line, as: UTF8.self)
            }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = read(fd, &chunk, chunk.count)
            if n < 0 && errno == EINTR { continue }
            if n == 0 { throw Failure.closed }
            if n < 0 { throw errno == EAGAIN || errno == EWOULDBLOCK ? Failure.timeout : Failure.io(errno) }
            buffer += chunk[0..<n]
        }
    }

    public func command(_ line: String) throws -> String {
        try send(line)
        return try readLine()
    }
}

/// Whether a process has `fragment` (a library file name) mapped.
public func processMaps(_ pid: Int32, contain fragment: String) -> Bool {
    // Read to the end: /proc files have size 0, and a read sized by it may stop after one page.
    guard let handle = FileHandle(forReadingAtPath: "/proc/\(pid)/maps"), let data = try? handle.readToEnd() else { return false }
    return String(decoding: data, as: UTF8.self).contains(fragment)
}

/// `GET path` over HTTP/1.0; returns the body of a 200 response.
public func httpGet(port: Int, path: String) throws -> String {
    let client = try LineClient(port: port)
    try client.send("GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\n")
    var lines: [String] = []
    while let line = try? client.readLine() { lines.append(line) }
    guard lines.first?.contains(" 200 ") == true, let blank = lines.firstIndex(of: "") else {
        throw SystemError.message("bad HTTP answer: \(lines.prefix(3))")
    }
    return lines[(blank + 1)...].joined(separator: "\n")
}

/// The test plugins (`Tests/Plugins/<Name>`): built for the tests alone, never products of the
/// package, so they never land in the directory `make run` and installs load plugins from.
/// Compiled once per test process with swiftc against the modules and `libPluginAPI.so` of the
/// build that made this test bundle, into `.build/test-plugins/`; tests name that directory in
/// `[plugins] path`.
public enum FixturePlugins {
    public static let names = ["Greeter", "BadABI", "MissingDep", "PrivateNIO", "ThrowingEntry"]
    public static let pluginNames = ["greeter", "bad-abi", "missing-dep", "private-nio", "throwing-entry"]

    /// Whether a config uses one of them.
    public static func isNamed(in config: String) -> Bool {
        pluginNames.contains { config.contains("\"\($0)\"") || config.contains("[plugin.\($0)]") }
    }

    /// `directory()`, or a path that does not exist when the build failed (which then shows as
    /// "no file libPostern<Name>.so" in the test that needed it, after the build error printed here).
    public static var path: String {
        do { return try directory() } catch {
            print("FixturePlugins: \(error)")
            return Build.directory + "/test-plugins-failed-to-build"
        }
    }
    private static let lock = NSLock()
    nonisolated(unsafe) private static var built: String?

    /// The directory holding every fixture plugin, built on first use.
    public static func directory() throws -> String {
        try lock.withLock {
            if let built { return built }
            let dir = Build.directory + "/test-plugins"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            for name in names {
                let sources = Build.packageRoot + "/Tests/Plugins/" + name
                let files = try FileManager.default.contentsOfDirectory(atPath: sources).filter { $0.hasSuffix(".swift") }.sorted()
                    .map { sources + "/" + $0 }
                // The deliberately bad one carries its own NIOCore, linked from this build's objects.
                let extra = name == "PrivateNIO" ? try privateNIOObjects() : []
                try compile(module: "Postern\(name)", sources: files, objects: extra, into: dir, work: dir + "/work-\(name)")
            }
            built = dir
            return dir
        }
    }

    private static func privateNIOObjects() throws -> [String] {
        let objects = Build.directory + "/NIOCore.build"
        return try FileManager.default.contentsOfDirectory(atPath: objects).filter { $0.hasSuffix(".o") }.sorted().map { objects + "/" + $0 }
    }

    /// The C modules NIO imports, as SwiftPM passes them.
    public static var moduleMaps: [String] {
        var maps: [String] = []
        let build = Build.directory
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: build)) ?? [] where entry.hasSuffix(".build") {
            let map = "\(build)/\(entry)/module.modulemap"
            if FileManager.default.fileExists(atPath: map) { maps.append(map) }
        }
        for root in [Build.packageRoot + "/.build/checkouts", Build.packageRoot + "/PluginAPI/.build/checkouts"] {
            for package in (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [] {
                let sourcesDir = "\(root)/\(package)/Sources"
                for target in (try? FileManager.default.contentsOfDirectory(atPath: sourcesDir)) ?? [] {
                    let map = "\(sourcesDir)/\(target)/include/module.modulemap"
                    if FileManager.default.fileExists(atPath: map) { maps.append(map) }
                }
            }
        }
        // PluginAPI's own system libraries (CLibCrypt): its module records them, so a plugin
        // built against it must find their maps too.
        let own = Build.packageRoot + "/PluginAPI/Sources"
        for target in (try? FileManager.default.contentsOfDirectory(atPath: own)) ?? [] {
            let map = "\(own)/\(target)/module.modulemap"
            if FileManager.default.fileExists(atPath: map) { maps.append(map) }
        }
        return maps
    }

    /// `libMODULE.so` from `sources` (and `objects`) into `directory`, by rename: a mapped shared
    /// object is never overwritten in place.
    public static func compile(module: String, sources: [String], objects: [String] = [], into directory: String, work: String) throws {
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let build = Build.directory
        let staging = work + "/lib\(module).so.new"
        var args = ["-emit-library", "-parse-as-library", "-module-name", module, "-swift-version", "5",
                    "-I", build + "/Modules", "-L", build, "-lPluginAPI", "-module-cache-path", work + "/module-cache",
                    "-Xlinker", "-rpath", "-Xlinker", build] + sources + objects + ["-o", staging]
        for map in moduleMaps { args += ["-Xcc", "-fmodule-map-file=\(map)"] }
        let (status, output) = Build.run(try Build.tool("swiftc"), args)
        guard status == 0 else { throw SystemError.message("swiftc \(module) failed: \(output)") }
        guard rename(staging, directory + "/lib\(module).so") == 0 else { throw SystemError.call("rename", errno) }
    }
}

/// Compiles the Greeter test plugin with another greeting into `directory`, replacing the file
/// there by rename, as an administrator installing a new build would (never overwrite a mapped
/// shared object in place).
public func rebuildGreeter(greeting: String, into directory: String, work: String) throws {
    let sources = Build.packageRoot + "/Tests/Plugins/Greeter"
    let src = work + "/src"
    try? FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
    try "let builtGreeting = \"\(greeting)\"\n".write(toFile: src + "/Greeting.swift", atomically: true, encoding: .utf8)
    try FixturePlugins.compile(module: "PosternGreeter", sources: [src + "/Greeting.swift", sources + "/Plugin.swift"], into: directory, work: work)
}

/// A self-signed certificate and key for `name` (openssl), in `dir`.
public func makeCertificate(_ dir: TempDir, _ name: String) throws -> (cert: String, key: String) {
    let cert = dir.path + "/\(name).crt", key = dir.path + "/\(name).key"
    let (code, output) = Build.run(try Build.tool("openssl"), ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                                                               "-out", cert, "-subj", "/CN=\(name)", "-days", "2"])
    guard code == 0 else { throw SystemError.message("openssl: \(output)") }
    return (cert, key)
}
