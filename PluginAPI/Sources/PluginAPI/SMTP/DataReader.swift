import Glibc

/// Reads the body of SMTP/LMTP `DATA` (RFC 5321 §4.5.2): undoes dot-stuffing, writes CRLF line
/// ends, and finds the end `CRLF . CRLF`. Pure state machine over bytes; a chunk may end anywhere.
///
/// Only a `.` line that follows a CRLF line end and is itself ended by CRLF ends the data: a bare
/// LF before or after the dot is data, so a `\n.\r\n` smuggled inside a message cannot end it early
/// (SMTP smuggling). Lines that end in bare LF are stored with CRLF.
public struct DotStuffedReader: Sendable {
    /// The most bytes of message kept; beyond, the message is read to its end and dropped.
    public let maxSize: Int
    /// Bytes of message so far (after unstuffing, with CRLF line ends).
    public private(set) var size = 0
    /// Whether the message went over `maxSize` (its remaining bytes were not returned).
    public private(set) var tooBig = false
    /// Whether the final dot has been seen.
    public private(set) var finished = false
    /// Whether any line ended in a bare LF (some servers refuse such mail).
    public private(set) var sawBareLineFeed = false

    private var line: [UInt8] = []
    /// Part of the current line was already returned (a very long line), so it is not a dot line.
    private var lineStarted = false
    private var previousEndedWithCRLF = true
    private static let flushThreshold = 1 << 16

    public init(maxSize: Int) {
        self.maxSize = maxSize
    }

    /// Feeds bytes; returns the message bytes they complete and how many input bytes were used.
    /// After the end, the unused rest (pipelined commands) belongs to the command parser.
    public mutating func feed<Bytes: Collection>(_ bytes: Bytes) -> (data: [UInt8], consumed: Int) where Bytes.Element == UInt8 {
        if let result = bytes.withContiguousStorageIfAvailable({ feed(buffer: $0) }) { return result }
        return Array(bytes).withUnsafeBufferPointer { feed(buffer: $0) }
    }

    /// The work of `feed`: a line at a time, found with `memchr` and copied whole (a message is
    /// read at memory speed, not a byte at a time through generic collection calls).
    public mutating func feed(buffer: UnsafeBufferPointer<UInt8>) -> (data: [UInt8], consumed: Int) {
        guard let base = buffer.baseAddress else { return ([], 0) }
        var out: [UInt8] = []
        out.reserveCapacity(buffer.count)
        var i = 0
        while i < buffer.count && !finished {
            // At most this much can join the line before it is long enough to be passed on.
            let end = min(buffer.count, i + (Self.flushThreshold - line.count))
            if let found = memchr(base + i, Int32(UInt8(ascii: "\n")), end - i) {
                let lf = base.distance(to: found.assumingMemoryBound(to: UInt8.self))
                line.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[i...lf]))
                i = lf + 1
                endLine(into: &out)
                continue
            }
            line.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[i..<end]))
            i = end
            if line.count >= Self.flushThreshold {
                // A long line cannot be the terminator: pass it on in pieces.
                if !lineStarted && line.first == UInt8(ascii: ".") { line.removeFirst() }
                // A trailing CR stays: with the next LF it is a line end, not data.
                let keepCR = line.last == UInt8(ascii: "\r")
                emit(line.dropLast(keepCR ? 1 : 0), into: &out)
                line.removeAll(keepingCapacity: true)
                if keepCR { line.append(UInt8(ascii: "\r")) }
                lineStarted = true
            }
        }
        return (out, i)
    }

    private mutating func endLine(into out: inout [UInt8]) {
        let crlf = line.count >= 2 && line[line.count - 2] == UInt8(ascii: "\r")
        var content = line.dropLast(crlf ? 2 : 1)
        if !lineStarted && content.count == 1 && content.first == UInt8(ascii: ".") && crlf && previousEndedWithCRLF {
            finished = true
            line.removeAll()
            return
        }
        if !crlf { sawBareLineFeed = true }
        if !lineStarted && content.first == UInt8(ascii: ".") { content = content.dropFirst() }
        emit(content, into: &out)
        emit([UInt8(ascii: "\r"), UInt8(ascii: "\n")], into: &out)
        previousEndedWithCRLF = crlf
        line.removeAll(keepingCapacity: true)
        lineStarted = false
    }

    private mutating func emit<C: Collection>(_ bytes: C, into out: inout [UInt8]) where C.Element == UInt8 {
        size += bytes.count
        if size > maxSize { tooBig = true }
        if !tooBig { out.append(contentsOf: bytes) }
    }
}
