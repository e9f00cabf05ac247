import Foundation
import PosternTestSupport
import PosternHost
import PosternImport
import XCTest

/// An empty store for the `postern` binary: a config in a temporary directory, with one account.
final class AdminFixture {
    let dir: TempDir
    let config: String
    let user = "joe@example.org"

    init(_ name: String) throws {
        dir = TempDir(name)
        config = dir.write("postern.toml", Array("""
            data_dir = "\(dir.path)/data"
            [plugin.store-sqlite]
            password_iterations = 4096

            """.utf8))
        try check(admin("domain", "add", "example.org"))
        try check(admin("user", "add", user, "--password", "secret-joe"))
    }

    /// `postern admin ARGS -c CONFIG`.
    func admin(_ arguments: String...) -> (status: Int32, stdout: Data, stderr: Data) { admin(arguments) }

    func admin(_ arguments: [String]) -> (status: Int32, stdout: Data, stderr: Data) {
        Build.runBytes(Build.postern, ["admin"] + arguments + ["-c", config])
    }

    private func check(_ r: (status: Int32, stdout: Data, stderr: Data)) throws {
        guard r.status == 0 else { throw SystemError.message("postern admin: \(String(decoding: r.stderr, as: UTF8.self))") }
    }

    /// `message list --dates` of a mailbox: uid, size, flags (sorted), message-id, date.
    func list(_ mailbox: String) -> [(uid: UInt32, flags: [String], messageID: String, date: String)] {
        let r = admin("message", "list", user, "--mailbox", mailbox, "--dates")
        XCTAssertEqual(r.status, 0, String(decoding: r.stderr, as: UTF8.self))
        return String(decoding: r.stdout, as: UTF8.self).split(separator: "\n").map { line in
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            return (UInt32(f[0])!, f[2] == "-" ? [] : f[2].split(separator: " ").map(String.init).sorted(), f[3], f[4])
        }
    }

    /// `message get`: the stored bytes.
    func get(_ mailbox: String, _ uid: UInt32) -> [UInt8] {
        let r = admin("message", "get", user, String(uid), "--mailbox", mailbox)
        XCTAssertEqual(r.status, 0, String(decoding: r.stderr, as: UTF8.self))
        return [UInt8](r.stdout)
    }
}

/// An internal date as `message list --dates` prints it.
func iso(_ seconds: Int64) -> String { ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(seconds))) }

