/// An ESMTP parameter of MAIL or RCPT (`SIZE=1000`, `BODY=8BITMIME`, `SMTPUTF8`), key upper-cased.
public struct SMTPParameter: Sendable, Equatable {
    public var key: String
    public var value: String?

    public init(_ key: String, _ value: String? = nil) {
        self.key = key
        self.value = value
    }
}

/// One SMTP or LMTP command line (RFC 5321 §4.1, RFC 2033, RFC 3030, RFC 4954, RFC 3207).
public enum SMTPCommand: Sendable, Equatable {
    case helo(String)
    case ehlo(String)
    /// LMTP's greeting (RFC 2033).
    case lhlo(String)
    case mail(from: SMTPPath, parameters: [SMTPParameter])
    case rcpt(to: SMTPPath, parameters: [SMTPParameter])
    case data
    case bdat(size: Int, last: Bool)
    case rset
    case noop
    case quit
    case startTLS
    case vrfy(String)
    case expn(String)
    case help(String?)
    case auth(mechanism: String, initialResponse: String?)
}

/// Why a command line was not understood, with the reply a server sends for it.
public enum SMTPCommandError: Error, Sendable, Equatable {
    case unknownCommand(String)
    case syntax(String)
    case badAddress(String)
    case badParameter(String)

    /// The reply (RFC 5321 §4.2, enhanced codes from RFC 3463).
    public var reply: MailReply {
        switch self {
        case .unknownCommand: return MailReply(500, "5.5.1", "command not recognized")
        case .syntax(let why): return MailReply(501, "5.5.4", "syntax error: \(why)")
        case .badAddress(let why): return MailReply(501, "5.1.3", "bad address syntax: \(why)")
        case .badParameter(let why): return MailReply(555, "5.5.4", "unsupported parameter: \(why)")
        }
    }
}

/// Parses command lines. Pure: no state, no I/O; one line without its CRLF in, one command out.
public enum SMTPCommandParser {
    /// Parses `line`. `allowUTF8` admits RFC 6531 addresses (the session enables it per
    /// transaction when the client used `SMTPUTF8`; this parser takes them whenever allowed).
    public static func parse(_ line: [UInt8], allowUTF8: Bool = true) -> Result<SMTPCommand, SMTPCommandError> {
        guard let text = String(validating: line, as: UTF8.self) else { return .failure(.syntax("not UTF-8")) }
        if text.contains(where: { $0 == "\0" || $0 == "\r" || $0 == "\n" }) { return .failure(.syntax("control character in command")) }
        let verbEnd = text.firstIndex(of: " ") ?? text.endIndex
        let verb = text[..<verbEnd].uppercased()
        let rest = text[verbEnd...].drop { $0 == " " }
        let argument = String(rest).trimmingTrailingSpaces()
        switch verb {
        case "HELO", "EHLO", "LHLO":
            guard !argument.isEmpty, !argument.contains(" ") else { return .failure(.syntax("\(verb) needs one domain or address literal")) }
            return .success(verb == "HELO" ? .helo(argument) : verb == "EHLO" ? .ehlo(argument) : .lhlo(argument))
        case "MAIL":
            return pathCommand(argument, keyword: "FROM:", allowUTF8: allowUTF8, allowNull: true).map { .mail(from: $0.0, parameters: $0.1) }
        case "RCPT":
            return pathCommand(argument, keyword: "TO:", allowUTF8: allowUTF8, allowNull: false).map { .rcpt(to: $0.0, parameters: $0.1) }
        case "DATA", "RSET", "QUIT", "STARTTLS":
            guard argument.isEmpty else { return .failure(.syntax("\(verb) takes no argument")) }
            switch verb {
            case "DATA": return .success(.data)
            case "RSET": return .success(.rset)
            case "QUIT": return .success(.quit)
            default: return .success(.startTLS)
            }
        case "NOOP":
            return .success(.noop)
        case "BDAT":
            let parts = argument.split(separator: " ")
            guard (1...2).contains(parts.count), let size = Int(parts[0]), size >= 0, parts[0].allSatisfy(\.isNumber) else {
                return .failure(.syntax("BDAT needs a chunk size"))
            }
            if parts.count == 2 && parts[1].uppercased() != "LAST" { return .failure(.syntax("BDAT size [LAST]")) }
            return .success(.bdat(size: size, last: parts.count == 2))
        case "VRFY", "EXPN":
            guard !argument.isEmpty else { return .failure(.syntax("\(verb) needs an argument")) }
            return .success(verb == "VRFY" ? .vrfy(argument) : .expn(argument))
        case "HELP":
            return .success(.help(argument.isEmpty ? nil : argument))
        case "AUTH":
            let parts = argument.split(separator: " ")
            guard (1...2).contains(parts.count) else { return .failure(.syntax("AUTH mechanism [initial-response]")) }
            return .success(.auth(mechanism: parts[0].uppercased(), initialResponse: parts.count == 2 ? String(parts[1]) : nil))
        default:
            return .failure(.unknownCommand(verb))
        }
    }

    /// `FROM:<path> params` / `TO:<path> params`. A space after the colon is accepted (as
    /// Postfix does), a missing angle bracket is not.
    static func pathCommand(_ argument: String, keyword: String, allowUTF8: Bool, allowNull: Bool)
        -> Result<(SMTPPath, [SMTPParameter]), SMTPCommandError> {
        guard argument.uppercased().hasPrefix(keyword) else { return .failure(.syntax("expected \(keyword)<address>")) }
        let afterKeyword = argument.dropFirst(keyword.count).drop { $0 == " " }
        guard afterKeyword.first == "<", let close = closingBracket(afterKeyword) else {
            return .failure(.syntax("expected \(keyword)<address>"))
        }
        let pathText = String(afterKeyword[...close])
        let paramText = afterKeyword[afterKeyword.index(after: close)...]
        guard paramText.isEmpty || paramText.first == " " else { return .failure(.syntax("text after the address")) }
        let path: SMTPPath
        if !allowNull && pathText.lowercased() == "<postmaster>" {
            // RFC 5321 §4.1.1.3: every server accepts a bare <Postmaster>.
            path = SMTPPath(localPart: "postmaster", domain: nil)
        } else {
            do {
                path = try SMTPPath.parse(pathText, allowUTF8: allowUTF8)
            } catch {
                return .failure(.badAddress("\(error)"))
            }
            if path.isNull && !allowNull { return .failure(.badAddress("the null path is only a sender")) }
        }
        var parameters: [SMTPParameter] = []
        for word in paramText.split(separator: " ") {
            let pieces = word.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = pieces[0].uppercased()
            guard !key.isEmpty, key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" }), key.first!.isLetter || key.first!.isNumber else {
                return .failure(.badParameter(String(word)))
            }
            if parameters.contains(where: { $0.key == key }) { return .failure(.badParameter("\(key) given twice")) }
            parameters.append(SMTPParameter(key, pieces.count == 2 ? String(pieces[1]) : nil))
        }
        return .success((path, parameters))
    }

    /// The `>` closing the path, skipping quoted strings (`<"a>b"@c>`).
    static func closingBracket(_ text: Substring) -> Substring.Index? {
        var inQuote = false
        var escaped = false
        var i = text.startIndex
        while i < text.endIndex {
            let c = text[i]
            if escaped { escaped = false } else if c == "\\" && inQuote { escaped = true } else if c == "\"" { inQuote.toggle() } else if c == ">" && !inQuote { return i }
            i = text.index(after: i)
        }
        return nil
    }
}

extension String {
    fileprivate func trimmingTrailingSpaces() -> String {
        var s = Substring(self)
        while s.last == " " || s.last == "\t" { s.removeLast() }
        return String(s)
    }
}

extension MailReply {
    /// The reply as it goes on the wire: `250-a\r\n250 b\r\n` for several lines, the enhanced code
    /// on every line (RFC 2034 §3).
    public func encoded(extraLines: [String] = []) -> String {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) + extraLines
        var out = ""
        for (i, line) in lines.enumerated() {
            out += "\(code)\(i == lines.count - 1 ? " " : "-")\(enhanced.map { "\($0) " } ?? "")\(line)\r\n"
        }
        return out
    }
}
