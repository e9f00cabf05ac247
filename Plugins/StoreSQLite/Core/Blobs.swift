import Foundation
import PluginAPI

/// Content-addressed message files: one file per distinct message, named by its SHA-256, under a
/// partition root (`ROOT/ab/cd/abcd...`). Written once through a temporary file, fsynced, renamed
/// into place and the directory fsynced, so a blob the index refers to is always complete on disk.
struct BlobStore: Sendable {
    /// Why a blob operation failed.
    enum Failure: Error, CustomStringConvertible {
        case io(String, Int32)
        case missing(String)

        var description: String {
            switch self {
            case .io(let what, let err): return "\(what): \(String(cString: strerror(err)))"
            case .missing(let path): return "blob missing: \(path)"
            }
        }
    }

    static func path(root: String, digest: String) -> String {
        let a = digest.prefix(2), b = digest.dropFirst(2).prefix(2)
        return "\(root)/\(a)/\(b)/\(digest)"
    }

    /// Copies `source` into `root`, hashing as it goes. Returns the digest and size. When a blob with
    /// that digest exists already, the copy is dropped: single-instance storage.
    static func store(file source: String, root: String) throws -> (digest: String, size: Int) {
        guard let stored = try copy(from: source, root: root, expecting: nil) else { throw Failure.io("open \(source)", ENOENT) }
        return stored
    }

    /// Takes in a message file its caller hands over (a spool file it will only remove) by a hard
    /// link under its digest's name instead of a copy: no bytes copied and no new file for the
    /// file system to allocate (creating and deleting inodes was a third of a delivery's CPU on
    /// ext4). The file is hashed, fsynced and linked, and the directory fsynced, so the blob is as
    /// durable as one `store(file:root:)` writes. On another file system, or where links are
    /// refused, it is copied. Returns the content too, read once here, for what the caller
    /// derives from it (the search text), so nobody reads the file again.
    static func adopt(file source: String, root: String) throws -> (digest: String, size: Int, content: [UInt8]) {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw Failure.io("open \(source)", errno) }
        defer { close(input) }
        var hasher = SHA256()
        var content: [UInt8] = []
        try readChunks(input, source) { chunk in
            hasher.update(data: chunk)
            content += chunk
        }
        let size = content.count
        let digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
        let final = path(root: root, digest: digest)
        // Already stored (single-instance): that file was synced when it was placed.
        if access(final, F_OK) == 0 { return (digest, size, content) }
        guard fsync(input) == 0 else { throw Failure.io("fsync \(source)", errno) }
        _ = fchmod(input, 0o640)
        let dir = (final as NSString).deletingLastPathComponent
        try makeDirectory(dir)
        if link(source, final) != 0 {
            switch errno {
            case EEXIST: return (digest, size, content)   // placed meanwhile by another delivery
            default:
                let copied = try store(bytes: content, root: root)
                return (copied.digest, copied.size, content)
            }
        }
        try syncDirectory(dir)
        return (digest, size, content)
    }

    /// Copies the content file at `source` to `root`'s place for `digest`, checking while copying
    /// that the content has that digest (backup and restore). Returns the size, or nil when
    /// `source` does not exist.
    static func copyVerified(from source: String, root: String, digest: String) throws -> Int? {
        try copy(from: source, root: root, expecting: digest)?.size
    }

    /// Stores a message held in memory (IMAP APPEND) as `store(file:root:)` stores a file,
    /// without writing it to a temporary file of its own first.
    static func store(bytes: [UInt8], root: String) throws -> (digest: String, size: Int) {
        try place(root: root, expecting: nil, source: "appended message") { sink in try sink(bytes[...]) }
    }

    private static func copy(from source: String, root: String, expecting: String?) throws -> (digest: String, size: Int)? {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        if input < 0 && errno == ENOENT { return nil }
        guard input >= 0 else { throw Failure.io("open \(source)", errno) }
        defer { close(input) }
        return try place(root: root, expecting: expecting, source: source) { sink in try readChunks(input, source, sink) }
    }

    /// Reads the open file `input` to its end in 64 KiB chunks.
    private static func readChunks(_ input: Int32, _ source: String, _ body: (ArraySlice<UInt8>) throws -> Void) throws {
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = Glibc.read(input, &buffer, buffer.count)
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw Failure.io("read \(source)", errno) }
            if n == 0 { break }
            try body(buffer[0..<n])
        }
    }

    /// The one write path of content files: temporary file under `root/tmp`, hashed while written
    /// from what `feed` hands its sink, fsync, rename to its digest's place, fsync of the directory.
    private static func place(root: String, expecting: String?, source: String,
                              feed: ((ArraySlice<UInt8>) throws -> Void) throws -> Void) throws -> (digest: String, size: Int) {
        try makeDirectory(root + "/tmp")
        let temp = "\(root)/tmp/\(UUID().uuidString)"
        let output = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
        guard output >= 0 else { throw Failure.io("create \(temp)", errno) }
        var hasher = SHA256()
        var size = 0
        let digest: String
        do {
            try feed { chunk in
                hasher.update(data: chunk)
                var written = 0
                while written < chunk.count {
                    let w = chunk.withUnsafeBytes { write(output, $0.baseAddress! + written, chunk.count - written) }
                    if w < 0 && errno == EINTR { continue }
                    if w < 0 { throw Failure.io("write \(temp)", errno) }
                    written += w
                }
                size += chunk.count
            }
            digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
            if let expecting, digest != expecting {
                throw Failure.io("\(source) does not have the content its name says (sha256 \(digest))", EIO)
            }
            guard fsync(output) == 0 else { throw Failure.io("fsync \(temp)", errno) }
            close(output)
        } catch {
            close(output)
            unlink(temp)
            throw error
        }
        let final = path(root: root, digest: digest)
        if access(final, F_OK) == 0 {
            unlink(temp)
            return (digest, size)
        }
        let dir = (final as NSString).deletingLastPathComponent
        try makeDirectory(dir)
        guard rename(temp, final) == 0 else {
            let err = errno
            unlink(temp)
            throw Failure.io("rename into \(final)", err)
        }
        try syncDirectory(dir)
        return (digest, size)
    }

    /// The blob's bytes, read straight into the array (open, fstat, read, close): FETCH and
    /// SEARCH read thousands of small blobs, where going through Data costs a copy and more calls.
    static func read(root: String, digest: String) throws -> [UInt8] {
        let p = path(root: root, digest: digest)
        let fd = open(p, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { throw Failure.missing(p) }
            throw Failure.io("open \(p)", errno)
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw Failure.io("fstat \(p)", errno) }
        let size = Int(st.st_size)
        var failure: Int32 = 0
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            count = 0
            while count < size {
                let n = Glibc.read(fd, buffer.baseAddress! + count, size - count)
                if n > 0 {
                    count += n
                } else if n == 0 {
                    break // shorter than fstat said: blobs are immutable, so this is a truncated file
                } else if errno != EINTR {
                    failure = errno
                    break
                }
            }
        }
        if failure != 0 { throw Failure.io("read \(p)", failure) }
        guard bytes.count == size else { throw Failure.io("read \(p): short file", EIO) }
        return bytes
    }

    static func remove(root: String, digest: String) {
        unlink(path(root: root, digest: digest))
    }

    /// Creates a directory and its parents, fsyncing each parent whose entry changed.
    static func makeDirectory(_ dir: String) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue { return }
        let parent = (dir as NSString).deletingLastPathComponent
        try makeDirectory(parent)
        if mkdir(dir, 0o750) != 0 && errno != EEXIST { throw Failure.io("mkdir \(dir)", errno) }
        try syncDirectory(parent)
    }

    static func syncDirectory(_ dir: String) throws {
        let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure.io("open \(dir)", errno) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw Failure.io("fsync \(dir)", errno) }
    }
}
