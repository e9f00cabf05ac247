/// The authproxyd wire protocol: what workers and `postern authproxyd` say to each other over its
/// Unix socket. A pure codec over bytes (no I/O), so every frame shape, truncated and oversized
/// ones included, is tested byte by byte (Tests/KerberosTests/AuthProxyWireTests).
///
/// A frame is
///
/// ```
/// length   4 octets, big-endian: the octets that follow (type + fields), 1 ... maximumFrameLength
/// type     1 octet: a request (0x01-0x7f) or a reply (0x81-0xff)
/// fields   each: 4-octet big-endian length, then that many octets; as many as the type defines
/// ```
///
/// Text fields are UTF-8. One request, then one reply, per exchange of frames; a client may send
/// the next request on the same connection after the reply. Anything that does not decode closes
/// the connection (the worker treats that as a temporary failure).
public enum AuthProxyWire {
    /// Largest `length` accepted: Kerberos tokens with a PAC are a few kilobytes; 64 KiB leaves
    /// room and keeps a hostile peer from making either side buffer much.
    public static let maximumFrameLength = 64 * 1024
    /// Octets before the body: the length field.
    public static let headerLength = 4

    /// Why bytes did not decode.
    public enum DecodeError: Error, Sendable, Equatable {
        /// The length field says more than `maximumFrameLength`, or zero.
        case badLength(Int)
        /// The stream ended inside a frame.
        case truncated
        case unknownType(UInt8)
        /// A field's length runs past the frame, or fields are missing.
        case malformedField(String)
        /// Octets left over after the type's last field.
        case trailingBytes(Int)
        case invalidUTF8(String)
    }
}

/// Why authproxyd refused, as one octet on the wire.
public enum AuthProxyRefusal: UInt8, Sendable, Equatable {
    /// Wrong password, bad ticket, a principal outside the realm map: the client's fault.
    case authenticationFailed = 1
    /// No such principal (lets the next credential backend try, for passwords).
    case unknownUser = 2
    /// The client sent something the mechanism cannot parse.
    case malformed = 3
    /// KDC unreachable, keytab unreadable, exchange expired: try again later.
    case temporary = 4
    /// authproxyd has no backend for this request.
    case unsupported = 5
}

/// A worker's question.
public enum AuthProxyRequest: Sendable, Equatable {
    /// 0x01: the first GSSAPI token of an exchange for `service@hostname` (RFC 4752).
    case gssStart(service: String, hostname: String, token: [UInt8])
    /// 0x02: the next client token of exchange `exchange` (an id authproxyd handed out).
    case gssStep(exchange: String, token: [UInt8])
    /// 0x03: check a password a client sent with PLAIN or LOGIN.
    case password(user: String, password: String)
    /// 0x04: are you there (the supervisor's and the tests' health check).
    case ping
    /// 0x05: authproxyd's metrics, for the master's /metrics (Prometheus text).
    case metrics

    public var type: UInt8 {
        switch self {
        case .gssStart: return 0x01
        case .gssStep: return 0x02
        case .password: return 0x03
        case .ping: return 0x04
        case .metrics: return 0x05
        }
    }

    var fields: [[UInt8]] {
        switch self {
        case .gssStart(let service, let hostname, let token): return [Array(service.utf8), Array(hostname.utf8), token]
        case .gssStep(let exchange, let token): return [Array(exchange.utf8), token]
        case .password(let user, let password): return [Array(user.utf8), Array(password.utf8)]
        case .ping, .metrics: return []
        }
    }

    /// The whole frame, length first.
    public func encoded() -> [UInt8] { AuthProxyFrame(type: type, fields: fields).encoded() }

    /// Reads a request from a frame's type and fields.
    public init(_ frame: AuthProxyFrame) throws {
        var r = FieldReader(frame)
        switch frame.type {
        case 0x01: self = .gssStart(service: try r.text("service"), hostname: try r.text("hostname"), token: try r.bytes("token"))
        case 0x02: self = .gssStep(exchange: try r.text("exchange"), token: try r.bytes("token"))
        case 0x03: self = .password(user: try r.text("user"), password: try r.text("password"))
        case 0x04: self = .ping
        case 0x05: self = .metrics
        default: throw AuthProxyWire.DecodeError.unknownType(frame.type)
        }
        try r.finish()
    }
}

/// authproxyd's answer.
public enum AuthProxyReply: Sendable, Equatable {
    /// 0x81: send `token` to the client as the next challenge; answer with `gssStep(exchange)`.
    case gssContinue(exchange: String, token: [UInt8])
    /// 0x82: the exchange succeeded: the Kerberos principal, the account it maps to, and the
    /// authorization identity the client asked for (empty field: none).
    case gssComplete(principal: String, user: String, authzid: String?)
    /// 0x83: the password is right; `user` is the account the principal maps to.
    case passwordVerified(principal: String, user: String)
    /// 0x84: refused, with a reason for the log (never shown to clients).
    case refused(AuthProxyRefusal, reason: String)
    /// 0x85: the answer to `ping`.
    case pong
    /// 0x86: the answer to `metrics`.
    case metricsText(String)

    public var type: UInt8 {
        switch self {
        case .gssContinue: return 0x81
        case .gssComplete: return 0x82
        case .passwordVerified: return 0x83
        case .refused: return 0x84
        case .pong: return 0x85
        case .metricsText: return 0x86
        }
    }

    var fields: [[UInt8]] {
        switch self {
        case .gssContinue(let exchange, let token): return [Array(exchange.utf8), token]
        case .gssComplete(let principal, let user, let authzid): return [Array(principal.utf8), Array(user.utf8), Array((authzid ?? "").utf8)]
        case .passwordVerified(let principal, let user): return [Array(principal.utf8), Array(user.utf8)]
        case .refused(let why, let reason): return [[why.rawValue], Array(reason.utf8)]
        case .pong: return []
        case .metricsText(let text): return [Array(text.utf8)]
        }
    }

    public func encoded() -> [UInt8] { AuthProxyFrame(type: type, fields: fields).encoded() }

    public init(_ frame: AuthProxyFrame) throws {
        var r = FieldReader(frame)
        switch frame.type {
        case 0x81: self = .gssContinue(exchange: try r.text("exchange"), token: try r.bytes("token"))
        case 0x82:
            let principal = try r.text("principal"), user = try r.text("user"), authzid = try r.text("authzid")
            self = .gssComplete(principal: principal, user: user, authzid: authzid.isEmpty ? nil : authzid)
        case 0x83: self = .passwordVerified(principal: try r.text("principal"), user: try r.text("user"))
        case 0x84:
            let code = try r.bytes("code")
            guard code.count == 1, let why = AuthProxyRefusal(rawValue: code[0]) else {
                throw AuthProxyWire.DecodeError.malformedField("refusal code \(code)")
            }
            self = .refused(why, reason: try r.text("reason"))
        case 0x85: self = .pong
        case 0x86: self = .metricsText(try r.text("metrics"))
        default: throw AuthProxyWire.DecodeError.unknownType(frame.type)
        }
        try r.finish()
    }
}

/// One frame: a type octet and its length-prefixed fields.
public struct AuthProxyFrame: Sendable, Equatable {
    public var type: UInt8
    public var fields: [[UInt8]]

    public init(type: UInt8, fields: [[UInt8]]) {
        self.type = type
        self.fields = fields
    }

    public func encoded() -> [UInt8] {
        var body: [UInt8] = [type]
        for f in fields {
            body += Self.bigEndian(UInt32(f.count))
            body += f
        }
        return Self.bigEndian(UInt32(body.count)) + body
    }

    static func bigEndian(_ v: UInt32) -> [UInt8] {
        [UInt8(v >> 24), UInt8((v >> 16) & 0xff), UInt8((v >> 8) & 0xff), UInt8(v & 0xff)]
    }

    static func readBigEndian(_ b: ArraySlice<UInt8>) -> Int {
        let i = b.startIndex
        return Int(b[i]) << 24 | Int(b[i + 1]) << 16 | Int(b[i + 2]) << 8 | Int(b[i + 3])
    }

    /// Splits a frame body (type + fields, without the length) into its fields.
    public init(body: ArraySlice<UInt8>) throws {
        guard let type = body.first else { throw AuthProxyWire.DecodeError.badLength(0) }
        var fields: [[UInt8]] = []
        var at = body.startIndex + 1
        while at < body.endIndex {
            guard body.endIndex - at >= 4 else { throw AuthProxyWire.DecodeError.malformedField("a field length cut short") }
            let n = Self.readBigEndian(body[at..<at + 4])
            at += 4
            guard n <= body.endIndex - at else {
                throw AuthProxyWire.DecodeError.malformedField("a field of \(n) octets in \(body.endIndex - at) remaining")
            }
            fields.append(Array(body[at..<at + n]))
            at += n
        }
        self.init(type: type, fields: fields)
    }
}

/// Cuts a byte stream into frames. Feed it what arrives; `next()` returns each whole frame once;
/// `finish()` at end of stream says whether a frame was cut off.
public struct AuthProxyFrameDecoder: Sendable {
    private var buffer: [UInt8] = []

    public init() {}

    public mutating func append<S: Sequence>(_ bytes: S) where S.Element == UInt8 { buffer.append(contentsOf: bytes) }

    /// The next whole frame, nil when more bytes are needed. Throws on a length of zero or over
    /// the maximum as soon as the length field is in, before waiting for (or buffering) the body.
    public mutating func next() throws -> AuthProxyFrame? {
        guard buffer.count >= AuthProxyWire.headerLength else { return nil }
        let n = AuthProxyFrame.readBigEndian(buffer[0..<4])
        guard n >= 1, n <= AuthProxyWire.maximumFrameLength else { throw AuthProxyWire.DecodeError.badLength(n) }
        guard buffer.count >= 4 + n else { return nil }
        let frame = try AuthProxyFrame(body: buffer[4..<4 + n])
        buffer.removeFirst(4 + n)
        return frame
    }

    /// How many more octets the frame being read needs (at least one when the header is not in yet).
    public var missing: Int {
        guard buffer.count >= 4 else { return 4 - buffer.count }
        return max(0, 4 + AuthProxyFrame.readBigEndian(buffer[0..<4]) - buffer.count)
    }

    /// End of stream: throws `.truncated` when part of a frame is still buffered.
    public func finish() throws {
        if !buffer.isEmpty { throw AuthProxyWire.DecodeError.truncated }
    }
}

/// Reads a frame's fields in order, by name for the error messages.
private struct FieldReader {
    let frame: AuthProxyFrame
    var index = 0

    init(_ frame: AuthProxyFrame) { self.frame = frame }

    mutating func bytes(_ name: String) throws -> [UInt8] {
        guard index < frame.fields.count else { throw AuthProxyWire.DecodeError.malformedField("missing \(name)") }
        defer { index += 1 }
        return frame.fields[index]
    }

    mutating func text(_ name: String) throws -> String {
        let b = try bytes(name)
        guard let s = String(validating: b, as: UTF8.self) else { throw AuthProxyWire.DecodeError.invalidUTF8(name) }
        return s
    }

    func finish() throws {
        if index < frame.fields.count { throw AuthProxyWire.DecodeError.trailingBytes(frame.fields.count - index) }
    }
}

/// What a backend plugin loaded by `postern authproxyd` answers (the Kerberos plugin). It
/// registers as a credential backend that also conforms to this; authproxyd hands each request to
/// its backends in order and the first non-nil reply wins. Called on the connection's own thread,
/// so a backend may block (a KDC round trip).
public protocol AuthProxyBackend: Sendable {
    /// The reply, or nil when this backend does not handle the request.
    func handle(_ request: AuthProxyRequest) -> AuthProxyReply?
}
