import Foundation
import PosternHost
#if canImport(Glibc)
import Glibc
#endif

// A real PostgreSQL for the tests of `store-postgres`: the Debian package's binaries, one private
// cluster per test process on 127.0.0.1 at a free high port, never the system's own cluster.

/// Where one test's store lives on the shared server: what `[plugin.store-postgres]` is given.
public struct PostgresDatabase: Sendable, Equatable {
    public let host: String
    public let port: Int
    public let user: String
    public let name: String
}

/// A throw-away PostgreSQL server in a temporary directory (`initdb`, then `postgres` as a child
/// process), started at the first use of `shared` and stopped when the test process exits.
/// Starting a cluster takes seconds, so every test of the process shares this one and gets a
/// fresh database of its own from `createDatabase`.
public final class PostgresServer: @unchecked Sendable {   // every stored property is let
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// The bootstrap superuser (initdb `-U`); trust authentication, so no password.
    public let user = "postern"
    public let port: Int
    public let binDirectory: String
    /// Holds `data/` (the cluster), the Unix socket and `postgres.out` (the server's log).
    public let directory: String
    private let peer: PeerProcess

    /// The server of this test process, started on first use. Throws (failing the test, never
    /// skipping it) when PostgreSQL is not installed or does not start; every later use throws the
    /// same error without trying again.
    public static var shared: PostgresServer {
        get throws { try instance.get() }
    }

    private static let instance: Result<PostgresServer, any Error> = {
        let result = Result { try PostgresServer() }
        if case .success = result {
            // XCTest ends the process with exit(), which runs this; a process killed otherwise
            // leaves its server to the next run's `stopAbandoned`.
            atexit { if case .success(let server) = PostgresServer.instance { server.stop() } }
        }
        return result
    }()

    private init() throws {
        binDirectory = try Self.binDirectory()
        // PostgreSQL refuses to run as root: as root (CI), the cluster belongs to the `postgres`
        // system user the Debian package creates, and initdb and postgres run as that user.
        let account: (uid: uid_t, gid: gid_t)?
        if geteuid() == 0 {
            guard let pw = getpwnam("postgres") else {
                throw Failure("the tests run as root and PostgreSQL refuses to: it must run as the system user 'postgres', which "
                              + "the Debian package `postgresql` creates (apt-get install postgresql, or scripts/install-deps.sh test)")
            }
            account = (pw.pointee.pw_uid, pw.pointee.pw_gid)
        } else {
            account = nil
        }
        // Under /tmp when root: TMPDIR may be a directory the postgres user cannot enter.
        let base = account == nil ? NSTemporaryDirectory() : "/tmp/"
        Self.stopAbandoned(in: base)
        directory = base + "postern-postgres-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try "\(getpid())\n".write(toFile: directory + "/owner", atomically: true, encoding: .utf8)
        if let account {
            chown(directory, account.uid, account.gid)
            chmod(directory, 0o700)
        }
        do {
            // --no-locale: the C collation, whatever this machine's locale, so a run here orders
            // text as a run on CI does. --no-sync: initdb's files are thrown away with the run;
            // the server itself keeps fsync on, as a store's commits are meant to be.
            let initdb = Build.run(Self.asServerUser(account != nil, binDirectory + "/initdb"),
                                   Self.asServerUserArguments(account != nil, binDirectory + "/initdb") + [
                                       "-D", directory + "/data", "-U", user, "--auth=trust", "--encoding=UTF8", "--no-locale", "--no-sync",
                                   ], cwd: directory)
            guard initdb.status == 0 else { throw Failure("initdb failed (\(initdb.status)):\n\(initdb.output)") }
            let started = try Self.startServer(binDirectory: binDirectory, directory: directory, user: user, asServerUser: account != nil)
            port = started.port
            peer = started.server
        } catch {
            Self.stopCluster(in: directory)
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
    }

    /// Starts postgres on a free port and waits until it accepts sessions. A port free a moment
    /// ago may be taken by the time postgres binds it: then another one.
    private static func startServer(binDirectory: String, directory: String, user: String, asServerUser: Bool) throws -> (port: Int, server: PeerProcess) {
        var lastError: any Error = Failure("postgres did not start")
        for _ in 0..<3 {
            let port = freePort()
            do {
                let server = try start(binDirectory: binDirectory, directory: directory, port: port, asServerUser: asServerUser)
                try waitUntilReady(binDirectory: binDirectory, port: port, user: user, server: server)
                return (port, server)
            } catch {
                stopCluster(in: directory)
                lastError = error
            }
        }
        throw lastError
    }

    /// The newest installed version's bin directory (`/usr/lib/postgresql/15/bin`).
    static func binDirectory() throws -> String {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [])
            .filter { FileManager.default.isExecutableFile(atPath: "\(root)/\($0)/bin/initdb") && FileManager.default.isExecutableFile(atPath: "\(root)/\($0)/bin/postgres") }
            .sorted { (Double($0) ?? 0) < (Double($1) ?? 0) }
        guard let newest = versions.last else {
            throw Failure("PostgreSQL is not installed (no \(root)/*/bin/initdb): install the Debian package `postgresql` "
                          + "(apt-get install postgresql, or scripts/install-deps.sh test)")
        }
        return "\(root)/\(newest)/bin"
    }

    /// `runuser -u postgres -- PROGRAM` when the server runs as the postgres user.
    private static func asServerUser(_ switching: Bool, _ program: String) -> String { switching ? "/usr/sbin/runuser" : program }
    private static func asServerUserArguments(_ switching: Bool, _ program: String) -> [String] {
        switching ? ["-u", "postgres", "--", program] : []
    }

    private static func start(binDirectory: String, directory: String, port: Int, asServerUser: Bool) throws -> PeerProcess {
        let postgres = binDirectory + "/postgres"
        // The socket in our own directory, not /var/run/postgresql (the system cluster's, and
        // only writable by postgres). 300 connections: each fixture's store keeps a pool open
        // until its test ends.
        return try PeerProcess("postgres", Self.asServerUser(asServerUser, postgres), Self.asServerUserArguments(asServerUser, postgres) + [
            "-D", directory + "/data", "-p", "\(port)", "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=\(directory)",
            "-c", "max_connections=300", "-c", "log_min_messages=warning",
        ], dir: directory, port: port)
    }

    /// The port accepts connections during recovery too ("the database system is starting up"):
    /// ready is when pg_isready says so.
    private static func waitUntilReady(binDirectory: String, port: Int, user: String, server: PeerProcess) throws {
        let deadline = Date().addingTimeInterval(30)
        var last = ""
        while Date() < deadline {
            let r = Build.run(binDirectory + "/pg_isready", ["-h", "127.0.0.1", "-p", "\(port)", "-U", user, "-d", "postgres"])
            if r.status == 0 { return }
            last = r.output
            usleep(100_000)
        }
        server.stop()
        throw Failure("postgres on 127.0.0.1:\(port) did not become ready: \(last)\n\(server.output)")
    }

    /// A new, empty database (UTF-8, from template0, owned by `user`). `name`: lower-case letters,
    /// digits and `_`, at most 63 characters.
    public func createDatabase(_ name: String) throws -> PostgresDatabase {
        guard !name.isEmpty, name.count <= 63, name.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }) else {
            throw Failure("'\(name)' is not a database name these tests use (a-z, 0-9, _; at most 63)")
        }
        let r = Build.run(binDirectory + "/createdb", ["-h", "127.0.0.1", "-p", "\(port)", "-U", user, "-T", "template0", "-E", "UTF8", name])
        guard r.status == 0 else { throw Failure("createdb \(name) failed (\(r.status)): \(r.output)") }
        return PostgresDatabase(host: "127.0.0.1", port: port, user: user, name: name)
    }

    /// What the server logged (warnings and errors).
    public var log: String { peer.output }

    /// Fast shutdown (open sessions are ended), then the directory goes.
    func stop() {
        Self.stopCluster(in: directory)
        peer.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Signals the postmaster of the cluster in `directory` directly, not the `runuser` in front of
    /// it: SIGINT is PostgreSQL's fast shutdown, where SIGTERM would wait for every client to
    /// disconnect. Waits up to 10 s, then SIGKILL.
    private static func stopCluster(in directory: String) {
        guard let pid = postmasterPID(in: directory) else { return }
        kill(pid, SIGINT)
        let deadline = Date().addingTimeInterval(10)
        while kill(pid, 0) == 0 && Date() < deadline { usleep(50_000) }
        if kill(pid, 0) == 0 { kill(pid, SIGKILL) }
    }

    /// The running postmaster of that cluster: the first line of `postmaster.pid`, if that process
    /// is still a postgres (a pid may have been reused since).
    private static func postmasterPID(in directory: String) -> pid_t? {
        guard let text = try? String(contentsOfFile: directory + "/data/postmaster.pid", encoding: .utf8),
              let first = text.split(separator: "\n").first, let pid = pid_t(first), pid > 0,
              let cmdline = try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8),
              cmdline.contains("postgres") else { return nil }
        return pid
    }

    /// Stops the servers of earlier test processes that died without their atexit (a crash, a
    /// SIGKILL), found by their `owner` file, and removes their directories.
    private static func stopAbandoned(in base: String) {
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? [] where entry.hasPrefix("postern-postgres-") {
            let dir = base + entry
            guard let text = try? String(contentsOfFile: dir + "/owner", encoding: .utf8),
                  let owner = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)),
                  kill(owner, 0) != 0 && errno == ESRCH else { continue }
            stopCluster(in: dir)
            try? FileManager.default.removeItem(atPath: dir)
        }
    }
}
