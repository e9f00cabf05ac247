import Foundation
import PosternTestSupport
import PluginAPI
import PosternHost
import XCTest

/// Everything a client or administrator can observe of a store, for comparing a store with its
/// restored copy. Partition paths are left out: a restore moves blobs to its own partitions.
struct StoreDump: Equatable {
    struct Account: Equatable {
        var name: String, enabled: Bool, adminLevel: String, quotaBytes: Int?, quotaMessages: Int?
        var bytesUsed: Int, messagesUsed: Int, created: Int64
    }
    struct Message: Equatable {
        var uid: UInt32, flags: [String], modseq: UInt64, internalDate: Int64, size: Int, content: [UInt8]
    }
    struct Mailbox: Equatable {
        var name: String, attributes: [String], status: MailboxStatus, messages: [Message]
    }
    var domains: [String]
    var accounts: [Account]
    var mailboxes: [String: [Mailbox]]

    static func of(_ accounts: any AccountStore, _ store: any StorageBackend) async throws -> StoreDump {
        var dump = StoreDump(domains: try await accounts.domains(), accounts: [], mailboxes: [:])
        for a in try await accounts.accounts(domain: nil) {
            dump.accounts.append(Account(name: a.name, enabled: a.enabled, adminLevel: a.adminLevel, quotaBytes: a.quotaBytes,
                                         quotaMessages: a.quotaMessages, bytesUsed: a.bytesUsed, messagesUsed: a.messagesUsed, created: a.created))
            var boxes: [Mailbox] = []
            for m in try await store.mailboxes(user: a.name) {
                var messages: [Message] = []
                for s in try await store.messages(user: a.name, mailbox: m.name, uids: 1...UInt32.max) {
                    messages.append(Message(uid: s.uid, flags: s.flags, modseq: s.modseq, internalDate: s.internalDate, size: s.size,
                                            content: try await store.content(user: a.name, mailbox: m.name, uid: s.uid)))
                }
                boxes.append(Mailbox(name: m.name, attributes: m.attributes, status: try await store.status(user: a.name, mailbox: m.name), messages: messages))
            }
            dump.mailboxes[a.name] = boxes
        }
        return dump
    }
}

final class BackupTests: XCTestCase {
    /// A store with two accounts, flags, a user mailbox, an expunged message and a quota.
    func populated() async throws -> StoreFixture {
        let f = try StoreFixture("backup-src")
        try await f.populate(users: ["alice", "bob"])
        let store = f.store
        for i in 0..<5 {
            _ = try await store.deliver(messagePath: f.messageFile(message("hello \(i)")), to: ["alice@example.org", "bob@example.org"], mailbox: nil)
        }
        _ = try await store.setFlags(user: "alice@example.org", mailbox: "INBOX", uids: [1, 3], flags: ["\\Seen", "$Label1"], mode: .add)
        _ = try await store.setFlags(user: "alice@example.org", mailbox: "INBOX", uids: [2], flags: ["\\Deleted"], mode: .add)
        _ = try await store.expunge(user: "alice@example.org", mailbox: "INBOX", uids: nil)
        try await store.createMailbox(user: "bob@example.org", name: "Projects")
        _ = try await store.append(user: "bob@example.org", mailbox: "Projects", message: message("plan", body: String(repeating: "x", count: 100_000)),
                                   flags: ["\\Flagged"], internalDate: 1_000_000_000)
        _ = try await store.copy(user: "bob@example.org", from: "INBOX", uids: [4, 5], to: "Projects", move: true)
        try await f.accounts.setQuota(account: "bob@example.org", bytes: 10_000_000, messages: 100)
        try await f.accounts.setEnabled(account: "alice@example.org", enabled: false)
        return f
    }

    func testRoundTripKeepsEverything() async throws {
        let f = try await populated()
        let before = try await StoreDump.of(f.accounts, f.store)
        let backup = f.dir.path + "/backup"
        let report = try await f.store.backup(to: backup)
        XCTAssertEqual(report.messages, 10)   // alice 4 (one expunged), bob 3 + 3 in Projects
        XCTAssertEqual(report.blobs, 6)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: backup).sorted(), ["MANIFEST", "blobs", "index.sqlite"])
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: backup + "/MANIFEST"))) as? [String: Any]
        XCTAssertEqual(manifest?["format"] as? Int, 1)
        XCTAssertEqual(manifest?["partitions"] as? [String], [f.blobRoot])
        XCTAssertEqual(filesUnder(backup + "/blobs").count, 6)

        let g = try StoreFixture("backup-dst")
        let restored = try await g.store.restore(from: backup, force: false)
        XCTAssertEqual(restored.messages, report.messages)
        XCTAssertEqual(restored.blobs, report.blobs)
        XCTAssertEqual(restored.bytes, report.bytes)
        let after = try await StoreDump.of(g.accounts, g.store)
        XCTAssertEqual(after, before)
        XCTAssertEqual(after.mailboxes["bob@example.org"]?.first { $0.name == "Projects" }?.messages.map(\.uid), [1, 2, 3])
        // Blobs moved to this store's partition, single instance kept (alice and bob share files).
        await assertEqual(try await g.accounts.account("bob@example.org")?.partition, g.blobRoot)
        XCTAssertEqual(try g.index.blobRefs(), try f.index.blobRefs())
        let check = try await g.store.verifyIntegrity()
        XCTAssertEqual(check.problems, [])
        XCTAssertEqual(check.unreferencedFiles, [])
        // Secrets came along: passwords still verify, suspension too.
        await assertEqual(try await g.credentials.verifyPassword(user: "bob@example.org", password: "secret-bob"), .verified(user: "bob@example.org"))
        await assertEqual(try await g.credentials.verifyPassword(user: "bob@example.org", password: "wrong"), .wrongPassword)
        await assertEqual(try await g.credentials.verifyPassword(user: "alice@example.org", password: "secret-alice"), .suspended(user: "alice@example.org"))
        // The restored store works on: UIDs continue where they were.
        let next = try await g.store.deliver(messagePath: g.messageFile(message("after restore")), to: ["bob@example.org"], mailbox: nil)
        XCTAssertEqual(next.map(\.reply.code), [250])
        await assertEqual(try await g.store.messages(user: "bob@example.org", mailbox: "INBOX", uids: 1...UInt32.max).map(\.uid), [1, 2, 3, 6])
    }

    func testRefusals() async throws {
        let f = try await populated()
        let backup = f.dir.path + "/backup"
        _ = try await f.store.backup(to: backup)
        // Not into a directory that has something in it.
        await assertThrows(contains: "not empty") { try await f.store.backup(to: backup) }

        let g = try StoreFixture("backup-refuse")
        let incomplete = g.dir.path + "/incomplete"
        try FileManager.default.copyItem(atPath: backup, toPath: incomplete)
        try FileManager.default.removeItem(atPath: incomplete + "/MANIFEST")
        await assertThrows(contains: "no MANIFEST") { try await g.store.restore(from: incomplete, force: false) }
        await assertThrows(contains: "no MANIFEST") { try await g.store.restore(from: g.dir.path + "/nothing", force: false) }
        await assertEqual(try await g.accounts.accounts(domain: nil).count, 0)

        // A store with accounts is replaced only with force.
        try await g.populate(domain: "other.example", users: ["carol"])
        let carolsMail = message("carol's")
        _ = try await g.store.deliver(messagePath: g.messageFile(carolsMail), to: ["carol@other.example"], mailbox: nil)
        await assertThrows(contains: "has accounts") { try await g.store.restore(from: backup, force: false) }
        await assertEqual(try await g.accounts.accounts(domain: nil).map(\.name), ["carol@other.example"])
        _ = try await g.store.restore(from: backup, force: true)
        await assertEqual(try await g.accounts.accounts(domain: nil).map(\.name), ["alice@example.org", "bob@example.org"])
        await assertEqual(try await g.accounts.domains(), ["example.org"])
        let check = try await g.store.verifyIntegrity()
        XCTAssertEqual(check.problems, [])
        XCTAssertEqual(check.unreferencedFiles, [], "the replaced store's files are gone")
        XCTAssertFalse(FileManager.default.fileExists(atPath: g.blobRoot + "/" + String(digest(carolsMail).prefix(2))
                                                      + "/" + String(digest(carolsMail).dropFirst(2).prefix(2)) + "/" + digest(carolsMail)))
    }

    /// The acceptance test: backups taken while another open of the store (another
    /// process, as far as the store can tell) delivers 300 messages and expunges many of them
    /// restore into stores that pass the integrity check and hold exactly the snapshot's messages.
    /// The last round, under the write lock (taken at once here): it once failed every time,
    /// because SQLite will not back up from a connection that holds a write transaction.
    func testBackupUnderTheWriteLock() async throws {
        let f = try StoreFixture("backup-locked")
        try await f.populate(users: ["alice"])
        for i in 0..<5 {
            _ = try await f.store.deliver(messagePath: f.messageFile(message("locked \(i)", body: "body \(i)\r\n")), to: ["alice@example.org"], mailbox: nil)
        }
        setenv("POSTERN_TEST_BACKUP_LOCK_FREE_ROUNDS", "0", 1)
        defer { unsetenv("POSTERN_TEST_BACKUP_LOCK_FREE_ROUNDS") }
        let report = try await f.store.backup(to: f.dir.path + "/locked-backup")
        XCTAssertEqual(report.messages, 5)
        let g = try StoreFixture("backup-locked-dst")
        let restored = try await g.store.restore(from: f.dir.path + "/locked-backup", force: false)
        XCTAssertEqual(restored.messages, 5)
        let check = try await g.store.verifyIntegrity()
        XCTAssertEqual(check.problems, [])
    }

    func testBackupDuringDeliveryLoop() async throws {
        let f = try StoreFixture("backup-loop")
        try await f.populate(users: ["alice", "bob"])
        let writer = try f.reopen()
        let store = try writer.store()
        let files = (0..<300).map { f.messageFile(message("loop \($0)", body: String(repeating: "line \($0)\r\n", count: 50 + $0 % 200))) }
        let progress = Counter()
        let delivering = Task { () -> [Int] in
            var codes: [Int] = []
            for (i, file) in files.enumerated() {
                // Both recipients: one file, two references; expunged from one or both.
                codes += try await store.deliver(messagePath: file, to: ["alice@example.org", "bob@example.org"], mailbox: nil).map(\.reply.code)
                if i % 2 == 1 {
                    let uid = UInt32(i)   // the previous message: its blob loses references mid-backup
                    for user in i % 4 == 1 ? ["alice@example.org", "bob@example.org"] : ["alice@example.org"] {
                        _ = try await store.setFlags(user: user, mailbox: "INBOX", uids: [uid], flags: ["\\Deleted"], mode: .add)
                        _ = try await store.expunge(user: user, mailbox: "INBOX", uids: [uid])
                    }
                }
                progress.set(i + 1)
            }
            return codes
        }
        while progress.value < 20 { try await Task.sleep(nanoseconds: 5_000_000) }
        var backups: [String] = []
        var overlapped = 0
        while (progress.value < 300 && backups.count < 6) || backups.isEmpty {
            let dir = f.dir.path + "/backup-\(backups.count)"
            _ = try await f.store.backup(to: dir)
            backups.append(dir)
            if progress.value < 300 { overlapped += 1 }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        let codes = try await delivering.value
        XCTAssertEqual(codes, Array(repeating: 250, count: 600))
        XCTAssertGreaterThan(overlapped, 0, "no backup finished while the loop ran")

        for backup in backups {
            // The snapshot's messages: (account, mailbox, uid) -> content digest, from its own index.
            let snapshot = try IndexReader(path: backup + "/index.sqlite").rows("""
                SELECT a.name, b.name, m.uid, x.digest FROM message m JOIN mailbox b ON b.id = m.mailbox_id
                JOIN account a ON a.id = b.account_id JOIN blob x ON x.id = m.blob_id
                """)
            var expected: [String: String] = [:]
            for row in snapshot { expected["\(row[0]!)/\(row[1]!)/\(row[2]!)"] = row[3]! }
            for d in Set(expected.values) {
                XCTAssertTrue(FileManager.default.fileExists(atPath: BlobStorePath.of(root: backup + "/blobs", digest: d)), "\(backup): blob \(d)")
            }
            let g = try StoreFixture("backup-loop-dst")
            let report = try await g.store.restore(from: backup, force: false)
            XCTAssertEqual(report.messages, expected.count)
            let check = try await g.store.verifyIntegrity()
            XCTAssertEqual(check.problems, [], backup)
            XCTAssertEqual(check.unreferencedFiles, [], backup)
            var got: [String: String] = [:]
            for user in ["alice@example.org", "bob@example.org"] {
                for m in try await g.store.messages(user: user, mailbox: "INBOX", uids: 1...UInt32.max) {
                    got["\(user)/INBOX/\(m.uid)"] = digest(try await g.store.content(user: user, mailbox: "INBOX", uid: m.uid))
                }
            }
            XCTAssertEqual(got, expected, backup)
        }
        // The live store is fine too.
        let live = try await f.store.verifyIntegrity()
        XCTAssertEqual(live.problems, [])
    }

    func testCommandLine() async throws {
        let f = try await populated()
        let before = try await StoreDump.of(f.accounts, f.store)
        let backup = f.dir.path + "/cli-backup"
        let made = Build.runSeparately(Build.postern, ["admin", "backup", "-c", f.configFile, backup], cwd: f.dir.path)
        XCTAssertEqual(made.status, 0, made.stderr)
        XCTAssertTrue(made.stdout.hasPrefix("backup \(backup): 10 messages, 6 files"), made.stdout)

        let g = try StoreFixture("backup-cli-dst")
        let restored = Build.runSeparately(Build.postern, ["admin", "restore", "-c", g.configFile, backup], cwd: g.dir.path)
        XCTAssertEqual(restored.status, 0, restored.stderr)
        XCTAssertTrue(restored.stdout.hasPrefix("restored \(backup): 10 messages, 6 files"), restored.stdout)
        let check = Build.runSeparately(Build.postern, ["admin", "check", "-c", g.configFile], cwd: g.dir.path)
        XCTAssertEqual(check.status, 0, check.stdout + check.stderr)
        XCTAssertTrue(check.stdout.contains("checked 10 messages, 6 blobs: ok"), check.stdout)
        await assertEqual(try await StoreDump.of(g.accounts, g.store), before)

        let again = Build.runSeparately(Build.postern, ["admin", "restore", "-c", g.configFile, backup], cwd: g.dir.path)
        XCTAssertEqual(again.status, 1)
        XCTAssertEqual(again.stderr.split(separator: "\n").count, 1, again.stderr)
        XCTAssertTrue(again.stderr.contains("has accounts"), again.stderr)
        let forced = Build.runSeparately(Build.postern, ["admin", "restore", "-c", g.configFile, "--force", backup], cwd: g.dir.path)
        XCTAssertEqual(forced.status, 0, forced.stderr)

        try FileManager.default.removeItem(atPath: backup + "/MANIFEST")
        let incomplete = Build.runSeparately(Build.postern, ["admin", "restore", "-c", g.configFile, "--force", backup], cwd: g.dir.path)
        XCTAssertEqual(incomplete.status, 1)
        XCTAssertTrue(incomplete.stderr.hasPrefix("postern admin: ") && incomplete.stderr.contains("no MANIFEST"), incomplete.stderr)
    }
}

/// The blob layout, as the store names files (`ROOT/ab/cd/abcd...`).
enum BlobStorePath {
    static func of(root: String, digest: String) -> String {
        "\(root)/\(digest.prefix(2))/\(digest.dropFirst(2).prefix(2))/\(digest)"
    }
}

/// A value shared between the delivering task and the test.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    var value: Int { lock.lock(); defer { lock.unlock() }; return n }
    func set(_ v: Int) { lock.lock(); n = v; lock.unlock() }
}

/// Asserts that `body` throws an error whose description contains `text`.
func assertThrows<T>(contains text: String, _ body: () async throws -> T, file: StaticString = #filePath, line: UInt = #line) async {
    do {
        let value = try await body()
        XCTFail("expected an error containing '\(text)', got \(value)", file: file, line: line)
    } catch {
        XCTAssertTrue("\(error)".contains(text), "\(error)", file: file, line: line)
    }
}
