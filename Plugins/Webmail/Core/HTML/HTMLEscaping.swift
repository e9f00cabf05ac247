/// Escaping for everything the sanitizer and the plain-text renderer write. The same five
/// characters are escaped in text and in (always double-quoted) attribute values, so no written
/// string can end a tag, an attribute or start markup, whatever context it lands in.
enum HTMLEscaping {
    static func escaped(_ text: String) -> String {
        var output: [UInt8] = []
        output.reserveCapacity(text.utf8.count)
        appendEscaped(text, to: &output)
        return String(decoding: output, as: UTF8.self)
    }

    static func appendEscaped(_ text: String, to output: inout [UInt8]) {
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "&"): output += Array("&amp;".utf8)
            case UInt8(ascii: "<"): output += Array("&lt;".utf8)
            case UInt8(ascii: ">"): output += Array("&gt;".utf8)
            case UInt8(ascii: "\""): output += Array("&quot;".utf8)
            case UInt8(ascii: "'"): output += Array("&#39;".utf8)
            default: output.append(byte)
            }
        }
    }
}
