import Foundation

/// Reads a Maildir++ tree as Dovecot writes it (`LAYOUT=maildir++`, the default) for
/// `postern admin import maildir`. The parsing functions work on a listing and on file bytes and do
/// no I/O; `list(root:)` and `read(root:entry:)` are the thin wrappers that touch the disk.
///
/// Folders: the top directory is INBOX; `.Sent` is `Sent`; `.Archive.2024` is `Archive/2024`.
/// Dovecot's hierarchy separator there is `.`; the store has no hierarchy of its own, so names are
/// kept with `/` as the separator (what IMAP clients of Postern will see). Non-ASCII names, which
/// Dovecot stores in modified UTF-7 (RFC 3501 §5.1.3), are decoded to UTF-8.
public enum Maildir {
    /// One folder as found on disk: only what the parser needs.
    public struct FolderListing: Sendable, Equatable {
        /// The directory below the root: `""` for INBOX, `.Sent`, `.Archive.2024`.
        public var directory: String
        /// File names in `cur/` and `new/`; nil when that directory is missing.
        public var cur: [String]?
        public var new: [String]?
        /// The bytes of `dovecot-uidlist` and `dovecot-keywords`, when present.
        public var uidlist: [UInt8]?
        public var keywords: [UInt8]?

        public init(directory: String, cur: [String]?, new: [String]?, uidlist: [UInt8]? = nil, keywords: [UInt8]? = nil) {
            self.directory = directory
            self.cur = cur
            self.new = new
            self.uidlist = uidlist
            self.keywords = keywords
        }
    }

    /// One message file to import.
    public struct Entry: Sendable, Equatable {
        /// Relative to the root, e.g. `.Sent/cur/1700000000.M1P2.host,S=120,W=123:2,RS`.
        public var path: String
        public var flags: [String]
        /// The size in the name's `,S=` field: the file's size when Dovecot wrote it.
        public var expectedSize: Int?

        public init(path: String, flags: [String], expectedSize: Int? = nil) {
            self.path = path
            self.flags = flags
            self.expectedSize = expectedSize
        }
    }

    /// A folder ready to import: its store name and messages in Dovecot's UID order.
    public struct Folder: Sendable, Equatable {
        public var name: String
        public var directory: String
        public var messages: [Entry]
        /// What looked wrong but did not stop the folder (a missing `cur/`, an unknown keyword).
        public var problems: [String]

        public init(name: String, directory: String, messages: [Entry], problems: [String] = []) {
            self.name = name
            self.directory = directory
            self.messages = messages
            self.problems = problems
        }
    }

    /// The store name of a Maildir++ directory, or nil when it is not a folder directory.
    public static func mailboxName(directory: String) -> String? {
        if directory.isEmpty { return "INBOX" }
        guard directory.hasPrefix("."), directory != ".", directory != ".." else { return nil }
        let parts = directory.dropFirst().split(separator: ".", omittingEmptySubsequences: false)
        guard !parts.contains(where: \.isEmpty) else { return nil }
        var names: [String] = []
        for part in parts {
            guard let decoded = decodeModifiedUTF7(String(part)) else { return nil }
            names.append(decoded)
        }
        // Dovecot names INBOX's children `.INBOX.x` only with a non-default setting; the name is kept.
        return names.joined(separator: "/")
    }

    /// The part of a file name before the info (`:2,...`): stable while flags change, and the key of
    /// `dovecot-uidlist`.
    public static func baseName(_ fileName: String) -> String {
        fileName.firstIndex(of: ":").map { String(fileName[..<$0]) } ?? fileName
    }

    /// Flags of a file name's `:2,` info. Lowercase letters are keywords, numbered `a` = 0 in the
    /// folder's `dovecot-keywords`; letters with no keyword there are returned in `unknown`.
    public static func flags(fileName: String, keywords: [Int: String]) -> (flags: [String], unknown: [Character]) {
        guard let colon = fileName.firstIndex(of: ":") else { return ([], []) }
        let info = fileName[fileName.index(after: colon)...]
        guard info.hasPrefix("2,") else { return ([], []) }
        var flags: [String] = [], unknown: [Character] = []
        for letter in info.dropFirst(2) {
            switch letter {
            case "D": flags.append("\\Draft")
            case "F": flags.append("\\Flagged")
            case "P": flags.append("$Forwarded")
            case "R": flags.append("\\Answered")
            case "S": flags.append("\\Seen")
            case "T": flags.append("\\Deleted")
            case "a"..."z":
                let index = Int(letter.asciiValue! - UInt8(ascii: "a"))
                if let keyword = keywords[index] { flags.append(keyword) } else { unknown.append(letter) }
            default: break   // other uppercase letters have no IMAP meaning
            }
        }
        return (flags, unknown)
    }

    /// `dovecot-keywords`: lines `INDEX NAME`.
    public static func keywords(parsing bytes: [UInt8]) -> [Int: String] {
        var map: [Int: String] = [:]
        for line in String(decoding: bytes, as: UTF8.self).split(whereSeparator: \.isNewline) {
            let parts = line.split(separator: " ", maxSplits: 1)
            if parts.count == 2, let i = Int(parts[0]), i >= 0, i < 26 { map[i] = String(parts[1]) }
        }
        return map
    }

    /// `dovecot-uidlist`: base file name -> UID. Version 3 lines are `UID [EXT ...] :NAME`, version 1
    /// lines `UID NAME`; the first line is the header.
    public static func uids(parsing bytes: [UInt8]) -> [String: UInt32] {
        var map: [String: UInt32] = [:]
        for line in String(decoding: bytes, as: UTF8.self).split(whereSeparator: \.isNewline).dropFirst() {
            guard let space = line.firstIndex(of: " "), let uid = UInt32(line[..<space]) else { continue }
            let rest = line[line.index(after: space)...]
            let name: Substring
            if rest.hasPrefix(":") { name = rest.dropFirst() } else if let r = rest.range(of: " :") { name = rest[r.upperBound...] } else {
                name = rest.split(separator: " ").last ?? ""
            }
            if !name.isEmpty { map[baseName(String(name))] = uid }
        }
        return map
    }

    /// The folders of a listing in import order (INBOX first, then by name, parents before children),
    /// each with its messages ordered by `dovecot-uidlist` when present (files it does not list yet
    /// come after, by name), else by file name (Dovecot's names start with the delivery time).
    public static func plan(_ listings: [FolderListing]) -> (folders: [Folder], problems: [String]) {
        var folders: [Folder] = [], problems: [String] = []
        for listing in listings {
            let label = listing.directory.isEmpty ? "INBOX (top directory)" : listing.directory
            guard let name = mailboxName(directory: listing.directory) else {
                problems.append("\(listing.directory): not a Maildir++ folder name, skipped")
                continue
            }
            guard listing.cur != nil || listing.new != nil else {
                if !listing.directory.isEmpty { problems.append("\(label): no cur/ or new/, not a maildir folder, skipped") }
                continue
            }
            var folderProblems: [String] = []
            if listing.cur == nil { folderProblems.append("\(label): no cur/ directory; imported new/ only") }
            if listing.new == nil { folderProblems.append("\(label): no new/ directory; imported cur/ only") }
            let keywords = listing.keywords.map { Self.keywords(parsing: $0) } ?? [:]
            let uids = listing.uidlist.map { Self.uids(parsing: $0) } ?? [:]
            let prefix = listing.directory.isEmpty ? "" : listing.directory + "/"
            var entries: [(uid: UInt32?, name: String, entry: Entry)] = []
            for (sub, names) in [("cur", listing.cur ?? []), ("new", listing.new ?? [])] {
                for file in names where !file.hasPrefix(".") {
                    let (flags, unknown) = Self.flags(fileName: file, keywords: keywords)
                    if !unknown.isEmpty {
                        folderProblems.append("\(prefix)\(sub)/\(file): keyword letter(s) \(String(unknown)) not in dovecot-keywords, dropped")
                    }
                    let base = baseName(file)
                    entries.append((uids[base], base, Entry(path: "\(prefix)\(sub)/\(file)", flags: flags, expectedSize: size(fileName: base))))
                }
            }
            entries.sort { a, b in
                switch (a.uid, b.uid) {
                case let (x?, y?): return x < y
                case (.some, nil): return true
                case (nil, .some): return false
                case (nil, nil): return fileNameOrder(a.name, b.name)
                }
            }
            folders.append(Folder(name: name, directory: listing.directory, messages: entries.map(\.entry), problems: folderProblems))
        }
        folders.sort { a, b in a.name == "INBOX" ? b.name != "INBOX" : (b.name == "INBOX" ? false : a.name < b.name) }
        return (folders, problems)
    }

    /// The `,S=` size of a base name.
    static func size(fileName: String) -> Int? {
        for field in fileName.split(separator: ",").dropFirst() where field.hasPrefix("S=") { return Int(field.dropFirst(2)) }
        return nil
    }

    /// By the leading delivery time as a number (so `999.x` sorts before `1000.x`), then by name.
    static func fileNameOrder(_ a: String, _ b: String) -> Bool {
        func time(_ s: String) -> Int? { Int(s.prefix { $0.isASCII && $0.isNumber }) }
        if let x = time(a), let y = time(b), x != y { return x < y }
        return a < b
    }

    /// Decodes an IMAP modified UTF-7 name (`&AOQ-` is "ä", `&-` is "&"); nil when malformed.
    public static func decodeModifiedUTF7(_ name: String) -> String? {
        guard name.contains("&") else { return name }
        var out = "", chars = Substring(name)
        while let amp = chars.firstIndex(of: "&") {
            out += chars[..<amp]
            let rest = chars[chars.index(after: amp)...]
            guard let dash = rest.firstIndex(of: "-") else { return nil }
            let encoded = rest[..<dash]
            if encoded.isEmpty { out += "&" } else {
                var b64 = encoded.replacingOccurrences(of: ",", with: "/")
                while b64.count % 4 != 0 { b64 += "=" }
                guard let data = Data(base64Encoded: b64), data.count % 2 == 0,
                      let text = String(data: data, encoding: .utf16BigEndian) else { return nil }
                out += text
            }
            chars = rest[rest.index(after: dash)...]
        }
        return out + chars
    }

    // MARK: - Disk

    /// Lists the root (INBOX) and its `.Folder` directories.
    public static func list(root: String) throws -> [FolderListing] {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: root, isDirectory: &isDir), isDir.boolValue else { throw ImportError("\(root): not a directory") }
        func names(_ path: String) -> [String]? {
            var d: ObjCBool = false
            guard fm.fileExists(atPath: path, isDirectory: &d), d.boolValue else { return nil }
            return (try? fm.contentsOfDirectory(atPath: path)) ?? []
        }
        func listing(_ directory: String) -> FolderListing {
            let path = directory.isEmpty ? root : root + "/" + directory
            return FolderListing(directory: directory, cur: names(path + "/cur"), new: names(path + "/new"),
                                 uidlist: fm.contents(atPath: path + "/dovecot-uidlist").map { [UInt8]($0) },
                                 keywords: fm.contents(atPath: path + "/dovecot-keywords").map { [UInt8]($0) })
        }
        let top = listing("")
        var listings = [top]
        for name in try fm.contentsOfDirectory(atPath: root).sorted() where name.hasPrefix(".") && name != "." && name != ".." {
            var d: ObjCBool = false
            if fm.fileExists(atPath: root + "/" + name, isDirectory: &d), d.boolValue { listings.append(listing(name)) }
        }
        if top.cur == nil && top.new == nil && listings.count == 1 { throw ImportError("\(root): not a Maildir (no cur/, new/ or .Folder directories)") }
        return listings
    }

    /// A message's bytes and its internal date: the file's mtime, which Dovecot sets to the
    /// received date (IMAP INTERNALDATE) when it saves a message.
    public static func read(root: String, entry: Entry) throws -> (bytes: [UInt8], internalDate: Int64) {
        let path = root + "/" + entry.path
        var st = stat()
        guard stat(path, &st) == 0 else { throw ImportError(String(cString: strerror(errno))) }
        guard let data = FileManager.default.contents(atPath: path) else { throw ImportError("cannot read the file") }
        return ([UInt8](data), Int64(st.st_mtim.tv_sec))
    }
}
