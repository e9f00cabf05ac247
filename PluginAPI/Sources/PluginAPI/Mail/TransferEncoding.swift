private let base64Alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
private let base64Values: [UInt8] = {
    var table = [UInt8](repeating: 0xFF, count: 256)
    for (i, c) in base64Alphabet.enumerated() { table[Int(c)] = UInt8(i) }
    return table
}()
private let hexDigits: [UInt8] = Array("0123456789ABCDEF".utf8)

@inline(__always) private func hexValue(_ b: UInt8) -> UInt8? {
    switch b {
    case 48...57: return b - 48
    case 65...70: return b - 55
    case 97...102: return b - 87   // lower case is not canonical but common
    default: return nil
    }
}

/// Streaming base64 decoder (RFC 2045 §6.8) that may be fed any chunking.
///
/// Tolerant: characters outside the alphabet are skipped (whitespace silently, anything else
/// also sets `sawInvalidInput`); `=` ends the current quantum, and decoding goes on after it
/// (concatenated encodings decode whole); a final incomplete quantum of 2 or 3 characters gives
/// its whole bytes, of 1 character is dropped (and flagged).
public struct Base64Decoder: Sendable {
    private var bits: UInt32 = 0
    private var count = 0
    /// Whether anything but the alphabet, padding and whitespace was met, or a quantum was cut.
    public private(set) var sawInvalidInput = false

    /// A decoder at the start of input.
    public init() {}

    /// Decodes a chunk; bytes of an unfinished quantum wait for the next chunk.
    public mutating func decode<Bytes: Collection>(_ bytes: Bytes) -> [UInt8] where Bytes.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 3 / 4 + 3)
        for byte in bytes {
            let v = base64Values[Int(byte)]
            if v != 0xFF {
                bits = (bits << 6) | UInt32(v)
                count += 1
                if count == 4 {
                    out.append(UInt8(truncatingIfNeeded: bits >> 16))
                    out.append(UInt8(truncatingIfNeeded: bits >> 8))
                    out.append(UInt8(truncatingIfNeeded: bits))
                    bits = 0
                    count = 0
                }
            } else if byte == 61 {
                flushPartial(&out)
            } else if !(byte == 32 || byte == 9 || byte == 13 || byte == 10) {
                sawInvalidInput = true
            }
        }
        return out
    }

    /// Ends the input and returns what an unfinished quantum holds.
    public mutating func finish() -> [UInt8] {
        var out: [UInt8] = []
        flushPartial(&out)
        return out
    }

    private mutating func flushPartial(_ out: inout [UInt8]) {
        switch count {
        case 2:
            out.append(UInt8(truncatingIfNeeded: bits >> 4))
        case 3:
            out.append(UInt8(truncatingIfNeeded: bits >> 10))
            out.append(UInt8(truncatingIfNeeded: bits >> 2))
        case 1:
            sawInvalidInput = true
        default:
            break
        }
        bits = 0
        count = 0
    }

    /// Decodes a whole input at once.
    public static func decode<Bytes: Collection>(_ bytes: Bytes) -> [UInt8] where Bytes.Element == UInt8 {
        var d = Base64Decoder()
        return d.decode(bytes) + d.finish()
    }

    /// Decodes base64 as protocols carry it on one line (SASL responses in IMAP, POP3, SMTP):
    /// only alphabet characters, length a multiple of 4, padding only at the end. Nil for anything
    /// else, so a protocol can answer "invalid base64" instead of guessing.
    public static func decodeStrict<Bytes: Collection>(_ bytes: Bytes) -> [UInt8]? where Bytes.Element == UInt8 {
        let input = Array(bytes)
        guard input.count % 4 == 0 else { return nil }
        let padding = input.reversed().prefix { $0 == UInt8(ascii: "=") }.count
        guard padding <= 2 else { return nil }
        for byte in input.dropLast(padding) {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "+"), UInt8(ascii: "/"):
                continue
            default:
                return nil
            }
        }
        var d = Base64Decoder()
        let out = d.decode(input) + d.finish()
        return d.sawInvalidInput ? nil : out
    }
}

/// Streaming base64 encoder that wraps lines (CRLF) at `lineLength` characters.
public struct Base64Encoder: Sendable {
    /// Characters per line; 0 means one unbroken line (as in RFC 2047 encoded words).
    public let lineLength: Int
    private var held: [UInt8] = []
    private var column = 0

    /// An encoder wrapping at `lineLength` (76 is RFC 2045's maximum).
    public init(lineLength: Int = 76) {
        // Lines hold whole quanta.
        self.lineLength = lineLength <= 0 ? 0 : max(4, lineLength - lineLength % 4)
    }

    /// Encodes a chunk; up to two bytes wait for the next chunk to complete a quantum.
    public mutating func encode<Bytes: Collection>(_ bytes: Bytes) -> [UInt8] where Bytes.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4 + (bytes.count / 40) * 2 + 8)
        for byte in bytes {
            held.append(byte)
            if held.count == 3 {
                emit(held[0], held[1], held[2], 3, &out)
                held.removeAll(keepingCapacity: true)
            }
        }
        return out
    }

    /// Ends the input: the last quantum, padded. No line end follows the last line.
    public mutating func finish() -> [UInt8] {
        var out: [UInt8] = []
        switch held.count {
        case 1: emit(held[0], 0, 0, 1, &out)
        case 2: emit(held[0], held[1], 0, 2, &out)
        default: break
        }
        held.removeAll()
        return out
    }

    private mutating func emit(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ n: Int, _ out: inout [UInt8]) {
        if lineLength > 0 && column >= lineLength {
            out.append(13); out.append(10)
            column = 0
        }
        let v = UInt32(a) << 16 | UInt32(b) << 8 | UInt32(c)
        out.append(base64Alphabet[Int(v >> 18 & 63)])
        out.append(base64Alphabet[Int(v >> 12 & 63)])
        out.append(n > 1 ? base64Alphabet[Int(v >> 6 & 63)] : 61)
        out.append(n > 2 ? base64Alphabet[Int(v & 63)] : 61)
        column += 4
    }

    /// Encodes a whole input at once.
    public static func encode<Bytes: Collection>(_ bytes: Bytes, lineLength: Int = 76) -> [UInt8] where Bytes.Element == UInt8 {
        var e = Base64Encoder(lineLength: lineLength)
        return e.encode(bytes) + e.finish()
    }
}

/// Streaming quoted-printable decoder (RFC 2045 §6.7) that may be fed any chunking, including
/// a chunk boundary inside `=XX` or a soft line break.
///
/// Tolerant: lower-case hex is accepted; an `=` not followed by two hex digits or a line end is
/// kept literally (and sets `sawInvalidInput`); whitespace at the end of a line (transport
/// padding) is dropped; hard line ends are passed through as they came (CRLF or LF).
public struct QuotedPrintableDecoder: Sendable {
    private enum State: Sendable { case text, carriageReturn, equals, equalsHex(UInt8), equalsSpace, equalsCR }
    private var state = State.text
    private var pendingSpace: [UInt8] = []
    /// Whether a malformed escape was met.
    public private(set) var sawInvalidInput = false

    /// A decoder at the start of input.
    public init() {}

    /// Decodes a chunk.
    public mutating func decode<Bytes: Collection>(_ bytes: Bytes) -> [UInt8] where Bytes.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        for byte in bytes { step(byte, &out) }
        return out
    }

    private mutating func step(_ byte: UInt8, _ out: inout [UInt8]) {
        switch state {
        case .text:
            switch byte {
            case 32, 9:
                pendingSpace.append(byte)
                // Bound what is held back: a huge run of blanks is surely not padding.
                if pendingSpace.count > 4096 { out += pendingSpace; pendingSpace.removeAll() }
            case 13:
                state = .carriageReturn
            case 10:
                pendingSpace.removeAll()
                out.append(10)
            case 61:
                out += pendingSpace; pendingSpace.removeAll()
                state = .equals
            default:
                if !pendingSpace.isEmpty { out += pendingSpace; pendingSpace.removeAll() }
                out.append(byte)
            }
        case .carriageReturn:
            if byte == 10 {
                pendingSpace.removeAll()
                out.append(13); out.append(10)
                state = .text
            } else {
                out += pendingSpace; pendingSpace.removeAll()
                out.append(13)
                state = .text
                step(byte, &out)
            }
        case .equals:
            if let h = hexValue(byte) {
                state = .equalsHex(h)
            } else if byte == 32 || byte == 9 {
                pendingSpace.append(byte)
                state = .equalsSpace
            } else if byte == 13 {
                state = .equalsCR
            } else if byte == 10 {
                state = .text
            } else {
                sawInvalidInput = true
                out.append(61)
                state = .text
                step(byte, &out)
            }
        case .equalsHex(let h):
            if let l = hexValue(byte) {
                out.append(h << 4 | l)
                state = .text
            } else {
                sawInvalidInput = true
                out.append(61)
                out.append(hexDigits[Int(h)])
                state = .text
                step(byte, &out)
            }
        case .equalsSpace:
            if byte == 32 || byte == 9 {
                if pendingSpace.count < 4096 { pendingSpace.append(byte) }
            } else if byte == 13 {
                state = .equalsCR
            } else if byte == 10 {
                pendingSpace.removeAll()
                state = .text
            } else {
                sawInvalidInput = true
                out.append(61)
                out += pendingSpace; pendingSpace.removeAll()
                state = .text
                step(byte, &out)
            }
        case .equalsCR:
            pendingSpace.removeAll()
            if byte == 10 {
                state = .text
            } else {
                sawInvalidInput = true
                out.append(61); out.append(13)
                state = .text
                step(byte, &out)
            }
        }
    }

    /// Ends the input: trailing blanks are dropped, a dangling `=` is kept literally.
    public mutating func finish() -> [UInt8] {
        var out: [UInt8] = []
        switch state {
        case .text: break
        case .carriageReturn: out += pendingSpace; out.append(13)
        case .equals: sawInvalidInput = true; out.append(61)
        case .equalsHex(let h): sawInvalidInput = true; out.append(61); out.append(hexDigits[Int(h)])
        case .equalsSpace, .equalsCR: break
        }
        pendingSpace.removeAll()
        state = .text
        return out
    }

    /// Decodes a whole input at once.
    public static func decode<Bytes: Collection>(_ bytes: Bytes) -> [UInt8] where Bytes.Element == UInt8 {
        var d = QuotedPrintableDecoder()
        return d.decode(bytes) + d.finish()
    }
}

/// Streaming quoted-printable encoder; lines (soft breaks included) stay within 76 characters.
public struct QuotedPrintableEncoder: Sendable {
    /// How line ends in the input are treated.
    public enum Mode: Sendable, Equatable {
        /// CRLF (or a bare LF) in the input is a hard line break, written as CRLF (text bodies).
        case text
        /// Every byte is data: CR and LF are escaped, so any bytes round-trip exactly.
        case binary
    }

    /// The mode in force.
    public let mode: Mode
    private var column = 0
    private var heldSpace: UInt8?
    private var heldCR = false

    /// An encoder in `mode`.
    public init(mode: Mode = .text) {
        self.mode = mode
    }

    /// Encodes a chunk; a blank or CR may wait for the next byte to know whether a line ends.
    public mutating func encode<Bytes: Collection>(_ bytes: Bytes) -> [UInt8] where Bytes.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + bytes.count / 8 + 8)
        for byte in bytes { step(byte, &out) }
        return out
    }

    private mutating func step(_ byte: UInt8, _ out: inout [UInt8]) {
        if mode == .text {
            if heldCR {
                heldCR = false
                if byte == 10 { hardBreak(&out); return }
                releaseSpace(&out, encoded: false)
                put(escape: 13, &out)
            }
            if byte == 13 { heldCR = true; return }
            if byte == 10 { hardBreak(&out); return }
        }
        if byte == 32 || byte == 9 {
            releaseSpace(&out, encoded: false)
            heldSpace = byte
            return
        }
        releaseSpace(&out, encoded: false)
        if byte >= 33 && byte <= 126 && byte != 61 {
            put(literal: byte, &out)
        } else {
            put(escape: byte, &out)
        }
    }

    private mutating func hardBreak(_ out: inout [UInt8]) {
        // Blanks before a line end would be taken as padding and dropped: escape them.
        releaseSpace(&out, encoded: true)
        out.append(13); out.append(10)
        column = 0
    }

    private mutating func releaseSpace(_ out: inout [UInt8], encoded: Bool) {
        guard let s = heldSpace else { return }
        heldSpace = nil
        if encoded { put(escape: s, &out) } else { put(literal: s, &out) }
    }

    private mutating func put(literal byte: UInt8, _ out: inout [UInt8]) {
        softBreakIfNeeded(1, &out)
        out.append(byte)
        column += 1
    }

    private mutating func put(escape byte: UInt8, _ out: inout [UInt8]) {
        softBreakIfNeeded(3, &out)
        out.append(61)
        out.append(hexDigits[Int(byte >> 4)])
        out.append(hexDigits[Int(byte & 15)])
        column += 3
    }

    private mutating func softBreakIfNeeded(_ width: Int, _ out: inout [UInt8]) {
        // 75 characters of text plus the "=" of the soft break make 76.
        if column + width > 75 {
            out.append(61); out.append(13); out.append(10)
            column = 0
        }
    }

    /// Ends the input: a held blank is escaped (it ends the data), a held CR is escaped.
    public mutating func finish() -> [UInt8] {
        var out: [UInt8] = []
        if heldCR {
            heldCR = false
            releaseSpace(&out, encoded: false)
            put(escape: 13, &out)
        }
        releaseSpace(&out, encoded: true)
        return out
    }

    /// Encodes a whole input at once.
    public static func encode<Bytes: Collection>(_ bytes: Bytes, mode: Mode = .text) -> [UInt8] where Bytes.Element == UInt8 {
        var e = QuotedPrintableEncoder(mode: mode)
        return e.encode(bytes) + e.finish()
    }
}
