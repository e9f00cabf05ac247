import PluginAPI

// The `cleanse` action: each infected part is replaced by a short text notice saying what was
// removed and why; a uuencoded file inside a text part that is not transfer-encoded is cut out
// of the text, a notice line in its place. Pure: findings in, MIMERewrite changes out.

/// A virus clamd found, and in what.
struct Finding: Sendable, Equatable {
    var origin: ScanObject.Origin
    var virus: String
}

enum Cleanse {
    /// The changes that remove every infection found, or nil when one cannot be removed on its
    /// own: found only in the message as a whole (no part holds it), or in the message's only
    /// part (a single-part message, or an enclosed message that is all there is). The caller
    /// then refuses the message instead.
    static func changes(_ findings: [Finding], message: [UInt8], mime: MIMEMessage) -> [MIMERewrite.Change]? {
        let all = mime.root.allParts
        let parts = Dictionary(all.map { ($0.index, $0) }, uniquingKeysWith: { a, _ in a })
        var parent: [Int: Int] = [:]
        for p in all { for c in p.children { parent[c.index] = p.index } }

        let located = findings.filter { $0.origin != .message }
        guard !located.isEmpty else { return nil }
        // Whatever the whole-message scan found must also have been found in a part, or
        // removing the parts would leave it in.
        let locatedViruses = Set(located.map(\.virus))
        guard findings.allSatisfy({ $0.origin != .message || locatedViruses.contains($0.virus) }) else { return nil }

        /// The part to remove for an infected part: itself, or the message/rfc822 part around it
        /// when it is an enclosed message's only content; nil when that is the message itself.
        func removable(_ index: Int) -> Int? {
            var i = index
            while let p = parent[i], parts[p]?.isMessage == true { i = p }
            return i == 0 ? nil : i
        }
        func ancestors(_ index: Int) -> Set<Int> {
            var out: Set<Int> = [index]
            var i = index
            while let p = parent[i] { out.insert(p); i = p }
            return out
        }

        var removed: [Int: [String]] = [:]
        var cuts: [Int: [(range: Range<Int>, name: String, virus: String)]] = [:]
        for f in located {
            switch f.origin {
            case .message:
                continue
            case .part(let index):
                guard let target = removable(index) else { return nil }
                removed[target, default: []].append(f.virus)
            case .uuencoded(let index, let name, let range):
                if let part = parts[index], isVerbatim(part) {
                    cuts[index, default: []].append((range, name, f.virus))
                } else {
                    guard let target = removable(index) else { return nil }
                    removed[target, default: []].append(f.virus)
                }
            }
        }

        var changes: [MIMERewrite.Change] = []
        for (target, viruses) in removed.sorted(by: { $0.key < $1.key }) {
            guard let part = parts[target] else { continue }
            changes.append(.replacePart(index: target, bytes: MIMERewrite.textPart(notice(part, viruses: viruses))))
        }
        for (index, blocks) in cuts.sorted(by: { $0.key < $1.key }) {
            // A text already removed whole needs no cut.
            guard let part = parts[index], ancestors(index).isDisjoint(with: removed.keys) else { continue }
            let body = Array(part.rawBody(in: message))
            var out: [UInt8] = []
            var cursor = 0
            for block in blocks.sorted(by: { $0.range.lowerBound < $1.range.lowerBound }) where block.range.lowerBound >= cursor {
                out += body[cursor..<min(block.range.lowerBound, body.count)]
                out += Array("[uuencoded file \(printable(block.name)) removed by the mail server's virus scanner: it contained \(block.virus)]\r\n".utf8)
                cursor = min(block.range.upperBound, body.count)
            }
            out += body[cursor...]
            changes.append(.replaceBody(index: index, bytes: out))
        }
        return changes
    }

    /// Whether the part's body is its decoded body (no base64 or quoted-printable to undo), so
    /// offsets found in the decoded text are offsets in the message.
    static func isVerbatim(_ part: MIMEPart) -> Bool {
        let encoding = part.contentTransferEncoding?.lowercased()
        return encoding != "base64" && encoding != "quoted-printable"
    }

    /// The text that stands where `part` was.
    static func notice(_ part: MIMEPart, viruses: [String]) -> String {
        var what: String
        if let name = part.fileName {
            what = "The attachment \"\(printable(name))\""
        } else if part.isMessage {
            what = "An attached message"
        } else {
            what = "A part of this message"
        }
        what += " (\(part.contentType.type)/\(part.contentType.subtype))"
        let unique = viruses.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        return "\(what) was removed by the mail server's virus scanner: it contained \(unique.count == 1 ? "the virus" : "the viruses") \(unique.joined(separator: ", ")).\n"
    }

    /// A name from the message, safe in a notice: no control characters, at most 200 characters.
    static func printable(_ text: String) -> String {
        String(text.unicodeScalars.filter { $0.value >= 32 && $0.value != 127 }.map(Character.init).prefix(200))
    }
}
