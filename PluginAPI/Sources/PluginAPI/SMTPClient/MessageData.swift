// The message as it goes after DATA, and what the client must know about it before MAIL. Pure.

/// Writes a message as the body of `DATA` (RFC 5321 §4.5.2): a `.` at the start of a line is
/// doubled, every line ends in CRLF, and `finish` adds the final `.` line. Fed in chunks of any
/// size; the output is the same however the input is cut.
///
/// A bare LF and a bare CR both become CRLF: RFC 5321 §2.3.8 forbids sending either alone, and
/// servers differ in what they make of them (a bare LF before `.` is the SMTP smuggling trick).
public struct DotStuffingWriter: Sendable {
    private var atLineStart = true
    private var heldCR = false
    /// Bytes written so far, the final `.` line included once finished.
    public private(set) var written = 0

    public init() {}

    public mutating func write<Bytes: Collection>(_ bytes: Bytes) -> [UInt8] where Bytes.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + bytes.count / 64 + 4)
        for byte in bytes {
            if heldCR {
                heldCR = false
                out.append(13); out.append(10)
                atLineStart = true
                if byte == 10 { continue }
            }
            switch byte {
            case 13:
                heldCR = true
            case 10:
                out.append(13); out.append(10)
                atLineStart = true
            default:
                if atLineStart && byte == UInt8(ascii: ".") { out.append(byte) }
                out.append(byte)
                atLineStart = false
            }
        }
        written += out.count
        return out
    }

    /// Ends the message: completes a last line without line end, then writes `.` CRLF.
    public mutating func finish() -> [UInt8] {
        var out: [UInt8] = []
        if heldCR || !atLineStart { out += [13, 10] }
        heldCR = false
        atLineStart = true
        out += [UInt8(ascii: "."), 13, 10]
        written += out.count
        return out
    }

    /// The whole of `bytes` as DATA content, final dot included.
    public static func stuff<Bytes: Collection>(_ bytes: Bytes) -> [UInt8] where Bytes.Element == UInt8 {
        var writer = DotStuffingWriter()
        return writer.write(bytes) + writer.finish()
    }
}

/// What the client checks in a message before it starts a transaction: whether it has 8-bit
/// octets, and whether any of them are in the header (which no conversion can make 7-bit).
/// Fed in chunks of any size.
public struct MessageContentScan: Sendable, Equatable {
    public private(set) var size = 0
    public private(set) var eightBitHeader = false
    public private(set) var eightBitBody = false
    /// Whether the empty line that ends the header was seen.
    public private(set) var headerEnded = false
    /// Octets of the current header line so far (0: at the start of a line).
    private var lineLength = 0
    private var lineIsOnlyCR = false

    public init() {}

    public var hasEightBit: Bool { eightBitHeader || eightBitBody }

    public mutating func feed<Bytes: Collection>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        size += bytes.count
        if headerEnded {
            if !eightBitBody && bytes.contains(where: { $0 >= 0x80 }) { eightBitBody = true }
            return
        }
        var index = bytes.startIndex
        while index != bytes.endIndex {
            let byte = bytes[index]
            bytes.formIndex(after: &index)
            if byte == 10 {
                // An empty line (LF or CR LF alone) ends the header.
                if lineLength == 0 || (lineLength == 1 && lineIsOnlyCR) {
                    headerEnded = true
                    if !eightBitBody && bytes[index...].contains(where: { $0 >= 0x80 }) { eightBitBody = true }
                    return
                }
                lineLength = 0
                continue
            }
            if byte >= 0x80 { eightBitHeader = true }
            lineIsOnlyCR = lineLength == 0 && byte == 13
            lineLength += 1
        }
    }

    public static func scan<Bytes: Collection>(_ bytes: Bytes) -> MessageContentScan where Bytes.Element == UInt8 {
        var scan = MessageContentScan()
        scan.feed(bytes)
        return scan
    }
}
