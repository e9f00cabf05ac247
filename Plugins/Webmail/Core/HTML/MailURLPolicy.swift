/// URL checks for links and images in mail. Values arrive with references already decoded; the
/// scheme is then read as a browser's URL parser reads it, which ignores leading and trailing
/// controls and spaces and removes tabs and newlines anywhere: `\tjava\nscript:` is `javascript:`.
enum MailURLPolicy {
    /// Where an image may come from.
    enum ImageSource: Equatable {
        /// A part of this message, by Content-ID (already percent-decoded).
        case contentID(String)
        /// http or https: a load from elsewhere, which tells the sender the mail was read.
        case remote(String)
        /// A base64 raster image inline in the attribute.
        case inlineData(String)
    }

    /// The URL as a browser would use it, with what is left of spaces and controls
    /// percent-encoded so the written attribute means the same thing when read back.
    static func normalized(_ raw: String) -> String {
        var bytes = Array(raw.utf8)[...]
        while let first = bytes.first, first <= 0x20 { bytes = bytes.dropFirst() }
        while let last = bytes.last, last <= 0x20 { bytes = bytes.dropLast() }
        var result: [UInt8] = []
        result.reserveCapacity(bytes.count)
        let hex = Array("0123456789ABCDEF".utf8)
        for byte in bytes where byte != 0x09 && byte != 0x0A && byte != 0x0D {
            if byte <= 0x20 || byte == 0x7F {
                result += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
            } else {
                result.append(byte)
            }
        }
        return String(decoding: result, as: UTF8.self)
    }

    /// The lowercased scheme, or nil for a relative URL (no valid scheme before the first `:`).
    static func scheme(of url: String) -> String? {
        var scheme: [UInt8] = []
        for byte in url.utf8 {
            if byte == UInt8(ascii: ":") { return scheme.isEmpty ? nil : String(decoding: scheme, as: UTF8.self) }
            let lower = byte | 0x20
            let isLetter = (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(lower)
            let isOther = (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
            guard isLetter || (!scheme.isEmpty && isOther) else { return nil }
            scheme.append(isLetter ? lower : byte)
        }
        return nil
    }

    /// The href to write, or nil. Relative and fragment links are dropped: in webmail they would
    /// resolve against the webmail itself.
    static func link(_ raw: String) -> String? {
        let url = normalized(raw)
        switch scheme(of: url) {
        case "http", "https", "mailto": return url
        default: return nil
        }
    }

    private static let rasterTypes: Set<String> = ["image/png", "image/gif", "image/jpeg", "image/jpg", "image/webp"]

    static func imageSource(_ raw: String) -> ImageSource? {
        let url = normalized(raw)
        switch scheme(of: url) {
        case "cid":
            return .contentID(percentDecoded(String(url.utf8.dropFirst(4)) ?? ""))
        case "http", "https":
            return .remote(url)
        case "data":
            return isRasterDataURL(url) ? .inlineData(url) : nil
        default:
            return nil
        }
    }

    /// `data:image/png;base64,...` and its kin only: SVG can hold script, and anything not
    /// base64 could hide markup.
    private static func isRasterDataURL(_ url: String) -> Bool {
        let bytes = Array(url.utf8.dropFirst(5))
        guard let comma = bytes.firstIndex(of: UInt8(ascii: ",")) else { return false }
        let header = String(decoding: bytes[..<comma], as: UTF8.self).lowercased()
        let parts = header.split(separator: ";", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[1] == "base64", rasterTypes.contains(String(parts[0])) else { return false }
        let payload = bytes[(comma + 1)...]
        return !payload.isEmpty && payload.allSatisfy { byte in
            let lower = byte | 0x20
            return (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(lower) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "/") || byte == UInt8(ascii: "=")
        }
    }

    /// RFC 2392 writes a Content-ID in a `cid:` URL percent-encoded.
    static func percentDecoded(_ text: String) -> String {
        let bytes = Array(text.utf8)
        var result: [UInt8] = []
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "%"), index + 2 < bytes.count,
               let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2]) {
                result.append(high << 4 | low)
                index += 3
            } else {
                result.append(bytes[index])
                index += 1
            }
        }
        return String(decoding: result, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
