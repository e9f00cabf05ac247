import Foundation

/// RFC 3461 xtext: printable ASCII except `+` and `=`, with `+XX` hex escapes.
enum XText {
    static func isValid(_ text: String) -> Bool {
        let b = Array(text.utf8)
        var i = 0
        while i < b.count {
            let c = b[i]
            if c == UInt8(ascii: "+") {
                guard i + 2 < b.count, isHex(b[i + 1]), isHex(b[i + 2]) else { return false }
                i += 3
                continue
            }
            guard c >= 33 && c <= 126 && c != UInt8(ascii: "=") else { return false }
            i += 1
        }
        return true
    }

    private static func isHex(_ c: UInt8) -> Bool {
        (48...57).contains(c) || (65...70).contains(c)
    }
}

/// Base64 for SASL lines (RFC 4954 §4): strict, no line breaks.
enum Base64 {
    static func encode(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }

    static func decode(_ text: String) -> [UInt8]? {
        guard text.utf8.allSatisfy({ $0 != 32 && $0 != 13 && $0 != 10 }), text.utf8.count % 4 == 0 else { return nil }
        return Data(base64Encoded: text).map { [UInt8]($0) }
    }
}

extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
