import PluginAPI

// What of a message goes to clamd: the message as received, then every leaf part with its
// transfer encoding undone (nested message/rfc822 parts included: the MIME parser walks into
// them), then every uuencoded file found in a leaf's decoded body. Scanning the parts on their
// own is what locates an infection, so that `cleanse` knows what to remove, and what lets a
// file-hash signature (.hdb) match an attachment exactly.

/// One thing sent to clamd, and where it came from.
struct ScanObject: Sendable, Equatable {
    enum Origin: Sendable, Equatable, Hashable {
        /// The whole message as received.
        case message
        /// A leaf part's decoded body (its depth-first index; 0 is a single-part message).
        case part(index: Int)
        /// A uuencoded file in a leaf part's decoded body: its name and where it lies in that body.
        case uuencoded(part: Int, name: String, range: Range<Int>)
    }

    var origin: Origin
    var bytes: [UInt8]
}

enum ScanObjects {
    /// Everything to scan in `message`, the message itself first. Empty parts are left out
    /// (nothing to find); every other leaf is sent, even one not transfer-encoded, because a
    /// file-hash signature matches only the part's exact bytes, not the message around them.
    static func collect(_ message: [UInt8], mime: MIMEMessage) -> [ScanObject] {
        var objects = [ScanObject(origin: .message, bytes: message)]
        for part in mime.root.allParts where part.isLeaf {
            let body = part.decodedBody(in: message)
            guard !body.isEmpty else { continue }
            objects.append(ScanObject(origin: .part(index: part.index), bytes: body))
            // `begin ` can only start a line: a body without it holds no uuencoded file.
            guard body.starts(with: Array("begin ".utf8)) || contains(body, Array("\nbegin ".utf8)) else { continue }
            for file in UUEncodedFile.find(in: body) where !file.content.isEmpty {
                objects.append(ScanObject(origin: .uuencoded(part: part.index, name: file.name, range: file.range), bytes: file.content))
            }
        }
        return objects
    }

    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard let first = needle.first, haystack.count >= needle.count else { return false }
        var i = 0
        let last = haystack.count - needle.count
        while i <= last {
            if haystack[i] == first && haystack[i..<(i + needle.count)].elementsEqual(needle) { return true }
            i += 1
        }
        return false
    }
}

extension ScanObject.Origin {
    /// For logs and notices: "the message", "part 3 (eicar.com)", "uuencoded file x.exe in part 1".
    func describe(in mime: MIMEMessage) -> String {
        func partName(_ index: Int) -> String {
            let name = mime.root.allParts.first { $0.index == index }?.fileName
            return "part \(index)" + (name.map { " (\($0))" } ?? "")
        }
        switch self {
        case .message: return "the message"
        case .part(let index): return partName(index)
        case .uuencoded(let part, let name, _): return "uuencoded file \(name) in \(partName(part))"
        }
    }
}
