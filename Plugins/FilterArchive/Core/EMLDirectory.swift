import Foundation
import PluginAPI

/// The directory destination: one `.eml` file per message, complete and fsynced (file, then
/// directory) before the filter answers, so before the client's 250. The file is the message as
/// received with two fields in front that keep its envelope (BCC recipients appear in no header):
/// `X-Postern-Envelope-From` and `X-Postern-Envelope-To`.
struct EMLDirectory: Sendable {
    let path: String

    enum WriteError: Error, CustomStringConvertible {
        case cannot(String, String, Int32)
        case other(String)
        var description: String {
            switch self {
            case .cannot(let what, let path, let code): return "cannot \(what) \(path): \(String(cString: strerror(code)))"
            case .other(let text): return text
            }
        }
    }

    /// Writes `message` to `<yyyymmdd>/<time>-<id>.eml` under the directory and returns its path.
    func write(_ message: FilterMessage, now: Int64, random: UInt64) throws -> String {
        let date = MailDate(secondsSince1970: now)
        let day = String(format: "%04d%02d%02d", date.year, date.month, date.day)
        let folder = path + "/" + day
        if !FileManager.default.fileExists(atPath: path) {
            do {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o750])
            } catch {
                throw WriteError.other("cannot create directory \(path): \(error.localizedDescription)")
            }
        }
        try Self.makeDirectory(folder)
        let id = message.connection.transactionID ?? "message"
        let name = "\(now)-\(Self.fileSafe(id))-\(String(random, radix: 36)).eml"
        let final = folder + "/" + name, temporary = folder + "/." + name + ".tmp"
        var bytes = Array("X-Postern-Envelope-From: <\(message.sender)>\r\n".utf8)
        bytes += Array("X-Postern-Envelope-To: \(message.recipients.map { "<\($0)>" }.joined(separator: ", "))\r\n".utf8)
        bytes += message.bytes
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw WriteError.cannot("create", temporary, errno) }
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                let code = errno
                close(fd)
                unlink(temporary)
                throw WriteError.cannot("write", temporary, code)
            }
            offset += n
        }
        guard fsync(fd) == 0 else {
            let code = errno
            close(fd)
            unlink(temporary)
            throw WriteError.cannot("fsync", temporary, code)
        }
        close(fd)
        guard rename(temporary, final) == 0 else {
            let code = errno
            unlink(temporary)
            throw WriteError.cannot("rename", final, code)
        }
        try Self.syncDirectory(folder)
        return final
    }

    static func makeDirectory(_ path: String) throws {
        if mkdir(path, 0o750) == 0 {
            // A new directory must itself reach the disk in its parent.
            try syncDirectory((path as NSString).deletingLastPathComponent)
        } else if errno != EEXIST {
            throw WriteError.cannot("create directory", path, errno)
        }
    }

    static func syncDirectory(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw WriteError.cannot("open", path, errno) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw WriteError.cannot("fsync", path, errno) }
    }

    /// Letters, digits, `-` and `.` only: the id comes from the session.
    static func fileSafe(_ text: String) -> String {
        String(text.unicodeScalars.map { s -> Character in
            (s.properties.isAlphabetic && s.isASCII) || ("0"..."9").contains(s) || s == "-" || s == "." ? Character(s) : "_"
        }.prefix(64))
    }
}
