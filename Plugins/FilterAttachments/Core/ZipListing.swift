import Foundation
import ZIPFoundation

/// The member names of a ZIP archive held in memory, read with ZIPFoundation, and of the ZIP
/// archives inside it down to `maxDepth` levels (1: the archive's own members only). Only names
/// are read; a nested archive is extracted into memory when it is at most `maxNestedBytes`.
struct ZipListing: Sendable, Equatable {
    /// A member's path inside the archive; for a nested archive's member, the path of the archive
    /// in its parent, then `/`, then its own path (`outer.zip` → `docs/inner.zip/run.exe`).
    var members: [String] = []
    /// Why the archive (or an archive inside it) could not be read fully: not a ZIP, encrypted
    /// members, a nested archive too big or too deep to open. Nil when everything was listed.
    var unreadable: String?

    static func list(_ bytes: [UInt8], maxDepth: Int = 2, maxNestedBytes: Int = 16 << 20) -> ZipListing {
        var listing = ZipListing()
        listing.add(bytes, prefix: "", depth: 1, maxDepth: maxDepth, maxNestedBytes: maxNestedBytes)
        return listing
    }

    private mutating func add(_ bytes: [UInt8], prefix: String, depth: Int, maxDepth: Int, maxNestedBytes: Int) {
        let name = prefix.isEmpty ? "archive" : String(prefix.dropLast())
        let archive: Archive
        do {
            archive = try Archive(data: Data(bytes), accessMode: .read)
        } catch {
            note("\(name) is not a readable ZIP archive")
            return
        }
        // ZIPFoundation stops listing at the first encrypted member: such an archive's names
        // come from its central directory, and nothing in it is opened.
        let directory = ZipCentralDirectory(bytes)
        if let directory, directory.hasEncryptedMember {
            members += directory.names.map { prefix + $0 }
            note("\(name) has encrypted members")
            return
        }
        var listed = 0
        for entry in archive {
            listed += 1
            let path = entry.path
            members.append(prefix + path)
            guard entry.type == .file, AttachmentName(path).finalExtension == "zip" else { continue }
            guard depth < maxDepth else {
                note("\(prefix + path) is nested deeper than \(maxDepth) levels")
                continue
            }
            guard entry.uncompressedSize <= UInt64(maxNestedBytes) else {
                note("\(prefix + path) is bigger than \(maxNestedBytes) bytes")
                continue
            }
            var inner: [UInt8] = []
            do {
                _ = try archive.extract(entry, skipCRC32: false) { inner += $0 }
            } catch {
                note("\(prefix + path) cannot be extracted")
                continue
            }
            add(inner, prefix: prefix + path + "/", depth: depth + 1, maxDepth: maxDepth, maxNestedBytes: maxNestedBytes)
        }
        if let directory, listed < directory.names.count { note("\(name) has members that cannot be read") }
    }

    private mutating func note(_ reason: String) {
        if unreadable == nil { unreadable = reason }
    }
}

/// What ZIPFoundation keeps to itself: whether a member is encrypted (bit 0 of the general
/// purpose flag, APPNOTE 4.4.4; ZIPFoundation lists no entry from the first encrypted one on),
/// and so the names of an encrypted archive's members. Read from the central directory, which
/// the end of central directory record locates. Nil for what cannot be followed (ZIP64 offsets,
/// a directory out of bounds): ZIPFoundation's listing then stands alone.
struct ZipCentralDirectory: Sendable, Equatable {
    var names: [String] = []
    var hasEncryptedMember = false

    init?(_ bytes: [UInt8]) {
        func u16(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
        func u32(_ at: Int) -> Int { u16(at) | u16(at + 2) << 16 }
        // The end record is the last 22 bytes plus a comment of up to 65535.
        guard bytes.count >= 22 else { return nil }
        var eocd = bytes.count - 22
        let lowest = max(0, bytes.count - 22 - 0xffff)
        while eocd >= lowest && u32(eocd) != 0x0605_4b50 { eocd -= 1 }
        guard eocd >= lowest else { return nil }
        let count = u16(eocd + 10)
        var at = u32(eocd + 16)
        guard count != 0xffff, at != 0xffff_ffff else { return nil }
        for _ in 0..<count {
            guard at + 46 <= bytes.count, u32(at) == 0x0201_4b50 else { return nil }
            let flags = u16(at + 8), nameLength = u16(at + 28)
            guard at + 46 + nameLength <= bytes.count else { return nil }
            let raw = bytes[(at + 46)..<(at + 46 + nameLength)]
            // Bit 11: UTF-8; otherwise CP437, whose ASCII half is all an extension needs.
            names.append(flags & 0x800 != 0 ? String(decoding: raw, as: UTF8.self)
                                            : String(String.UnicodeScalarView(raw.map { UnicodeScalar($0 < 0x80 ? $0 : 0x3f) })))
            if flags & 1 != 0 { hasEncryptedMember = true }
            at += 46 + nameLength + u16(at + 30) + u16(at + 32)
        }
    }
}
