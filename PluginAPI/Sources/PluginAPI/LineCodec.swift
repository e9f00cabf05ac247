/// Splits a byte stream into protocol lines (SMTP, POP3, IMAP command lines, LMTP), as a pure state
/// machine with no I/O so it can be tested byte by byte. A line longer than `maxLength` is dropped
/// whole and reported once its end arrives, so the protocol can answer it in turn and carry on.
public struct LineSplitter: Sendable {
    /// What to do with a line that ends in LF without CR.
    public enum BareLineFeed: Sendable {
        /// Treat it as a line end (lenient clients).
        case accept
        /// Report it as `.bareLineFeed` (RFC 5321 §2.3.8 strictness, SMTP smuggling defence).
        case reject
    }

    public enum Event: Sendable, Equatable {
        /// A complete line without its terminator.
        case line([UInt8])
        /// A line over the limit ended; its content was discarded.
        case tooLong
        /// A line ended with a bare LF under `.reject`; its content was discarded.
        case bareLineFeed
    }

    /// The longest line accepted, terminator excluded.
    public let maxLength: Int
    public let bareLineFeed: BareLineFeed
    private var pending: [UInt8] = []
    private var overflowed = false

    public init(maxLength: Int, bareLineFeed: BareLineFeed = .accept) {
        precondition(maxLength > 0)
        self.maxLength = maxLength
        self.bareLineFeed = bareLineFeed
    }

    /// Bytes received but not yet part of a complete line.
    public var buffered: Int { pending.count }

    public mutating func feed<Bytes: Collection>(_ bytes: Bytes) -> [Event] where Bytes.Element == UInt8 {
        var events: [Event] = []
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                let hadCR = pending.last == UInt8(ascii: "\r")
                if hadCR { pending.removeLast() }
                if overflowed {
                    events.append(.tooLong)
                } else if !hadCR && bareLineFeed == .reject {
                    events.append(.bareLineFeed)
                } else {
                    events.append(.line(pending))
                }
                pending.removeAll(keepingCapacity: true)
                overflowed = false
                continue
            }
            if overflowed { continue }
            pending.append(byte)
            // One byte of slack for the CR of the terminator.
            if pending.count > maxLength + 1 || (pending.count == maxLength + 1 && byte != UInt8(ascii: "\r")) {
                overflowed = true
                pending.removeAll(keepingCapacity: true)
            }
        }
        return events
    }
}

/// `LineSplitter` as a NIO decoder: emits `LineSplitter.Event`s.
public final class LineFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = LineSplitter.Event
    private var splitter: LineSplitter

    public init(maxLength: Int, bareLineFeed: LineSplitter.BareLineFeed = .accept) {
        splitter = LineSplitter(maxLength: maxLength, bareLineFeed: bareLineFeed)
    }

    public func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let bytes = buffer.readBytes(length: buffer.readableBytes), !bytes.isEmpty else { return .needMoreData }
        for event in splitter.feed(bytes) {
            context.fireChannelRead(wrapInboundOut(event))
        }
        return .needMoreData
    }

    public func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }
}
