/// A file name as the rules compare it: the name a mail client would save the part under,
/// reduced to what Windows would make of it. Windows ignores trailing dots and spaces
/// (`invoice.exe. ` runs as `invoice.exe`), a client saves only the last path component
/// (`..\..\x.exe` lands as `x.exe`), and case never matters.
struct AttachmentName: Sendable, Equatable {
    /// The name as the message gave it (already RFC 2231/2047 decoded), for replies and notices.
    let original: String
    /// The last path component, trailing dots and spaces removed, lower-cased.
    let normalized: String

    init(_ original: String) {
        self.original = original
        var name = Substring(original)
        if let slash = name.lastIndex(where: { $0 == "/" || $0 == "\\" }) { name = name[name.index(after: slash)...] }
        while let last = name.last, last == "." || last == " " || last == "\t" || last == "\0" { name = name.dropLast() }
        normalized = name.lowercased()
    }

    /// The extensions, outermost last: `invoice.pdf.exe` → ["pdf", "exe"]; `.profile` → ["profile"];
    /// `README` → []. A component made only of blanks (`a. .exe`) is no extension.
    var extensions: [String] {
        var parts = normalized.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count > 1 else { return [] }
        parts.removeFirst()
        return parts.map { $0.trimmingBlanks }.filter { !$0.isEmpty }
    }

    /// The extension Windows acts on (the last one), or nil.
    var finalExtension: String? { extensions.last }

    /// The extension before the final one, when the name has two (`invoice.pdf.exe` → "pdf").
    var innerExtension: String? {
        let e = extensions
        return e.count >= 2 ? e[e.count - 2] : nil
    }

    /// The name as it may stand in an SMTP reply or a log line: printable ASCII, other characters
    /// as `?`, quotes dropped, at most 80 characters.
    var printable: String { Self.printable(original) }

    /// `text` in printable ASCII, every other character `?`: a notice inside a text of any charset.
    static func ascii(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.map { (0x20...0x7e).contains($0.value) ? $0 : "?" }))
    }

    static func printable(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            if out.count >= 80 { out += "..."; break }
            switch scalar.value {
            case 0x22: continue
            case 0x20...0x7e: out.unicodeScalars.append(scalar)
            default: out += "?"
            }
        }
        return out
    }
}

extension String {
    var trimmingBlanks: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}
