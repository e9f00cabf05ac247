import Foundation
import PluginAPI

// The SCRAM client messages (RFC 5802 §7), parsed strictly from bytes: no I/O, no state. Every
// failure names the RFC's server-error-value (§7, `e=`), which the exchange records.

/// A server-error-value of RFC 5802 §7.
enum SCRAMError: String, Error, Equatable {
    case invalidEncoding = "invalid-encoding"
    case extensionsNotSupported = "extensions-not-supported"
    case invalidProof = "invalid-proof"
    case channelBindingsDontMatch = "channel-bindings-dont-match"
    case serverDoesSupportChannelBinding = "server-does-support-channel-binding"
    case channelBindingNotSupported = "channel-binding-not-supported"
    case unsupportedChannelBindingType = "unsupported-channel-binding-type"
    case unknownUser = "unknown-user"
    case invalidUsernameEncoding = "invalid-username-encoding"
    case noResources = "no-resources"
    case otherError = "other-error"
}

/// The gs2-cbind-flag: what the client says about channel binding.
enum SCRAMChannelBindingFlag: Equatable {
    /// `n`: the client does not support channel binding.
    case none
    /// `y`: the client supports it but thinks the server does not.
    case clientSupports
    /// `p=type`: the client binds to `type`.
    case binds(String)
}

/// client-first-message = gs2-header client-first-message-bare.
struct SCRAMClientFirst: Equatable {
    var flag: SCRAMChannelBindingFlag
    var authzid: String?
    var username: String
    var clientNonce: String
    /// The gs2-header bytes exactly as sent (`n,,`, `p=tls-server-end-point,a=bob,`), which the
    /// client-final `c=` must repeat.
    var gs2Header: [UInt8]
    /// client-first-message-bare exactly as sent, part of the AuthMessage.
    var bare: [UInt8]

    /// Upper bounds that keep a hostile client from making the server hold much.
    static let maximumMessageLength = 2048
    static let maximumNameLength = 255
    static let maximumNonceLength = 256

    static func parse(_ message: [UInt8]) -> Result<SCRAMClientFirst, SCRAMError> {
        guard !message.isEmpty, message.count <= maximumMessageLength else { return .failure(.invalidEncoding) }
        // gs2-header: flag "," [authzid] ","
        let comma = UInt8(ascii: ",")
        guard let first = message.firstIndex(of: comma) else { return .failure(.invalidEncoding) }
        let flagBytes = message[..<first]
        let flag: SCRAMChannelBindingFlag
        if flagBytes.elementsEqual("n".utf8) {
            flag = .none
        } else if flagBytes.elementsEqual("y".utf8) {
            flag = .clientSupports
        } else if flagBytes.starts(with: "p=".utf8) {
            let name = flagBytes.dropFirst(2)
            // cb-name = 1*(ALPHA / DIGIT / "." / "-")
            guard !name.isEmpty, name.count <= 64, name.allSatisfy({ isAlphaNumeric($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") })
            else { return .failure(.invalidEncoding) }
            flag = .binds(String(decoding: name, as: UTF8.self))
        } else {
            return .failure(.invalidEncoding)
        }
        let rest = message[(first + 1)...]
        guard let second = rest.firstIndex(of: comma) else { return .failure(.invalidEncoding) }
        let authzidBytes = rest[..<second]
        var authzid: String?
        if !authzidBytes.isEmpty {
            guard authzidBytes.starts(with: "a=".utf8) else { return .failure(.invalidEncoding) }
            guard let name = decodeSASLName(authzidBytes.dropFirst(2)) else { return .failure(.invalidUsernameEncoding) }
            authzid = name
        }
        let gs2Header = Array(message[...second])
        let bare = Array(message[(second + 1)...])
        // client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
        let attributes = bare.split(separator: comma, omittingEmptySubsequences: false)
        guard attributes.count >= 2 else { return .failure(.invalidEncoding) }
        if attributes[0].starts(with: "m=".utf8) { return .failure(.extensionsNotSupported) }
        guard attributes[0].starts(with: "n=".utf8) else { return .failure(.invalidEncoding) }
        guard let username = decodeSASLName(attributes[0].dropFirst(2)) else { return .failure(.invalidUsernameEncoding) }
        guard attributes[1].starts(with: "r=".utf8), let nonce = printable(attributes[1].dropFirst(2)) else {
            return .failure(.invalidEncoding)
        }
        guard attributes.dropFirst(2).allSatisfy(isExtension) else { return .failure(.invalidEncoding) }
        return .success(SCRAMClientFirst(flag: flag, authzid: authzid, username: username, clientNonce: nonce,
                                         gs2Header: gs2Header, bare: bare))
    }
}

/// client-final-message = channel-binding "," nonce ["," extensions] "," proof.
struct SCRAMClientFinal: Equatable {
    /// The decoded `c=`: gs2-header followed by the channel-binding data for `p=`.
    var channelBinding: [UInt8]
    var nonce: String
    var proof: [UInt8]
    /// client-final-message-without-proof exactly as sent, part of the AuthMessage.
    var withoutProof: [UInt8]

    static func parse(_ message: [UInt8]) -> Result<SCRAMClientFinal, SCRAMError> {
        guard !message.isEmpty, message.count <= SCRAMClientFirst.maximumMessageLength else { return .failure(.invalidEncoding) }
        let comma = UInt8(ascii: ",")
        let attributes = message.split(separator: comma, omittingEmptySubsequences: false)
        guard attributes.count >= 3, let last = attributes.last else { return .failure(.invalidEncoding) }
        guard attributes[0].starts(with: "c=".utf8), let binding = Base64Decoder.decodeStrict(attributes[0].dropFirst(2)),
              !binding.isEmpty else { return .failure(.invalidEncoding) }
        guard attributes[1].starts(with: "r=".utf8), let nonce = printable(attributes[1].dropFirst(2)) else {
            return .failure(.invalidEncoding)
        }
        guard attributes.dropFirst(2).dropLast().allSatisfy(isExtension) else { return .failure(.invalidEncoding) }
        guard last.starts(with: "p=".utf8), let proof = Base64Decoder.decodeStrict(last.dropFirst(2)), !proof.isEmpty else {
            return .failure(.invalidEncoding)
        }
        // Everything before ",p=".
        let withoutProof = Array(message[..<(message.count - last.count - 1)])
        return .success(SCRAMClientFinal(channelBinding: binding, nonce: nonce, proof: proof, withoutProof: withoutProof))
    }
}

private func isAlphaNumeric(_ b: UInt8) -> Bool {
    (0x30...0x39).contains(b) || (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b)
}

/// saslname (RFC 5802 §5.1): UTF-8 without NUL or ",", where "=" appears only as `=2C` (",") or
/// `=3D` ("="). Nil when empty, too long or malformed.
func decodeSASLName<Bytes: Collection>(_ bytes: Bytes) -> String? where Bytes.Element == UInt8 {
    let input = Array(bytes)
    guard !input.isEmpty, input.count <= SCRAMClientFirst.maximumNameLength * 3 else { return nil }
    var out: [UInt8] = []
    var i = 0
    while i < input.count {
        let b = input[i]
        if b == 0 || b == UInt8(ascii: ",") { return nil }
        if b == UInt8(ascii: "=") {
            guard i + 2 < input.count else { return nil }
            let code = input[(i + 1)...(i + 2)]
            if code.elementsEqual("2C".utf8) { out.append(UInt8(ascii: ",")) }
            else if code.elementsEqual("3D".utf8) { out.append(UInt8(ascii: "=")) }
            else { return nil }
            i += 3
        } else {
            out.append(b)
            i += 1
        }
    }
    guard out.count <= SCRAMClientFirst.maximumNameLength else { return nil }
    return String(validating: out, as: UTF8.self)
}

/// saslname encoding, for the server's own messages and the tests.
func encodeSASLName(_ name: String) -> String {
    name.replacingOccurrences(of: "=", with: "=3D").replacingOccurrences(of: ",", with: "=2C")
}

/// A nonce: printable ASCII except ",", non-empty, bounded.
private func printable<Bytes: Collection>(_ bytes: Bytes) -> String? where Bytes.Element == UInt8 {
    guard !bytes.isEmpty, bytes.count <= SCRAMClientFirst.maximumNonceLength,
          bytes.allSatisfy({ (0x21...0x7E).contains($0) && $0 != UInt8(ascii: ",") }) else { return nil }
    return String(decoding: bytes, as: UTF8.self)
}

/// An extension attribute: one ALPHA (other than those SCRAM defines) "=" 1*value-char.
private func isExtension(_ attribute: ArraySlice<UInt8>) -> Bool {
    guard attribute.count >= 3, let key = attribute.first, ((0x41...0x5A).contains(key) || (0x61...0x7A).contains(key)),
          attribute[attribute.startIndex + 1] == UInt8(ascii: "=") else { return false }
    return !"cnprsvime".utf8.contains(key) && String(validating: attribute.dropFirst(2), as: UTF8.self) != nil
}
