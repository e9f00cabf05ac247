import Foundation
import PluginAPI
import PosternHost
import XCTest

// The store as it runs: the built store plugin (libPosternStoreSQLite.so, or
// libPosternStorePostgres.so against the test process's PostgresServer), loaded and activated by
// the host's AdminContext from a config, exactly as `postern admin` does.

/// Which store plugin a `StoreFixture` opens.
public enum StoreBackendKind: String, Sendable {
    /// `store-sqlite`: the embedded store, in the fixture's data directory.
    case sqlite
    /// `store-postgres`: a fresh database on the shared `PostgresServer`.
    case postgres
}

/// A store in a temporary data directory, opened through the host as `postern admin` opens it.
public final class StoreFixture {
    public let dir: TempDir
    public let configFile: String
    public let context: AdminContext
    public let backend: StoreBackendKind
    /// The fixture's own database, for `.postgres`.
    public let database: PostgresDatabase?

    /// The embedded store. `pluginSettings` is added to `[plugin.store-sqlite]`.
    public convenience init(_ name: String, pluginSettings: String = "") throws {
        try self.init(name, backend: .sqlite, pluginSettings: pluginSettings)
    }

    /// `pluginSettings` is added to the backend's `[plugin.NAME]` section (the plugin is loaded
    /// because that section exists). For `.postgres`, throws when the server cannot start.
    public init(_ name: String, backend: StoreBackendKind, pluginSettings: String = "") throws {
        dir = TempDir(name)
        self.backend = backend
        let section: String
        switch backend {
        case .sqlite:
            database = nil
            section = """
                [plugin.store-sqlite]
                password_iterations = 4096
                """
        case .postgres:
            // A database per fixture: tests share the server, never each other's data.
            let db = try PostgresServer.shared.createDatabase(Self.databaseName(name))
            database = db
            section = """
                [plugin.store-postgres]
                host = "\(db.host)"
                port = \(db.port)
                user = "\(db.user)"
                database = "\(db.name)"
                password_iterations = 4096
                """
        }
        let source = """
            data_dir = "\(dir.path)/data"
            user = "root"   # the store runs inside this (root) test process: tools must keep root too
            \(section)
            \(pluginSettings)

            """
        configFile = dir.path + "/postern.toml"
        try source.write(toFile: configFile, atomically: true, encoding: .utf8)
        context = try Self.open(source: source, file: configFile)
    }

    /// `postern_<name>_<random>`: readable in the server's log, unique across fixtures.
    private static func databaseName(_ name: String) -> String {
        let readable = String(name.lowercased().map { ("a"..."z").contains($0) || ("0"..."9").contains($0) ? $0 : "_" }.prefix(40))
        return "postern_\(readable)_\(UUID().uuidString.prefix(8).lowercased())"
    }

    public static func open(source: String, file: String) throws -> AdminContext {
        switch HostConfig.parse(source: source, file: file) {
        case .success(let config): return try AdminContext(config: config)
        case .failure(let diagnostics): throw SystemError.message("\(diagnostics.all)")
        }
    }

    /// Another open of the same store, as a second process (a worker, `postern admin`) would have.
    public func reopen() throws -> AdminContext {
        try Self.open(source: try String(contentsOfFile: configFile, encoding: .utf8), file: configFile)
    }

    public var accounts: any AccountStore { try! context.accounts() }
    public var store: any StorageBackend { try! context.store() }
    /// The store's credential backend: the only one these configs load, whatever its name.
    public var credentials: any CredentialBackend {
        let backends = context.services.credentialBackends
        precondition(backends.count == 1, "expected one credential backend, got \(backends.map(\.name))")
        return backends[0].backend
    }

    // The embedded store's files, for the SQLite-specific tests (StoreTests).
    public var storeDirectory: String { dir.path + "/data/store" }
    public var blobRoot: String { storeDirectory + "/blobs" }
    public var index: IndexReader { IndexReader(path: storeDirectory + "/index.sqlite") }

    /// A message file for `deliver`.
    public func messageFile(_ bytes: [UInt8]) -> String { dir.write("msg-\(UUID().uuidString)", bytes) }

    /// Creates a domain and accounts (password `secret-<local part>`).
    public func populate(domain: String = "example.org", users: [String]) async throws {
        if try await !accounts.domains().contains(domain) { try await accounts.createDomain(domain) }
        let results = try await accounts.createAccounts(users.map { NewAccount(name: "\($0)@\(domain)", password: "secret-\($0)") })
        for r in results { _ = try r.get() }
    }
}

/// The total size of the regular files under `root` (directories themselves not counted).
public func bytesUnder(_ root: String) -> Int {
    guard let walker = FileManager.default.enumerator(atPath: root) else { return 0 }
    var total = 0
    for case let relative as String in walker {
        var st = stat()
        if lstat(root + "/" + relative, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG { total += Int(st.st_size) }
    }
    return total
}

/// The regular files under `root`, relative paths, sorted.
public func filesUnder(_ root: String) -> [String] {
    guard let walker = FileManager.default.enumerator(atPath: root) else { return [] }
    var files: [String] = []
    for case let relative as String in walker {
        var st = stat()
        if lstat(root + "/" + relative, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG { files.append(relative) }
    }
    return files.sorted()
}

/// Reads the store's SQLite index directly, for what the API does not show (blob rows and their
/// reference counts). Through libsqlite3 opened with dlopen, since this bundle links no SQLite;
/// the plugin needs the same library, so it is always there.
public struct IndexReader {
    public let path: String

    public init(path: String) { self.path = path }

    private typealias OpenV2 = @convention(c) (UnsafePointer<CChar>, UnsafeMutablePointer<OpaquePointer?>, Int32, UnsafePointer<CChar>?) -> Int32
    private typealias Prepare = @convention(c) (OpaquePointer?, UnsafePointer<CChar>, Int32, UnsafeMutablePointer<OpaquePointer?>, UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> Int32
    private typealias Step = @convention(c) (OpaquePointer?) -> Int32
    private typealias ColumnCount = @convention(c) (OpaquePointer?) -> Int32
    private typealias ColumnText = @convention(c) (OpaquePointer?, Int32) -> UnsafePointer<UInt8>?
    private typealias Close = @convention(c) (OpaquePointer?) -> Int32

    private static let library: UnsafeMutableRawPointer = {
        guard let handle = dlopen("libsqlite3.so.0", RTLD_NOW | RTLD_LOCAL) else { fatalError("libsqlite3.so.0: \(String(cString: dlerror()))") }
        return handle
    }()

    private static func symbol<T>(_ name: String, _ type: T.Type) -> T {
        guard let p = dlsym(library, name) else { fatalError("no \(name) in libsqlite3") }
        return unsafeBitCast(p, to: type)
    }

    /// Every row of `sql`, each column as text (nil for NULL).
    public func rows(_ sql: String) throws -> [[String?]] {
        try withStatement(sql, flags: 0x1) { statement in   // SQLITE_OPEN_READONLY
            let step = Self.symbol("sqlite3_step", Step.self), count = Self.symbol("sqlite3_column_count", ColumnCount.self)
            let text = Self.symbol("sqlite3_column_text", ColumnText.self)
            var out: [[String?]] = []
            while true {
                let rc = step(statement)
                if rc == 101 { break }   // SQLITE_DONE
                guard rc == 100 else { throw SystemError.message("step: \(rc)") }   // SQLITE_ROW
                out.append((0..<count(statement)).map { i in text(statement, i).map { String(cString: $0) } })
            }
            return out
        }
    }

    /// Runs one statement read-write: to damage the index on purpose.
    public func execute(_ sql: String) throws {
        try withStatement(sql, flags: 0x2) { statement in   // SQLITE_OPEN_READWRITE
            let rc = Self.symbol("sqlite3_step", Step.self)(statement)
            guard rc == 101 else { throw SystemError.message("step: \(rc)") }
        }
    }

    private func withStatement<T>(_ sql: String, flags: Int32, _ body: (OpaquePointer?) throws -> T) throws -> T {
        var db: OpaquePointer?
        guard Self.symbol("sqlite3_open_v2", OpenV2.self)(path, &db, flags, nil) == 0 else { throw SystemError.message("cannot open \(path)") }
        defer { _ = Self.symbol("sqlite3_close", Close.self)(db) }
        var statement: OpaquePointer?
        guard Self.symbol("sqlite3_prepare_v2", Prepare.self)(db, sql, -1, &statement, nil) == 0 else { throw SystemError.message("cannot prepare \(sql)") }
        defer { _ = Self.symbol("sqlite3_finalize", Close.self)(statement) }
        return try body(statement)
    }

    /// The blob rows: digest -> reference count.
    public func blobRefs() throws -> [String: Int] {
        var refs: [String: Int] = [:]
        for row in try rows("SELECT digest, refs FROM blob") { refs[row[0]!] = Int(row[1]!)! }
        return refs
    }
}

/// SHA-256 of bytes in hex: the blob name of a message.
public func digest(_ bytes: [UInt8]) -> String {
    SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
}

/// A small RFC 5322 message.
public func message(_ subject: String, body: String = "Hello.") -> [UInt8] {
    Array("From: a@example.net\r\nTo: b@example.org\r\nSubject: \(subject)\r\n\r\n\(body)\r\n".utf8)
}

/// Asserts that `body` throws exactly `expected`.
public func XCTAssertThrowsExactly<E: Error & Equatable, T>(_ expected: E, _ body: () async throws -> T,
                                                     file: StaticString = #filePath, line: UInt = #line) async {
    do {
        let value = try await body()
        XCTFail("expected \(expected), got \(value)", file: file, line: line)
    } catch let error as E {
        XCTAssertEqual(error, expected, file: file, line: line)
    } catch {
        XCTFail("expected \(expected), got \(error)", file: file, line: line)
    }
}

// XCTest's assertions take synchronous autoclosures; these take `try await` expressions. A throw
// is a failure that names the error.

public func assertEqual<T: Equatable>(_ a: @autoclosure () async throws -> T, _ b: @autoclosure () async throws -> T, _ message: String = "",
                               file: StaticString = #filePath, line: UInt = #line) async {
    do {
        let x = try await a(), y = try await b()
        XCTAssertEqual(x, y, message, file: file, line: line)
    } catch {
        XCTFail("threw \(error) \(message)", file: file, line: line)
    }
}

public func assertNotEqual<T: Equatable>(_ a: @autoclosure () async throws -> T, _ b: @autoclosure () async throws -> T, _ message: String = "",
                                  file: StaticString = #filePath, line: UInt = #line) async {
    do {
        let x = try await a(), y = try await b()
        XCTAssertNotEqual(x, y, message, file: file, line: line)
    } catch {
        XCTFail("threw \(error) \(message)", file: file, line: line)
    }
}

public func assertTrue(_ a: @autoclosure () async throws -> Bool, _ message: String = "", file: StaticString = #filePath, line: UInt = #line) async {
    do {
        let x = try await a()
        XCTAssertTrue(x, message, file: file, line: line)
    } catch {
        XCTFail("threw \(error) \(message)", file: file, line: line)
    }
}
