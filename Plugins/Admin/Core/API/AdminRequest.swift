import Foundation
import PluginAPI
import PluginHTTP

/// The request context: Hummingbird's core storage, and the channel for the client's address.
struct AdminRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    var clientAddress: String { channel.remoteAddress?.hostText ?? "local" }

    var clientIsLoopback: Bool { channel.remoteAddress?.isLoopbackPeer ?? false }
}

/// Why a request was refused: an HTTP status and a JSON body `{"error": CODE, "message": TEXT}`.
/// `notFound` is also the answer for everything outside a domain administrator's domains, with
/// the same words as for what does not exist.
enum APIError: Error, Equatable {
    case notFound(kind: String, id: String)
    case forbidden(String)
    case badRequest(String)
    case conflict(String)
    case unauthorized(String)
    case tooManyRequests(String)
    case insecure
    case unavailable(String)
    /// A node the console passed the call on to is down or did not answer.
    case nodeDown(String)

    var status: HTTPResponse.Status {
        switch self {
        case .notFound: return .notFound
        case .forbidden, .insecure: return .forbidden
        case .badRequest: return .badRequest
        case .conflict: return .conflict
        case .unauthorized: return .unauthorized
        case .tooManyRequests: return .tooManyRequests
        case .unavailable, .nodeDown: return .serviceUnavailable
        }
    }

    var code: String {
        switch self {
        case .notFound: return "not-found"
        case .forbidden: return "forbidden"
        case .badRequest: return "bad-request"
        case .conflict: return "conflict"
        case .unauthorized: return "unauthorized"
        case .tooManyRequests: return "too-many-requests"
        case .insecure: return "tls-required"
        case .unavailable: return "unavailable"
        case .nodeDown: return "node-down"
        }
    }

    var message: String {
        switch self {
        case .notFound(let kind, let id): return "no \(kind) '\(id)'"
        case .forbidden(let m), .badRequest(let m), .conflict(let m), .unauthorized(let m), .tooManyRequests(let m), .unavailable(let m), .nodeDown(let m):
            return m
        case .insecure: return "this API is served over HTTPS only (plain HTTP is accepted from loopback alone): use the listener's https address"
        }
    }

    /// The store's refusals, as the API says them.
    static func from(_ error: AccountError) -> APIError {
        switch error {
        case .noSuchDomain(let d): return .notFound(kind: "domain", id: d)
        case .noSuchAccount(let a): return .notFound(kind: "user", id: a)
        case .invalidName, .invalidPassword: return .badRequest(error.description)
        case .domainExists, .accountExists, .aliasConflict, .domainNotEmpty, .appPasswordExists: return .conflict(error.description)
        case .noSuchAppPassword(let account, let name): return .notFound(kind: "app password", id: "\(account)/\(name)")
        @unknown default: return .badRequest(error.description)
        }
    }

    static func from(_ error: StorageError) -> APIError {
        switch error {
        case .noSuchUser(let u): return .notFound(kind: "user", id: u)
        case .noSuchMailbox(let m): return .notFound(kind: "mailbox", id: m)
        case .mailboxExists, .hasChildren, .overQuota: return .conflict(error.description)
        case .permissionDenied: return .forbidden(error.description)
        case .temporary: return .unavailable(error.description)
        default: return .badRequest(error.description)
        }
    }
}

/// A JSON value as a request body holds it, so that `null` and absent are told apart (a quota of
/// `null` removes the limit; an absent one leaves it) and a number is never taken for a boolean.
enum JSONValue: Codable, Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let b = try? container.decode(Bool.self) { self = .bool(b) }
        else if let n = try? container.decode(Double.self) { self = .number(n) }
        else if let s = try? container.decode(String.self) { self = .string(s) }
        else if let a = try? container.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let b): try container.encode(b)
        case .number(let n): try container.encode(n)
        case .string(let s): try container.encode(s)
        case .array(let a): try container.encode(a)
        case .object(let o): try container.encode(o)
        }
    }
}

/// A request body that must be a JSON object, with typed, checked reads of its fields.
struct JSONBody {
    let fields: [String: JSONValue]

    init(_ bytes: ByteBuffer) throws {
        guard bytes.readableBytes > 0 else { fields = [:]; return }
        guard case .object(let fields)? = try? JSONDecoder().decode(JSONValue.self, from: Data(buffer: bytes)) else {
            throw APIError.badRequest("the body must be a JSON object")
        }
        self.fields = fields
    }

    init(fields: [String: JSONValue]) { self.fields = fields }

    func has(_ key: String) -> Bool { fields[key] != nil }
    func isNull(_ key: String) -> Bool { fields[key] == .null }

    func string(_ key: String, required: Bool = false) throws -> String? {
        switch fields[key] {
        case nil, .null?:
            if required { throw APIError.badRequest("'\(key)' is required") }
            return nil
        case .string(let s)?: return s
        default: throw APIError.badRequest("'\(key)' must be a string")
        }
    }

    func int(_ key: String) throws -> Int? {
        switch fields[key] {
        case nil, .null?: return nil
        case .number(let n)? where n >= 0 && n < 9e15 && n == n.rounded(): return Int(n)
        default: throw APIError.badRequest("'\(key)' must be a whole number, 0 or more")
        }
    }

    func bool(_ key: String) throws -> Bool? {
        switch fields[key] {
        case nil, .null?: return nil
        case .bool(let b)?: return b
        default: throw APIError.badRequest("'\(key)' must be true or false")
        }
    }

    func strings(_ key: String) throws -> [String]? {
        switch fields[key] {
        case nil, .null?: return nil
        case .array(let list)?:
            return try list.map {
                guard case .string(let s) = $0 else { throw APIError.badRequest("'\(key)' must be a list of strings") }
                return s
            }
        default: throw APIError.badRequest("'\(key)' must be a list of strings")
        }
    }
}

/// Per-address token buckets: `rate` requests a second on average, `burst` at once.
final class RequestRateLimiter: Sendable {
    private struct Bucket { var tokens: Double; var last: Double }
    private let rate: Double
    private let burst: Double
    private let buckets = NIOLockedValueBox<[String: Bucket]>([:])

    init(rate: Int, burst: Int) {
        self.rate = Double(rate)
        self.burst = Double(burst)
    }

    func allows(_ address: String, now: Double = Date().timeIntervalSince1970) -> Bool {
        buckets.withLockedValue { buckets in
            if buckets.count > 10_000 { buckets = buckets.filter { now - $0.value.last < 60 } }
            var bucket = buckets[address] ?? Bucket(tokens: burst, last: now)
            bucket.tokens = min(burst, bucket.tokens + (now - bucket.last) * rate)
            bucket.last = now
            let allowed = bucket.tokens >= 1
            if allowed { bucket.tokens -= 1 }
            buckets[address] = bucket
            return allowed
        }
    }
}
