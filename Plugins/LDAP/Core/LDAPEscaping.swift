// Escaping of values put into LDAP filters (RFC 4515) and DNs (RFC 4514). Every value that comes
// from a client (a login name, a recipient address, a white-pages query) goes through one of these
// before it reaches the directory: a user name like `*)(uid=*` must match nothing, not everything.
// Pure functions over bytes, no I/O.

enum LDAPEscaping {
    /// RFC 4515 §3: in an assertion value, `*`, `(`, `)`, `\` and NUL are written as `\XX` (two
    /// lower-case hex digits). Every byte outside printable ASCII is escaped too (the RFC allows
    /// UTF-8 as is; escaping it keeps the filter plain ASCII, which no server misreads).
    /// True when `text` holds a C0 control character or DEL: no name, address or search a
    /// person types has one, and some servers treat NUL as the end of a value.
    static func hasControlCharacters(_ text: String) -> Bool {
        text.utf8.contains { $0 < 0x20 || $0 == 0x7F }
    }

    static func filterValue(_ value: String) -> String {
        filterValue(Array(value.utf8))
    }

    static func filterValue(_ bytes: [UInt8]) -> String {
        var out = ""
        out.reserveCapacity(bytes.count)
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "*"), UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "\\"), 0, 0x7F, 0x80...0xFF, 0x01..<0x20:
                out += "\\" + hex(byte)
            default:
                out.unicodeScalars.append(Unicode.Scalar(byte))
            }
        }
        return out
    }

    /// RFC 4514 §2.4: an attribute value in a DN string. `"`, `+`, `,`, `;`, `<`, `>`, `\` are
    /// backslash-escaped (and `=`, which the RFC's grammar allows escaped, so no reader can take it
    /// for the start of another attribute); a leading space or `#` and a trailing space too; NUL as `\00`. Control
    /// bytes and non-ASCII bytes are written as `\XX` pairs so the DN stays ASCII.
    static func dnValue(_ value: String) -> String {
        let bytes = Array(value.utf8)
        var out = ""
        for (i, byte) in bytes.enumerated() {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"),
                 UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "\\"), UInt8(ascii: "="):
                out += "\\" + String(Unicode.Scalar(byte))
            case UInt8(ascii: " ") where i == 0 || i == bytes.count - 1:
                out += "\\ "
            case UInt8(ascii: "#") where i == 0:
                out += "\\#"
            case 0..<0x20, 0x7F, 0x80...0xFF:
                out += "\\" + hex(byte)
            default:
                out.unicodeScalars.append(Unicode.Scalar(byte))
            }
        }
        return out
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef".unicodeScalars)
        return String(digits[Int(byte >> 4)]) + String(digits[Int(byte & 0x0F)])
    }
}

/// A filter or DN template with placeholders, as Postfix's and Dovecot's LDAP maps have them:
/// `%u` the whole name (`alice@example.org`), `%n` its local part (`alice`), `%d` its domain
/// (`example.org`, empty when the name has no `@`), `%s` a search text (white pages), `%%` a
/// percent sign. Each substituted value is escaped for where the template is used, so the
/// template's own syntax (`*`, parentheses) stays the administrator's alone.
struct LDAPTemplate: Sendable, Equatable {
    enum Kind: Sendable { case filter, dn }
    enum TemplateError: Error, Equatable, CustomStringConvertible {
        case unknownPlaceholder(String)
        case unbalancedParentheses(String)

        var description: String {
            switch self {
            case .unknownPlaceholder(let t): return "template \"\(t)\": only %u, %n, %d, %s and %% are placeholders"
            case .unbalancedParentheses(let t): return "filter \"\(t)\": parentheses do not balance"
            }
        }
    }

    let text: String
    let kind: Kind

    /// Checks the template's placeholders (and a filter's parentheses) once, at configuration.
    init(_ text: String, kind: Kind) throws {
        var chars = text.makeIterator()
        while let c = chars.next() {
            guard c == "%" else { continue }
            guard let p = chars.next(), "unds%".contains(p) else { throw TemplateError.unknownPlaceholder(text) }
        }
        if kind == .filter {
            var depth = 0
            for c in text {
                if c == "(" { depth += 1 }
                if c == ")" { depth -= 1; if depth < 0 { break } }
            }
            guard depth == 0, text.hasPrefix("("), text.hasSuffix(")") else { throw TemplateError.unbalancedParentheses(text) }
        }
        self.text = text
        self.kind = kind
    }

    /// The template with `name` (and `search`, for `%s`) substituted and escaped.
    func expand(name: String, search: String = "") -> String {
        let (local, domain): (String, String) = {
            guard let at = name.lastIndex(of: "@") else { return (name, "") }
            return (String(name[..<at]), String(name[name.index(after: at)...]))
        }()
        let isFilter = kind == .filter
        let escape: (String) -> String = { isFilter ? LDAPEscaping.filterValue($0) : LDAPEscaping.dnValue($0) }
        var out = ""
        var chars = text.makeIterator()
        while let c = chars.next() {
            guard c == "%", let p = chars.next() else { out.append(c); continue }
            switch p {
            case "u": out += escape(name)
            case "n": out += escape(local)
            case "d": out += escape(domain)
            case "s": out += escape(search)
            default: out.append("%")
            }
        }
        return out
    }
}
