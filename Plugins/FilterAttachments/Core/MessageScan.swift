import PluginAPI

/// One file of a message as the rules see it: a MIME leaf part (named or not), or a file
/// uuencoded inside a text part.
struct InspectedFile: Sendable, Equatable {
    enum Location: Sendable, Equatable {
        /// The MIME part with this depth-first index (0: the message itself).
        case part(Int)
        /// A uuencoded block in part `part`'s decoded body.
        case uuencoded(part: Int, range: Range<Int>)
    }

    var location: Location
    var name: AttachmentName?
    /// The declared `type/subtype`, lower-case (nil for a uuencoded file, which declares none).
    var mimeType: String?
    var kind: FileKind?
    var magicMismatch: MagicMismatch?
    /// The ZIP listing, for a file that is or claims to be a ZIP archive.
    var zip: ZipListing?

    init(location: Location, name: String?, mimeType: String?, content: [UInt8], complete: Bool, archiveLimits: ArchiveLimits) {
        self.location = location
        self.name = name.map(AttachmentName.init)
        self.mimeType = mimeType
        kind = FileKind.detect(content)
        magicMismatch = MagicMismatch.find(claims: ClaimedKind.claims(mimeType: mimeType, extension: self.name?.finalExtension), actual: kind)
        let claimsZip = self.name?.finalExtension == "zip" || mimeType.map(Self.zipTypes.contains) == true
        if kind == .zip || claimsZip {
            var listing = ZipListing.list(content, maxDepth: archiveLimits.maxDepth, maxNestedBytes: archiveLimits.maxNestedBytes)
            // A message cut at the buffer limit cuts its last part: that archive is not broken.
            if !complete { listing.unreadable = nil }
            zip = listing
        }
    }

    static let zipTypes: Set<String> = ["application/zip", "application/x-zip-compressed", "application/x-zip"]

    /// How replies and notices name the file: its name, else its type.
    var displayName: String {
        if let name { return "\"\(name.printable)\"" }
        return "of type \(mimeType ?? "application/octet-stream")"
    }
}

struct ArchiveLimits: Sendable, Equatable {
    var maxDepth = 2
    var maxNestedBytes = 16 << 20
}

/// Every file of a message: each MIME leaf part, and each uuencoded file in a text part.
enum MessageScan {
    static func files(in bytes: [UInt8], mime: MIMEMessage, complete: Bool, archiveLimits: ArchiveLimits) -> [InspectedFile] {
        var files: [InspectedFile] = []
        for part in mime.root.allParts where part.isLeaf {
            let content = part.decodedBody(in: bytes)
            // Only the part running to the end of a truncated message is incomplete.
            let partComplete = complete || part.bodyOffset + part.bodySize < bytes.count
            files.append(InspectedFile(location: .part(part.index), name: part.fileName, mimeType: part.contentType.mimeType,
                                       content: content, complete: partComplete, archiveLimits: archiveLimits))
            if part.contentType.isText, content.count > 6, containsBegin(content) {
                for uu in UUEncodedFile.find(in: content) {
                    files.append(InspectedFile(location: .uuencoded(part: part.index, range: uu.range), name: uu.name, mimeType: nil,
                                               content: uu.content, complete: partComplete, archiveLimits: archiveLimits))
                }
            }
        }
        return files
    }

    /// A cheap test before the line-by-line search: `begin ` at the start of some line.
    static func containsBegin(_ text: [UInt8]) -> Bool {
        let begin = Array("begin ".utf8)
        var i = 0
        while i + begin.count <= text.count {
            if (i == 0 || text[i - 1] == 10) && text[i] == 98 && text[i..<(i + begin.count)].elementsEqual(begin) { return true }
            i += 1
        }
        return false
    }
}
