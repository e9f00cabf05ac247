import Foundation
import PosternTestSupport
import PluginAPI
import PosternHost
import XCTest

/// `deliver` takes the caller's message file over (StorageBackend.deliver): on the same file
/// system the content file is a hard link to it, not a copy; a message already stored is not
/// linked again; on another file system it is copied. Either way the caller may remove its file.
final class HandedOverFileTests: XCTestCase {
    private func inode(_ path: String) -> (ino: UInt, links: UInt, mode: UInt32)? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return (UInt(st.st_ino), UInt(st.st_nlink), st.st_mode & 0o777)
    }

    private func message(_ n: Int) -> [UInt8] {
        Array("From: a@example.net\r\nTo: alice@example.org\r\nSubject: handed over \(n)\r\n\r\nbody \(n)\r\n".utf8)
    }

    func testTheFileIsLinkedNotCopiedAndMayBeRemovedAfterwards() async throws {
        let f = try StoreFixture("handed-over")
        try await f.populate(users: ["alice", "bob"])
        let bytes = message(1)
        let source = f.messageFile(bytes)
        let outcomes = try await f.store.deliver(messagePath: source, to: ["alice@example.org", "bob@example.org"], mailbox: nil)
        XCTAssertEqual(outcomes.map(\.status), [.delivered, .delivered])
        let files = filesUnder(f.blobRoot).filter { !$0.hasPrefix("tmp/") }
        XCTAssertEqual(files.count, 1)
        let blob = f.blobRoot + "/" + files[0]
        let (src, stored) = (try XCTUnwrap(inode(source)), try XCTUnwrap(inode(blob)))
        XCTAssertEqual(src.ino, stored.ino, "the content file is the caller's file, linked")
        XCTAssertEqual(stored.links, 2)
        XCTAssertEqual(stored.mode, 0o640)
        XCTAssertTrue(filesUnder(f.blobRoot + "/tmp").isEmpty, "no temporary file left")

        // The caller removes its name; the message stays readable for both.
        XCTAssertEqual(unlink(source), 0)
        XCTAssertEqual(inode(blob)?.links, 1)
        await assertTrue(try await f.store.content(user: "alice@example.org", mailbox: "INBOX", uid: 1) == bytes)
        await assertTrue(try await f.store.content(user: "bob@example.org", mailbox: "INBOX", uid: 1) == bytes)

        // The same bytes again from another file: single-instance, the new file is not linked.
        let again = f.messageFile(bytes)
        _ = try await f.store.deliver(messagePath: again, to: ["alice@example.org"], mailbox: nil)
        XCTAssertEqual(inode(again)?.links, 1)
        XCTAssertEqual(filesUnder(f.blobRoot).filter { !$0.hasPrefix("tmp/") }, files)
        XCTAssertEqual(try f.index.blobRefs().values.sorted(), [3])
        await assertEqual(try await f.store.verifyIntegrity().problems, [])
    }

    /// A partition on another file system (tmpfs under /dev/shm): no link is possible, the
    /// message is copied, and the caller's file is left as it was.
    func testAnotherFileSystemGetsACopy() async throws {
        let shm = "/dev/shm/postern-partition-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: shm) }
        let f = try StoreFixture("handed-over-xdev", pluginSettings: "partitions = [\"\(shm)\"]")
        var a = stat(), b = stat()
        XCTAssertEqual(stat(f.dir.path, &a), 0)
        try FileManager.default.createDirectory(atPath: shm, withIntermediateDirectories: true)
        XCTAssertEqual(stat(shm, &b), 0)
        XCTAssertNotEqual(a.st_dev, b.st_dev, "the test needs /dev/shm on another file system than \(f.dir.path)")
        try await f.populate(users: ["alice"])
        let bytes = message(2)
        let source = f.messageFile(bytes)
        let outcomes = try await f.store.deliver(messagePath: source, to: ["alice@example.org"], mailbox: nil)
        XCTAssertEqual(outcomes.map(\.status), [.delivered])
        let files = filesUnder(shm).filter { !$0.hasPrefix("tmp/") }
        XCTAssertEqual(files.count, 1)
        XCTAssertNotEqual(inode(source)?.ino, inode(shm + "/" + files[0])?.ino)
        XCTAssertEqual(inode(source)?.links, 1)
        XCTAssertEqual(unlink(source), 0)
        await assertTrue(try await f.store.content(user: "alice@example.org", mailbox: "INBOX", uid: 1) == bytes)
    }
}
