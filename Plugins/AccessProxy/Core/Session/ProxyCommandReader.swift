import Foundation

/// Reads the commands a client may send an access proxy before it logs in (RFC 9051 §6.1-6.2:
/// CAPABILITY, NOOP, LOGOUT, ID, STARTTLS, LOGIN with quoted strings or literals, AUTHENTICATE
/// with SASL-IR and its response lines). Everything after login goes to the back end byte for
/// byte, never through here. A pure state machine over bytes.
struct ProxyCommandReader {
    enum Command: Equatable {
        case capability(String)
        case noop(String)
        case logout(String)
        case id(String)
        case startTLS(String)
        case login(String, user: String, password: String)
        /// `initial`: the SASL-IR response (`=` is the empty one), nil without one.
        case authenticate(String, mechanism: String, initial: [UInt8]?)
        /// A command that exists but needs a login first.
        case needsLogin(String, String)
        case bad(String?, String)
    }

    enum Event: Equatable {
        case command(Command)
        /// A synchronizing literal was announced: the client waits for `+`.
        case continueLiteral
        /// One line of an AUTHENTICATE exchange: the decoded response, or nil for `*` (cancel).
        case authenticationResponse([UInt8]?)
        case badAuthenticationResponse
    }

    enum Piece {
        case text([UInt8])
        case literal([UInt8])
    }

    var maxLineLength = 8192
    var maxLiteralSize = 8192
    /// Set by the session after it sends a SASL challenge: the next line is a response.
    var expectingAuthenticationResponse = false

    private var buffer: [UInt8] = []
    private var pieces: [Piece] = []
    private var literalNeeded: Int?
    private var size = 0

    static let known: Set<String> = ["SELECT", "EXAMINE", "CREATE", "DELETE", "RENAME", "SUBSCRIBE", "UNSUBSCRIBE", "LIST", "LSUB",
                                     "NAMESPACE", "STATUS", "APPEND", "IDLE", "ENABLE", "CLOSE", "UNSELECT", "EXPUNGE", "SEARCH",
                                     "FETCH", "STORE", "COPY", "MOVE", "UID", "CHECK", "GETQUOTA", "GETQUOTAROOT", "GETACL",
                                     "MYRIGHTS", "COMPRESS", "GETMETADATA", "SETMETADATA"]

    mutating func feed(_ bytes: [UInt8]) -> [Event] {
        buffer += bytes
        var out: [Event] = []
        while true {
            if let n = literalNeeded {
                guard buffer.count >= n else { break }
                pieces.append(.literal(Array(buffer[0..<n])))
                buffer.removeFirst(n)
                literalNeeded = nil
                continue
            }
            guard let lf = buffer.firstIndex(of: 0x0A) else {
                if buffer.count > maxLineLength {
                    reset()
                    out.append(.command(.bad(nil, "Line too long.")))
                }
                break
            }
            var line = Array(buffer[0..<lf])
            buffer.removeFirst(lf + 1)
            if line.last == 0x0D { line.removeLast() }
            if expectingAuthenticationResponse {
                expectingAuthenticationResponse = false
                if line == [0x2A] {
                    out.append(.authenticationResponse(nil))
                } else if let decoded = Data(base64Encoded: Data(line)) {
                    out.append(.authenticationResponse(Array(decoded)))
                } else {
                    out.append(.badAuthenticationResponse)
                }
                // The session answers before the next line is read (another challenge, or the
                // login, after which the bytes belong to the back end).
                return out
            }
            size += line.count
            if line.count > maxLineLength || size > maxLineLength + 2 * maxLiteralSize {
                reset()
                out.append(.command(.bad(nil, "Command too long.")))
                continue
            }
            if let (n, synchronizing, text) = Self.literalAnnouncement(line) {
                guard n <= maxLiteralSize else {
                    let tag = Self.tokens([.text(text)]).first.map { String(decoding: $0, as: UTF8.self) }
                    reset()
                    out.append(.command(.bad(tag, "Literal too big.")))
                    continue
                }
                pieces.append(.text(text))
                literalNeeded = n
                size += n
                if synchronizing { out.append(.continueLiteral) }
                continue
            }
            pieces.append(.text(line))
            let command = Self.command(pieces)
            out.append(.command(command))
            pieces = []
            size = 0
            // A login may hand the connection to a back end: what follows it stays unread here
            // (`takeBuffered`) until the session says otherwise (`feed([])`).
            switch command {
            case .login, .authenticate, .startTLS: return out
            default: continue
            }
        }
        return out
    }

    /// The bytes not read yet: after a login, the client's pipelined commands for the back end.
    mutating func takeBuffered() -> [UInt8] {
        defer { reset() }
        return buffer
    }

    private mutating func reset() {
        buffer = []
        pieces = []
        literalNeeded = nil
        size = 0
    }

    /// `{n}` or `{n+}` at the end of a line: its size, whether the client waits, the line before it.
    static func literalAnnouncement(_ line: [UInt8]) -> (Int, Bool, [UInt8])? {
        guard line.last == 0x7D, let open = line.lastIndex(of: 0x7B) else { return nil }
        var digits = Array(line[(open + 1)..<(line.count - 1)])
        let nonSynchronizing = digits.last == 0x2B
        if nonSynchronizing { digits.removeLast() }
        guard !digits.isEmpty, digits.count <= 9, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
              let n = Int(String(decoding: digits, as: UTF8.self)) else { return nil }
        return (n, !nonSynchronizing, Array(line[0..<open]))
    }

    /// Atoms, quoted strings (with `\"` and `\\`) and literals, in order.
    static func tokens(_ pieces: [Piece]) -> [[UInt8]] {
        var out: [[UInt8]] = []
        for piece in pieces {
            switch piece {
            case .literal(let bytes): out.append(bytes)
            case .text(let text):
                var i = 0
                while i < text.count {
                    if text[i] == 0x20 { i += 1; continue }
                    var token: [UInt8] = []
                    if text[i] == 0x22 {
                        i += 1
                        while i < text.count && text[i] != 0x22 {
                            if text[i] == 0x5C && i + 1 < text.count { i += 1 }
                            token.append(text[i])
                            i += 1
                        }
                        i += 1
                    } else {
                        while i < text.count && text[i] != 0x20 { token.append(text[i]); i += 1 }
                    }
                    out.append(token)
                }
            }
        }
        return out
    }

    static func command(_ pieces: [Piece]) -> Command {
        let t = tokens(pieces).map { String(decoding: $0, as: UTF8.self) }
        guard let tag = t.first, !tag.isEmpty, tag.allSatisfy({ $0.isASCII && !"(){%*\"\\+".contains($0) && !$0.isWhitespace }) else {
            return .bad(nil, "Error in IMAP command received by server.")
        }
        guard t.count >= 2 else { return .bad(tag, "Error in IMAP command received by server.") }
        let name = t[1].uppercased()
        let args = Array(t.dropFirst(2))
        switch name {
        case "CAPABILITY": return args.isEmpty ? .capability(tag) : .bad(tag, "CAPABILITY takes no arguments.")
        case "NOOP": return .noop(tag)
        case "LOGOUT": return .logout(tag)
        case "ID": return .id(tag)
        case "STARTTLS": return args.isEmpty ? .startTLS(tag) : .bad(tag, "STARTTLS takes no arguments.")
        case "LOGIN":
            guard args.count == 2 else { return .bad(tag, "LOGIN needs a user name and a password.") }
            return .login(tag, user: args[0], password: args[1])
        case "AUTHENTICATE":
            guard args.count == 1 || args.count == 2 else { return .bad(tag, "AUTHENTICATE needs a mechanism.") }
            var initial: [UInt8]?
            if args.count == 2 {
                if args[1] == "=" {
                    initial = []
                } else if let decoded = Data(base64Encoded: args[1]) {
                    initial = Array(decoded)
                } else {
                    return .bad(tag, "Invalid base64 in the initial response.")
                }
            }
            return .authenticate(tag, mechanism: args[0].uppercased(), initial: initial)
        default:
            return known.contains(name) ? .needsLogin(tag, name) : .bad(tag, "Unknown command.")
        }
    }
}
