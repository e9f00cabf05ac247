/// The `style` attribute of mail HTML: declarations are split by a small state machine that
/// knows strings, comments and parentheses, and each survives only if its property is
/// allow-listed and its value can neither load anything, run anything, nor move the element out
/// of the mail's own box (over the webmail's interface).
enum CSSSanitizer {
    private enum State { case normal, string, comment }

    private struct RawDeclaration {
        var bytes: [UInt8] = []
        /// A backslash (CSS escapes can spell any keyword), or an unterminated string or bracket.
        var unsafe = false
    }

    /// The allowed declarations, written as `name: value` joined by `; `, or "" when none is left.
    /// The written form parses back to itself, so sanitising twice changes nothing.
    static func sanitizedDeclarations(_ style: String) -> String {
        var kept: [String] = []
        for raw in split(Array(style.utf8)) where !raw.unsafe {
            if let declaration = checkedDeclaration(raw.bytes) { kept.append(declaration) }
        }
        return kept.joined(separator: "; ")
    }

    /// Splits on `;` outside strings and brackets. Comments are removed without leaving a space,
    /// so `exp/**/ression(` is caught as `expression(` (old IE joined them the same way).
    private static func split(_ bytes: [UInt8]) -> [RawDeclaration] {
        var declarations: [RawDeclaration] = []
        var current = RawDeclaration()
        var state = State.normal
        var quote: UInt8 = 0
        var depth = 0
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            let next: UInt8? = index + 1 < bytes.count ? bytes[index + 1] : nil
            index += 1
            switch state {
            case .comment:
                if byte == UInt8(ascii: "*"), next == UInt8(ascii: "/") {
                    index += 1
                    state = .normal
                }
            case .string:
                if byte == UInt8(ascii: "\\") || byte == 0x0A || byte == 0x0C || byte == 0x0D { current.unsafe = true }
                if byte == quote { state = .normal }
                current.bytes.append(byte)
            case .normal:
                if byte == UInt8(ascii: "/"), next == UInt8(ascii: "*") {
                    index += 1
                    state = .comment
                    continue
                }
                switch byte {
                case UInt8(ascii: "\""), UInt8(ascii: "'"):
                    quote = byte
                    state = .string
                case UInt8(ascii: "("), UInt8(ascii: "["):
                    depth += 1
                case UInt8(ascii: ")"), UInt8(ascii: "]"):
                    depth -= 1
                    if depth < 0 { current.unsafe = true }
                case UInt8(ascii: "\\"):
                    current.unsafe = true
                case UInt8(ascii: ";") where depth <= 0:
                    declarations.append(current)
                    current = RawDeclaration()
                    depth = 0
                    continue
                default:
                    break
                }
                current.bytes.append(byte)
            }
        }
        if state == .string || depth != 0 { current.unsafe = true }
        declarations.append(current)
        return declarations
    }

    private static func checkedDeclaration(_ bytes: [UInt8]) -> String? {
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")) else { return nil }
        let name = String(decoding: bytes[..<colon], as: UTF8.self).trimmingASCIIWhitespace().lowercased()
        let value = collapsedWhitespace(bytes[(colon + 1)...])
        guard !value.isEmpty, isAllowedProperty(name) else { return nil }
        let squeezed = String(decoding: value.utf8.filter { $0 != 0x20 }, as: UTF8.self).lowercased()
        if forbiddenInValues.contains(where: { squeezed.contains($0) }) { return nil }
        if name == "display", !isAllowedDisplay(squeezed) { return nil }
        if (name.hasPrefix("margin") || name == "text-indent"), isNegative(value.lowercased()) { return nil }
        return name + ": " + value
    }

    /// Controls become spaces, runs of spaces one space, ends trimmed.
    private static func collapsedWhitespace(_ bytes: ArraySlice<UInt8>) -> String {
        var result: [UInt8] = []
        for byte in bytes {
            let isSpace = byte <= 0x20 || byte == 0x7F
            if isSpace {
                if let last = result.last, last != 0x20 { result.append(0x20) }
            } else {
                result.append(byte)
            }
        }
        if result.last == 0x20 { result.removeLast() }
        return String(decoding: result, as: UTF8.self)
    }

    /// Checked with spaces removed and lowercased. Every function that can fetch a resource is
    /// here, with the script schemes, IE's `expression`/`behavior` and Firefox's `-moz-binding`;
    /// `<`/`>` and braces have no business in a declaration and could end a `<style>` elsewhere.
    private static let forbiddenInValues = [
        "url(", "image(", "image-set(", "cross-fade(", "element(", "paint(", "expression(", "javascript:",
        "vbscript:", "livescript:", "@import", "@", "behavior", "binding", "<", ">", "{", "}", "\\", "attr(", "var(",
        "env(",
    ]

    private static let allowedProperties: Set<String> = [
        "color", "background-color", "font", "font-family", "font-size", "font-weight", "font-style",
        "font-variant", "text-align", "text-decoration", "text-decoration-line", "text-decoration-color",
        "text-decoration-style", "text-transform", "line-height", "width", "height", "max-width", "min-width",
        "max-height", "min-height", "vertical-align", "white-space", "display", "list-style-type", "text-indent",
        "letter-spacing", "word-spacing", "direction", "word-break", "word-wrap", "overflow-wrap",
        "table-layout", "caption-side", "empty-cells",
    ]

    /// margin*, padding* and border* (border-collapse and border-spacing included), but not
    /// border-image, which loads an image.
    private static func isAllowedProperty(_ name: String) -> Bool {
        if allowedProperties.contains(name) { return true }
        if name.hasPrefix("border-image") { return false }
        let family = name.hasPrefix("margin") || name.hasPrefix("padding") || name.hasPrefix("border")
        return family && name.utf8.allSatisfy { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || $0 == UInt8(ascii: "-") }
    }

    private static func isAllowedDisplay(_ value: String) -> Bool {
        let keyword = value.hasSuffix("!important") ? String(value.dropLast(10)) : value
        return ["block", "inline", "inline-block", "none"].contains(keyword) || keyword.hasPrefix("table")
    }

    /// A negative margin can pull the mail over the surrounding interface (a fake login box on
    /// top of the real one).
    private static func isNegative(_ value: String) -> Bool {
        let bytes = Array(value.utf8)
        for (index, byte) in bytes.enumerated() where byte == UInt8(ascii: "-") {
            let previous = index > 0 ? bytes[index - 1] : UInt8(ascii: " ")
            let isSign = !(UInt8(ascii: "a")...UInt8(ascii: "z")).contains(previous) && !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(previous)
            if isSign { return true }
        }
        return false
    }
}
