// clamd's INSTREAM command, byte for byte (clamd(8), "INSTREAM"): what is sent and what the
// answer means. Pure: no sockets here (ClamdClient.swift moves the bytes).
//
// The command is sent with the `z` prefix, so clamd ends its reply with a NUL rather than a
// newline (a virus name may hold anything but NUL). The data follows as chunks, each a 4-byte
// big-endian length and that many octets, and a zero length ends it.

enum ClamdInstream {
    /// `zINSTREAM\0`.
    static let command: [UInt8] = Array("zINSTREAM".utf8) + [0]
    /// The zero-length chunk that ends the stream.
    static let terminator: [UInt8] = [0, 0, 0, 0]
    /// clamd reads a chunk into a buffer of StreamMaxLength at most; 64 KiB keeps every write small.
    static let chunkSize = 64 << 10

    /// One chunk: its length (4 octets, network order) and its bytes.
    static func frame(_ chunk: ArraySlice<UInt8>) -> [UInt8] {
        let n = UInt32(chunk.count)
        var out: [UInt8] = [UInt8(n >> 24), UInt8((n >> 16) & 0xff), UInt8((n >> 8) & 0xff), UInt8(n & 0xff)]
        out.reserveCapacity(4 + chunk.count)
        out += chunk
        return out
    }

    /// The whole request for `data`: command, chunks, terminator (tests; the client streams them).
    static func request(_ data: [UInt8], chunkSize: Int = chunkSize) -> [UInt8] {
        var out = command
        var start = 0
        while start < data.count {
            let end = min(start + chunkSize, data.count)
            out += frame(data[start..<end])
            start = end
        }
        return out + terminator
    }
}

/// What clamd answered to one INSTREAM.
enum ClamdReply: Sendable, Equatable {
    /// `stream: OK`
    case clean
    /// `stream: NAME FOUND` (with ExtendedDetectionInfo, `NAME(MD5:SIZE) FOUND`: the name alone is kept).
    case infected(virus: String)
    /// `INSTREAM size limit exceeded. ERROR`: the data went over clamd's StreamMaxLength.
    case sizeLimitExceeded
    /// `... ERROR`, or another complaint clamd makes instead of scanning (`UNKNOWN COMMAND`,
    /// `COMMAND READ TIMED OUT`): the text without its `ERROR`.
    case failed(String)
    /// Anything else: not clamd, or a clamd this client does not understand.
    case malformed(String)

    /// Parses one reply, without or with its final NUL or newline. A reply may carry a session
    /// id (`1: stream: OK`, under IDSESSION), which is dropped.
    static func parse(_ bytes: [UInt8]) -> ClamdReply {
        var body = bytes[...]
        while let last = body.last, last == 0 || last == 10 || last == 13 { body = body.dropLast() }
        let text = String(decoding: body, as: UTF8.self)
        guard !text.isEmpty else { return .malformed("an empty reply") }
        guard !body.contains(0) else { return .malformed("a NUL inside the reply") }
        var rest = Substring(text)
        // IDSESSION's `N: ` prefix: digits, a colon, a space.
        if let colon = rest.firstIndex(of: ":"), colon > rest.startIndex, rest[..<colon].allSatisfy(\.isASCIIDigit),
           rest[rest.index(after: colon)...].hasPrefix(" ") {
            rest = rest[rest.index(colon, offsetBy: 2)...]
        }
        if rest.hasSuffix(" ERROR") || rest == "ERROR" {
            let message = rest.dropLast(5).trimmingSpaces
            if message.lowercased().contains("size limit exceeded") { return .sizeLimitExceeded }
            return .failed(message.isEmpty ? "ERROR" : String(message))
        }
        if rest == "UNKNOWN COMMAND" || rest == "COMMAND READ TIMED OUT" { return .failed(String(rest)) }
        guard rest.hasPrefix("stream: ") else { return .malformed(String(text.prefix(200))) }
        let result = rest.dropFirst("stream: ".count)
        if result == "OK" { return .clean }
        guard result.hasSuffix(" FOUND") else { return .malformed(String(text.prefix(200))) }
        var name = result.dropLast(" FOUND".count)
        // ExtendedDetectionInfo: `Name(44d88612fea8a8f36de82e1278abb02f:68)`.
        if name.hasSuffix(")"), let open = name.lastIndex(of: "("), open > name.startIndex,
           name[name.index(after: open)..<name.index(before: name.endIndex)].contains(":") {
            name = name[..<open]
        }
        guard !name.isEmpty, !name.contains(" "), name.allSatisfy({ $0.isASCII && !$0.isASCIIControl }) else {
            return .malformed(String(text.prefix(200)))
        }
        return .infected(virus: String(name))
    }
}

/// Collects a reply as it arrives in pieces: complete at the first NUL. Refuses a reply longer
/// than `maxLength` (a clamd reply is one short line; anything longer is not clamd).
struct ClamdReplyReader {
    static let maxLength = 4096
    private(set) var buffer: [UInt8] = []

    enum Outcome: Equatable {
        case needMore
        case reply(ClamdReply)
    }

    mutating func feed(_ bytes: [UInt8]) -> Outcome {
        if let nul = bytes.firstIndex(of: 0) {
            buffer += bytes[..<nul]
            return .reply(ClamdReply.parse(buffer))
        }
        buffer += bytes
        if buffer.count > Self.maxLength { return .reply(.malformed("a reply of over \(Self.maxLength) octets without its NUL")) }
        return .needMore
    }

    /// The connection closed: what arrived so far is the reply, if anything did (clamd closes
    /// right after some errors).
    func finish() -> ClamdReply? { buffer.isEmpty ? nil : ClamdReply.parse(buffer) }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
    var isASCIIControl: Bool { asciiValue.map { $0 < 32 || $0 == 127 } ?? false }
}

extension Substring {
    var trimmingSpaces: Substring {
        var s = self
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return s
    }
}
