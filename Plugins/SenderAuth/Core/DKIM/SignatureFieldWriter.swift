// Writes a signature field (DKIM-Signature, ARC-Message-Signature, ARC-Seal) folded under 78
// columns: the tags, then `b=` empty for signing, then the same text with the signature filled in.

struct SignatureFieldWriter {
    static let lineLimit = 78

    private(set) var text: String
    private var lineLength: Int

    /// Starts `Name:`.
    init(name: String) {
        text = name + ":"
        lineLength = text.count
    }

    /// Appends a tag, `name=value;`. `pieces` are the places it may fold between (h= folds before
    /// each ':'); a single piece never folds inside.
    mutating func append(_ pieces: [String]) {
        for (position, piece) in pieces.enumerated() {
            let separator = position == 0 ? 1 : 0
            if lineLength + separator + piece.count <= Self.lineLimit {
                text += (separator == 1 ? " " : "") + piece
                lineLength += separator + piece.count
            } else {
                text += "\r\n\t" + piece
                lineLength = 1 + piece.count
            }
        }
    }

    mutating func append(_ tag: String) { append([tag]) }

    /// The `h=` tag for `names`, foldable before each ':'.
    mutating func appendHeaderList(_ names: [String]) {
        guard let first = names.first else { return }
        var pieces = ["h=" + first] + names.dropFirst().map { ":" + $0 }
        pieces[pieces.count - 1] += ";"
        append(pieces)
    }

    /// The field with `b=` and `signature` (base64) filling the rest of the line and whole lines after.
    func signed(_ signature: String) -> String {
        var out = text
        var length = lineLength
        var rest = Substring(signature)
        while !rest.isEmpty {
            let room = Self.lineLimit - length
            if room < 8 {
                out += "\r\n\t"
                length = 1
                continue
            }
            let piece = rest.prefix(room)
            out += piece
            length += piece.count
            rest = rest.dropFirst(piece.count)
        }
        return out
    }
}
