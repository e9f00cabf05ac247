import PluginAPI

/// A client's line during AUTHENTICATE (RFC 3501 §6.2.2): a base64 response, or `*` to cancel.
public enum IMAPAuthenticationResponse: Sendable, Hashable {
    /// The decoded response; empty for an empty line (or `=`).
    case data([UInt8])
    /// `*`: the server must end the exchange with a tagged BAD.
    case cancel

    /// Reads one line without its terminator; nil when it is neither `*` nor strict base64.
    public static func parse<Bytes: Collection>(_ line: Bytes) -> IMAPAuthenticationResponse? where Bytes.Element == UInt8 {
        if line.count == 1 && line.first == UInt8(ascii: "*") { return .cancel }
        return decodeBase64(line).map { .data($0) }
    }

    /// Strict base64: whole quanta, padding only at the end, nothing outside the alphabet. The
    /// shared decoder skips what it does not know, which would let garbage through here. `=`
    /// alone (RFC 4959's empty initial response) and the empty line are the empty response.
    static func decodeBase64<Bytes: Collection>(_ text: Bytes) -> [UInt8]? where Bytes.Element == UInt8 {
        let bytes = Array(text)
        if bytes.isEmpty || bytes == [UInt8(ascii: "=")] { return [] }
        guard bytes.count % 4 == 0 else { return nil }
        var padding = 0
        for (i, b) in bytes.enumerated() {
            let inAlphabet = (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39)
                || b == UInt8(ascii: "+") || b == UInt8(ascii: "/")
            if b == UInt8(ascii: "=") {
                guard i >= bytes.count - 2 else { return nil }
                padding += 1
            } else if !inAlphabet || padding > 0 {
                return nil
            }
        }
        return Base64Decoder.decode(bytes)
    }
}
