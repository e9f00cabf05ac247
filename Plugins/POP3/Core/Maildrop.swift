import Foundation
import PluginAPI

/// One POP3 session per maildrop (RFC 1939 §8), across every process: an `flock` on a file per
/// account under `DATA/pop3/locks`, held for the session and released by the kernel if the
/// process dies.
// @unchecked Sendable: its only stored property is a let directory; exclusion comes from flock on the files
final class MaildropLocks: @unchecked Sendable {
    let directory: String
    init(directory: String) throws {
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    func lock(_ user: String) -> MaildropLock? {
        // The account name, made safe as a file name: its SHA-256.
        let name = SHA256.hash(data: Array(user.lowercased().utf8)).map { String(format: "%02x", $0) }.joined()
        let fd = open("\(directory)/\(name)", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return nil }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            return nil
        }
        return MaildropLock(fd: fd)
    }
}

// @unchecked Sendable: fd is only read and written under `lock`
final class MaildropLock: @unchecked Sendable {
    private var fd: Int32
    private let lock = NSLock()
    init(fd: Int32) { self.fd = fd }
    func release() {
        lock.withLock {
            if fd >= 0 { close(fd) }
            fd = -1
        }
    }
    deinit { release() }
}
