/// What a file's first bytes say it is, from a small table of signatures, and whether that
/// contradicts what the message claims it is. Kept narrow on purpose: only a claim of a harmless
/// type (an image, a PDF, text, audio, video) contradicted by an executable or an archive is a
/// mismatch. A PNG sent as `.jpg`, an Office file sent as `application/octet-stream` or a ZIP
/// sent as `.docx` are everyday mail, not attacks.
enum FileKind: String, Sendable, Equatable, CaseIterable {
    /// Windows PE: `MZ`, and at `e_lfanew` the `PE\0\0` signature (a bare `MZ` is too common a
    /// start of text to count).
    case windowsExecutable = "Windows executable"
    /// `\x7fELF`.
    case elfExecutable = "ELF executable"
    case zip = "ZIP archive"
    case rar = "RAR archive"
    case sevenZip = "7-Zip archive"
    case gzip = "gzip archive"
    /// Microsoft compound file (legacy Office documents, MSI installers).
    case ole2 = "OLE2 compound file"
    case pdf = "PDF document"
    case png = "PNG image"
    case jpeg = "JPEG image"
    case gif = "GIF image"

    var isExecutable: Bool { self == .windowsExecutable || self == .elfExecutable }
    var isArchive: Bool { self == .zip || self == .rar || self == .sevenZip || self == .gzip }

    /// The kind `bytes` begin with, or nil when no signature matches.
    static func detect<Bytes: RandomAccessCollection>(_ bytes: Bytes) -> FileKind? where Bytes.Element == UInt8, Bytes.Index == Int {
        func starts(_ signature: [UInt8]) -> Bool { bytes.count >= signature.count && bytes.prefix(signature.count).elementsEqual(signature) }
        if starts([0x4d, 0x5a]), isPortableExecutable(bytes) { return .windowsExecutable }
        if starts([0x7f, 0x45, 0x4c, 0x46]) { return .elfExecutable }
        // Local file header, or the empty archive's end record, or a spanned archive's marker.
        if starts([0x50, 0x4b, 0x03, 0x04]) || starts([0x50, 0x4b, 0x05, 0x06]) || starts([0x50, 0x4b, 0x07, 0x08]) { return .zip }
        if starts(Array("Rar!\u{1a}\u{07}".utf8)) { return .rar }
        if starts([0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c]) { return .sevenZip }
        if starts([0x1f, 0x8b]) { return .gzip }
        if starts([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]) { return .ole2 }
        if starts(Array("%PDF-".utf8)) { return .pdf }
        if starts([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]) { return .png }
        if starts([0xff, 0xd8, 0xff]) { return .jpeg }
        if starts(Array("GIF87a".utf8)) || starts(Array("GIF89a".utf8)) { return .gif }
        return nil
    }

    /// The DOS header's `e_lfanew` (offset 0x3c, little-endian) points at `PE\0\0` inside the file.
    private static func isPortableExecutable<Bytes: RandomAccessCollection>(_ bytes: Bytes) -> Bool where Bytes.Element == UInt8, Bytes.Index == Int {
        let base = bytes.startIndex
        guard bytes.count >= 0x40 else { return false }
        let offset = (0..<4).reduce(0) { $0 | Int(bytes[base + 0x3c + $1]) << (8 * $1) }
        guard offset >= 0x40, offset <= bytes.count - 4 else { return false }
        return bytes[base + offset] == 0x50 && bytes[base + offset + 1] == 0x45 && bytes[base + offset + 2] == 0 && bytes[base + offset + 3] == 0
    }
}

/// The harmless type a part claims to be, by its declared MIME type or its file extension.
enum ClaimedKind: String, Sendable, Equatable {
    case image, pdf, text, audio, video

    static let imageExtensions: Set<String> = ["png", "jpg", "jpeg", "jpe", "gif", "bmp", "tif", "tiff", "webp", "heic", "ico"]
    static let textExtensions: Set<String> = ["txt", "text", "csv", "log", "md"]
    static let audioExtensions: Set<String> = ["mp3", "wav", "ogg", "m4a", "flac", "aac"]
    static let videoExtensions: Set<String> = ["mp4", "mov", "avi", "mkv", "webm", "mpg", "mpeg"]

    /// The claims a part makes: its MIME type's (`image/*`, `application/pdf`, `text/*`,
    /// `audio/*`, `video/*`) and its final extension's. Both count: `invoice.pdf` sent as
    /// `application/octet-stream` still claims to be a PDF.
    static func claims(mimeType: String?, extension ext: String?) -> [ClaimedKind] {
        var out: [ClaimedKind] = []
        if let mimeType {
            let top = mimeType.split(separator: "/").first.map(String.init) ?? ""
            switch top {
            case "image": out.append(.image)
            case "text": out.append(.text)
            case "audio": out.append(.audio)
            case "video": out.append(.video)
            default: if mimeType == "application/pdf" { out.append(.pdf) }
            }
        }
        if let ext {
            if imageExtensions.contains(ext) { out.append(.image) }
            if ext == "pdf" { out.append(.pdf) }
            if textExtensions.contains(ext) { out.append(.text) }
            if audioExtensions.contains(ext) { out.append(.audio) }
            if videoExtensions.contains(ext) { out.append(.video) }
        }
        var seen: Set<ClaimedKind> = []
        return out.filter { seen.insert($0).inserted }
    }
}

/// A part whose content contradicts its claim: what it claims and what it is.
struct MagicMismatch: Sendable, Equatable {
    let claimed: ClaimedKind
    let actual: FileKind

    /// The first contradiction between `claims` and the content's kind: an executable or an
    /// archive claiming to be any harmless type.
    static func find(claims: [ClaimedKind], actual: FileKind?) -> MagicMismatch? {
        guard let actual, actual.isExecutable || actual.isArchive, let claim = claims.first else { return nil }
        return MagicMismatch(claimed: claim, actual: actual)
    }

    var description: String { "content is a \(actual.rawValue), not the \(claimed.rawValue) it claims to be" }
}
