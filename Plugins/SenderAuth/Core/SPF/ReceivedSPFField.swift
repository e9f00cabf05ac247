// The Received-SPF header field (RFC 7208 §9.1): the result, a comment a person can read, and
// key-value pairs a program can: client-ip, envelope-from, helo, receiver, identity, and the
// mechanism that matched or the problem that ended the check.

package struct ReceivedSPFField: Sendable, Equatable {
    package static let name = "Received-SPF"

    package var outcome: SPFOutcome

    package init(_ outcome: SPFOutcome) { self.outcome = outcome }

    /// The comment of §9.1's examples, after the receiver's name.
    package var comment: String {
        let who = "domain of \(outcome.envelopeFrom)"
        let ip = outcome.clientIP
        let text: String
        switch outcome.result {
        case .pass: text = "\(who) designates \(ip) as permitted sender"
        case .fail: text = "\(who) does not designate \(ip) as permitted sender"
        case .softfail: text = "transitioning \(who) does not designate \(ip) as permitted sender"
        case .neutral: text = "\(ip) is neither permitted nor denied by \(who)"
        case .none: text = "\(who) does not provide an SPF record"
        case .temperror: text = "error in processing during lookup of \(who)"
        case .permerror: text = "permanent error in processing \(who)"
        }
        return outcome.receiver.isEmpty ? text : "\(outcome.receiver): \(text)"
    }

    /// The key-value pairs, in the order of §9.1's examples.
    package var pairs: [(key: String, value: String)] {
        var pairs: [(String, String)] = []
        if !outcome.receiver.isEmpty { pairs.append(("receiver", outcome.receiver)) }
        pairs.append(("client-ip", outcome.clientIP))
        pairs.append(("envelope-from", outcome.envelopeFrom))
        if !outcome.helo.isEmpty { pairs.append(("helo", outcome.helo)) }
        pairs.append(("identity", outcome.identity.rawValue))
        if let mechanism = outcome.mechanism { pairs.append(("mechanism", mechanism)) }
        if let problem = outcome.problem, outcome.result == .temperror || outcome.result == .permerror {
            pairs.append(("problem", problem))
        }
        return pairs
    }

    /// The field's value (after `Received-SPF:`), the pairs on folded lines.
    package var value: String {
        var text = " \(outcome.result.rawValue) (\(Self.commentText(comment)))"
        for (key, value) in pairs { text += "\r\n\t\(key)=\(Self.pairValue(value));" }
        return text
    }

    /// The whole field with its name, without the final CRLF.
    package var field: String { Self.name + ":" + value }

    // MARK: Syntax

    /// RFC 5322 `atext`.
    private static func isAtext(_ byte: UInt8) -> Bool {
        byte.isASCIILetter || (byte >= 0x30 && byte <= 0x39) || "!#$%&'*+-/=?^_`{|}~".utf8.contains(byte)
    }

    /// A `dot-atom` as is, anything else (an IPv6 address, a problem text) as a quoted-string.
    static func pairValue(_ text: String) -> String {
        let atoms = text.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        if !text.isEmpty && atoms.allSatisfy({ !$0.isEmpty && $0.allSatisfy(isAtext) }) { return text }
        var out = "\""
        // Scalars, not Characters: CR LF is one Character in Swift.
        for scalar in text.unicodeScalars where scalar != "\r" && scalar != "\n" {
            if scalar == "\"" || scalar == "\\" { out += "\\" }
            out.unicodeScalars.append(scalar)
        }
        return out + "\""
    }

    /// Comment text: parentheses and backslashes escaped (RFC 5322 `quoted-pair`), line breaks
    /// dropped, so a sender's address cannot end the comment early.
    static func commentText(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars where scalar != "\r" && scalar != "\n" {
            if scalar == "(" || scalar == ")" || scalar == "\\" { out += "\\" }
            out.unicodeScalars.append(scalar)
        }
        return out
    }
}
