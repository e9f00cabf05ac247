// The Authentication-Results header field (RFC 8601): written once per message by the verifying
// filter, and read back to remove fields that claim to be ours (§5: a message may arrive with a
// forged one).

/// One Authentication-Results field being written.
package struct AuthenticationResultsField: Sendable, Equatable {
    /// One method's result: `dkim=pass (reason) header.d=example.org header.s=sel`.
    package struct Entry: Sendable, Equatable {
        package var method: String
        package var result: String
        package var reason: String?
        /// `ptype.property=value` triples, in order (`smtp.mailfrom`, `header.d`, ...).
        package var properties: [Property]

        package init(method: String, result: String, reason: String? = nil, properties: [Property] = []) {
            self.method = method
            self.result = result
            self.reason = reason
            self.properties = properties
        }
    }

    package struct Property: Sendable, Equatable {
        package var type: String
        package var name: String
        package var value: String

        package init(_ type: String, _ name: String, _ value: String) {
            self.type = type
            self.name = name
            self.value = value
        }
    }

    package var authservID: String
    package var entries: [Entry]

    package init(authservID: String, entries: [Entry]) {
        self.authservID = authservID
        self.entries = entries
    }

    /// The field's value (after `Authentication-Results:`), one method per folded line; `none`
    /// when no method ran (RFC 8601 §2.2).
    package var value: String {
        guard !entries.isEmpty else { return " \(authservID); none" }
        var text = " \(authservID);"
        for (index, entry) in entries.enumerated() {
            var part = "\(entry.method)=\(entry.result)"
            if let reason = entry.reason { part += " reason=\(Self.quoted(reason))" }
            for property in entry.properties {
                part += " \(property.type).\(property.name)=\(Self.propertyValue(property.value))"
            }
            text += "\r\n\t" + part + (index == entries.count - 1 ? "" : ";")
        }
        return text
    }

    // MARK: Syntax

    /// RFC 2045 token characters: what may go unquoted.
    static func isToken(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy { byte in
            byte > 32 && byte < 127 && !"()<>@,;:\\\"/[]?=".utf8.contains(byte)
        }
    }

    /// A `value` (RFC 8601 §2.2): a token as is, anything else as a quoted-string.
    static func quoted(_ text: String) -> String {
        if isToken(text) { return text }
        var out = "\""
        // Scalars, not Characters: CR LF is one Character in Swift.
        for scalar in text.unicodeScalars where scalar != "\r" && scalar != "\n" {
            if scalar == "\"" || scalar == "\\" { out += "\\" }
            out.unicodeScalars.append(scalar)
        }
        return out + "\""
    }

    /// A `pvalue`: a token, `local@domain`, `@domain`, or else a quoted-string.
    static func propertyValue(_ text: String) -> String {
        if isToken(text) { return text }
        if let at = text.lastIndex(of: "@") {
            let local = text[..<at], domain = text[text.index(after: at)...]
            let dotAtom = { (part: Substring) in
                !part.isEmpty && part.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { isToken(String($0)) }
            }
            if dotAtom(domain) && (local.isEmpty || dotAtom(local)) { return text }
        }
        return quoted(text)
    }

    // MARK: Reading

    /// The authserv-id a received field's value starts with, comments and folding skipped; nil
    /// when the value does not start with one.
    package static func authservID(of value: String) -> String? {
        var bytes = Substring(value).utf8[...]
        skipCFWS(&bytes)
        var id: [UInt8] = []
        if bytes.first == UInt8(ascii: "\"") {
            bytes = bytes.dropFirst()
            var escaped = false
            while let byte = bytes.first {
                bytes = bytes.dropFirst()
                if escaped { id.append(byte); escaped = false; continue }
                if byte == UInt8(ascii: "\\") { escaped = true; continue }
                if byte == UInt8(ascii: "\"") { return id.isEmpty ? nil : String(decoding: id, as: UTF8.self) }
                id.append(byte)
            }
            return nil
        }
        while let byte = bytes.first, byte > 32, byte < 127, !"()<>,;:\\\"/[]?=".utf8.contains(byte) {
            id.append(byte)
            bytes = bytes.dropFirst()
        }
        return id.isEmpty ? nil : String(decoding: id, as: UTF8.self)
    }

    /// Skips white space, line breaks and (nested) comments.
    private static func skipCFWS(_ bytes: inout Substring.UTF8View.SubSequence) {
        var depth = 0
        while let byte = bytes.first {
            if byte == UInt8(ascii: "(") { depth += 1 }
            else if byte == UInt8(ascii: ")") && depth > 0 { depth -= 1 }
            else if byte == UInt8(ascii: "\\") && depth > 0 { bytes = bytes.dropFirst() }
            else if depth == 0 && byte != 32 && byte != 9 && byte != 13 && byte != 10 { return }
            bytes = bytes.dropFirst()
        }
    }

    /// Whether a received field's value claims to come from `authservID` (compared without case,
    /// as host names are).
    package static func claims(_ value: String, authservID: String) -> Bool {
        guard let id = self.authservID(of: value) else { return false }
        return id.lowercased() == authservID.lowercased()
    }
}
