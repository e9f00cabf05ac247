/// POP3 commands (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH), parsed from one line
/// without its CRLF. Pure: no I/O, no session state; the session decides what is allowed when.
enum POP3Command: Equatable {
    case user(String)
    case pass(String)
    case apop(name: String, digest: String)
    case auth(mechanism: String?, initialResponse: String?)
    case stls
    case capa
    case stat
    case list(Int?)
    case retr(Int)
    case dele(Int)
    case noop
    case rset
    case top(Int, lines: Int)
    case uidl(Int?)
    case quit
    /// `XCLIENT ADDR=... PORT=...`: an access proxy names its client (Postfix's and Dovecot's
    /// extension); taken from proxy networks only.
    case xclient([String: String])

    enum ParseError: Error, Equatable {
        case unknownCommand(String)
        case syntax(String)
        case nul
        case tooLong

        /// The reply: `-ERR` with the text (RFC 2449 allows no response code for syntax errors).
        var reply: String {
            switch self {
            case .unknownCommand(let verb): return "-ERR unknown command \(verb.prefix(32))"
            case .syntax(let why): return "-ERR \(why)"
            case .nul: return "-ERR NUL byte in command"
            case .tooLong: return "-ERR line too long"
            }
        }
    }

    /// RFC 2449 §4: command lines are at most 255 octets; servers may allow more. The limit is the
    /// caller's (`maxLineLength`); this only parses.
    static func parse(_ line: [UInt8]) -> Result<POP3Command, ParseError> {
        guard !line.contains(0) else { return .failure(.nul) }
        let text = String(decoding: line, as: UTF8.self)
        // Keywords and arguments are separated by single spaces (RFC 1939 §3); PASS keeps its
        // argument whole, since passwords may contain spaces.
        let verbEnd = text.firstIndex(of: " ") ?? text.endIndex
        let verb = text[..<verbEnd].uppercased()
        let rest = verbEnd == text.endIndex ? "" : String(text[text.index(after: verbEnd)...])
        let args = rest.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        let argCount = rest.isEmpty ? 0 : args.count

        func number(_ s: String) -> Int? {
            // Message numbers are decimal without sign; 0 and huge values are refused by the session.
            guard !s.isEmpty, s.count <= 10, s.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
            return Int(s)
        }
        func one(_ make: (Int) -> POP3Command) -> Result<POP3Command, ParseError> {
            guard argCount == 1, let n = number(args[0]) else { return .failure(.syntax("\(verb) needs a message number")) }
            return .success(make(n))
        }
        func optional(_ make: (Int?) -> POP3Command) -> Result<POP3Command, ParseError> {
            if argCount == 0 { return .success(make(nil)) }
            guard argCount == 1, let n = number(args[0]) else { return .failure(.syntax("\(verb) takes at most a message number")) }
            return .success(make(n))
        }
        func none(_ c: POP3Command) -> Result<POP3Command, ParseError> {
            argCount == 0 ? .success(c) : .failure(.syntax("\(verb) takes no argument"))
        }

        switch verb {
        case "USER":
            guard argCount >= 1, !rest.isEmpty else { return .failure(.syntax("USER needs a name")) }
            return .success(.user(rest))
        case "PASS":
            guard !rest.isEmpty else { return .failure(.syntax("PASS needs a password")) }
            return .success(.pass(rest))
        case "APOP":
            guard argCount == 2 else { return .failure(.syntax("APOP needs a name and a digest")) }
            return .success(.apop(name: args[0], digest: args[1]))
        case "AUTH":
            if argCount == 0 { return .success(.auth(mechanism: nil, initialResponse: nil)) }
            guard argCount <= 2, !args[0].isEmpty else { return .failure(.syntax("AUTH mechanism [initial-response]")) }
            return .success(.auth(mechanism: args[0].uppercased(), initialResponse: argCount == 2 ? args[1] : nil))
        case "STLS": return none(.stls)
        case "CAPA": return none(.capa)
        case "STAT": return none(.stat)
        case "LIST": return optional { .list($0) }
        case "RETR": return one { .retr($0) }
        case "DELE": return one { .dele($0) }
        case "NOOP": return none(.noop)
        case "RSET": return none(.rset)
        case "TOP":
            guard argCount == 2, let n = number(args[0]), let lines = number(args[1]) else {
                return .failure(.syntax("TOP needs a message number and a line count"))
            }
            return .success(.top(n, lines: lines))
        case "UIDL": return optional { .uidl($0) }
        case "QUIT": return none(.quit)
        case "XCLIENT":
            var fields: [String: String] = [:]
            for arg in args {
                let kv = arg.split(separator: "=", maxSplits: 1)
                guard kv.count == 2 else { return .failure(.syntax("XCLIENT takes NAME=VALUE pairs")) }
                fields[kv[0].uppercased()] = String(kv[1])
            }
            return .success(.xclient(fields))
        default: return .failure(.unknownCommand(verb))
        }
    }
}

/// The bytes of a message as POP3 sends it (RFC 1939 §3): CRLF line ends, lines starting with
/// "." doubled, for RETR the whole message and for TOP the header, the blank line and the first
/// `lines` lines of the body; the terminating ".CRLF" is the caller's.
enum POP3Transfer {
    static func encode(_ message: [UInt8], bodyLines: Int? = nil) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(message.count + message.count / 50 + 2)
        var atLineStart = true
        var inBody = false
        var previousLineEmpty = false
        var lineIsEmpty = true
        var bodyLinesSent = 0
        var i = 0
        while i < message.count {
            if inBody, let limit = bodyLines, atLineStart, bodyLinesSent >= limit { break }
            let byte = message[i]
            if atLineStart && byte == UInt8(ascii: ".") { out.append(UInt8(ascii: ".")) }
            if byte == 0x0A || byte == 0x0D {
                // CR LF, a lone LF or a lone CR: one line end, written as CRLF.
                if byte == 0x0D, i + 1 < message.count, message[i + 1] == 0x0A { i += 1 }
                out += [0x0D, 0x0A]
                if inBody { bodyLinesSent += 1 }
                if !inBody && lineIsEmpty && !previousLineEmpty { inBody = true }
                previousLineEmpty = lineIsEmpty
                lineIsEmpty = true
                atLineStart = true
            } else {
                out.append(byte)
                lineIsEmpty = false
                atLineStart = false
            }
            i += 1
        }
        if !atLineStart { out += [0x0D, 0x0A] }
        return out
    }
}
