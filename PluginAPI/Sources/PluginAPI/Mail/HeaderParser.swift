/// One field of an RFC 5322 header block.
public struct MailHeaderField: Sendable, Equatable {
    /// The field name as written (no case folding); bytes outside ASCII are kept as Latin-1.
    public var name: String
    /// Everything after the colon up to the field's final line end, folds included.
    public var rawValue: [UInt8]
    /// The value unfolded (each CRLF or LF that precedes whitespace removed, RFC 5322 §2.2.3),
    /// leading and trailing whitespace dropped. 8-bit bytes and NULs are kept as they came.
    public var value: [UInt8]
    /// Offset of the field's first byte from the start of the header block.
    public var offset: Int

    /// A field with the given parts; `value` is derived from `rawValue`.
    public init(name: String, rawValue: [UInt8], offset: Int = 0) {
        self.name = name
        self.rawValue = rawValue
        self.value = MailHeaderField.unfold(rawValue)
        self.offset = offset
    }

    /// The unfolded value as text: UTF-8 when valid (RFC 6532), else Latin-1.
    public var text: String { MailCharset.fallback(value) }

    /// Whether the field is called `other`, ignoring ASCII case.
    public func hasName(_ other: String) -> Bool { name.caseInsensitiveEquals(other) }

    /// Removes line ends that precede whitespace and trims the ends.
    public static func unfold(_ raw: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var i = 0
        while i < raw.count {
            let b = raw[i]
            if b == 13 || b == 10 {
                // Drop CR/LF pairs of a fold; a stray CR stays out too (it cannot be sent on).
                i += 1
                continue
            }
            out.append(b)
            i += 1
        }
        var start = 0, end = out.count
        while start < end, out[start] == 32 || out[start] == 9 { start += 1 }
        while end > start, out[end - 1] == 32 || out[end - 1] == 9 { end -= 1 }
        return Array(out[start..<end])
    }
}

/// Limits that keep a header parser's memory bounded whatever it is fed.
public struct MailHeaderLimits: Sendable, Equatable {
    /// The longest physical line accepted, terminator excluded (RFC 5322 says 998; mail in the
    /// wild is longer, hence the default).
    public var maxLineLength: Int
    /// The most bytes one field may have, folds included.
    public var maxFieldSize: Int
    /// The most fields one header block may have.
    public var maxFieldCount: Int

    /// Limits with generous defaults for received mail.
    public init(maxLineLength: Int = 16_384, maxFieldSize: Int = 65_536, maxFieldCount: Int = 1_000) {
        self.maxLineLength = max(1, maxLineLength)
        self.maxFieldSize = max(1, maxFieldSize)
        self.maxFieldCount = max(1, maxFieldCount)
    }
}

/// A limit a header block went over. The parser reports it once and goes on (what is over the
/// limit is dropped), so a caller may keep or refuse the message.
public enum MailHeaderLimitError: Error, Sendable, Equatable {
    /// A physical line was longer than `maxLineLength`; that line was dropped.
    case lineTooLong(limit: Int)
    /// A field (with its folds) was bigger than `maxFieldSize`; the field was dropped.
    case fieldTooLarge(limit: Int)
    /// The block had more than `maxFieldCount` fields; the extra ones were dropped.
    case tooManyFields(limit: Int)
}

/// What a header parser reports while it is fed.
public enum MailHeaderEvent: Sendable, Equatable {
    /// A complete field.
    case field(MailHeaderField)
    /// A line that is not a field (no colon, empty name, or a continuation with nothing to
    /// continue), with the offset of its first byte. Reported and skipped, never fatal.
    case malformed(line: [UInt8], offset: Int)
    /// A limit was exceeded (see `MailHeaderLimitError`).
    case limitExceeded(MailHeaderLimitError)
    /// The block ended: after the empty line, or at the end of input (`finish`).
    case end
}

/// Streaming RFC 5322 header-block parser: a state machine fed arbitrary chunks that reports
/// fields as soon as they are complete (a field is complete when the next line does not start
/// with whitespace). Accepts CRLF and bare LF line ends, obs-fold, 8-bit bytes and NULs.
public struct MailHeaderParser: Sendable {
    /// The limits in force.
    public let limits: MailHeaderLimits
    /// Bytes consumed so far, including the empty line that ended the block.
    public private(set) var consumed = 0
    /// Whether the block has ended (the empty line was consumed, or `finish` was called).
    public private(set) var isComplete = false
    /// Size of the header block up to and including the empty line that ends it (when there is
    /// one), the same as `consumed` once complete.
    public var headerSize: Int { consumed }

    private var line: [UInt8] = []        // the current physical line, without its LF
    private var lineStart = 0
    private var lineOverflow = false
    private var field: [UInt8] = []       // the pending field so far (raw, with line ends)
    private var fieldStart = 0
    private var fieldOverflow = false
    private var hasField = false
    private var fieldCount = 0
    private var reportedCount = false
    private var reportedLine = false
    private var reportedField = false

    /// A parser with `limits`.
    public init(limits: MailHeaderLimits = MailHeaderLimits()) {
        self.limits = limits
    }

    /// Bytes held while waiting for the end of a line or field (what the limits bound).
    public var bufferedByteCount: Int { line.count + field.count }

    /// Feeds bytes. Stops consuming right after the empty line that ends the block; the caller
    /// finds the first body byte at `consumed` (bytes past it are not consumed).
    public mutating func feed<Bytes: Collection>(_ bytes: Bytes) -> [MailHeaderEvent] where Bytes.Element == UInt8 {
        var events: [MailHeaderEvent] = []
        guard !isComplete else { return events }
        for byte in bytes {
            consumed += 1
            if byte == 10 {
                endLine(&events)
                if isComplete { break }
                continue
            }
            if lineOverflow { continue }
            if line.isEmpty { lineFirst = byte }
            line.append(byte)
            if line.count > limits.maxLineLength + 1 || (line.count == limits.maxLineLength + 1 && byte != 13) {
                lineOverflow = true
                line.removeAll(keepingCapacity: false)
            }
        }
        return events
    }

    /// Ends the input: a last line without line end and a pending field are reported, then `.end`.
    public mutating func finish() -> [MailHeaderEvent] {
        var events: [MailHeaderEvent] = []
        guard !isComplete else { return events }
        if line.last == 13 { line.removeLast() }
        if !line.isEmpty || lineOverflow { processLine(&events, terminator: []) }
        flushField(&events)
        isComplete = true
        events.append(.end)
        return events
    }

    private mutating func endLine(_ events: inout [MailHeaderEvent]) {
        let hadCR = line.last == 13
        if hadCR { line.removeLast() }
        if !lineOverflow && line.isEmpty {
            flushField(&events)
            isComplete = true
            events.append(.end)
            return
        }
        processLine(&events, terminator: hadCR ? [13, 10] : [10])
        lineStart = consumed
    }

    private mutating func processLine(_ events: inout [MailHeaderEvent], terminator: [UInt8]) {
        defer {
            line.removeAll(keepingCapacity: true)
            lineOverflow = false
        }
        if lineOverflow {
            if !reportedLine {
                reportedLine = true
                events.append(.limitExceeded(.lineTooLong(limit: limits.maxLineLength)))
            }
            // A too-long continuation spoils its field: drop the field whole.
            if lineFirst == 32 || lineFirst == 9 {
                if hasField { fieldOverflow = true; field.removeAll(keepingCapacity: false) }
            } else {
                flushField(&events)
            }
            return
        }
        let first = line[0]
        if first == 32 || first == 9 {
            guard hasField else {
                events.append(.malformed(line: line, offset: lineStart))
                return
            }
            if fieldOverflow { return }
            if field.count + pendingTerminator.count + line.count > limits.maxFieldSize {
                fieldOverflow = true
                field.removeAll(keepingCapacity: false)
                return
            }
            field.append(contentsOf: pendingTerminator)
            pendingTerminator = terminator
            field.append(contentsOf: line)
            return
        }
        flushField(&events)
        guard let colon = line.firstIndex(of: 58), colon > 0 else {
            events.append(.malformed(line: line, offset: lineStart))
            return
        }
        // obs-fold allows whitespace between the name and the colon.
        var nameEnd = colon
        while nameEnd > 0, line[nameEnd - 1] == 32 || line[nameEnd - 1] == 9 { nameEnd -= 1 }
        let nameBytes = line[0..<nameEnd]
        if nameBytes.isEmpty || nameBytes.contains(where: { $0 == 32 || $0 == 9 || $0 < 32 || $0 == 127 }) {
            events.append(.malformed(line: line, offset: lineStart))
            return
        }
        hasField = true
        fieldStart = lineStart
        field = line
        pendingTerminator = terminator
        if field.count > limits.maxFieldSize {
            fieldOverflow = true
            field.removeAll(keepingCapacity: false)
        }
    }

    private var pendingTerminator: [UInt8] = []
    private var lineFirst: UInt8 = 0

    private mutating func flushField(_ events: inout [MailHeaderEvent]) {
        guard hasField else { return }
        hasField = false
        defer {
            field.removeAll(keepingCapacity: true)
            fieldOverflow = false
            pendingTerminator = []
        }
        if fieldOverflow {
            if !reportedField {
                reportedField = true
                events.append(.limitExceeded(.fieldTooLarge(limit: limits.maxFieldSize)))
            }
            return
        }
        if fieldCount >= limits.maxFieldCount {
            if !reportedCount {
                reportedCount = true
                events.append(.limitExceeded(.tooManyFields(limit: limits.maxFieldCount)))
            }
            return
        }
        fieldCount += 1
        let colon = field.firstIndex(of: 58)!
        var nameEnd = colon
        while nameEnd > 0, field[nameEnd - 1] == 32 || field[nameEnd - 1] == 9 { nameEnd -= 1 }
        let name = MailCharset.latin1(Array(field[0..<nameEnd]))
        events.append(.field(MailHeaderField(name: name, rawValue: Array(field[(colon + 1)...]), offset: fieldStart)))
    }
}

/// Parses a complete header block held in memory: the fields, the malformed lines, the limit
/// errors, and where the body starts.
public struct MailHeaderBlock: Sendable, Equatable {
    /// The fields in order.
    public var fields: [MailHeaderField]
    /// Lines that were not fields.
    public var malformedLines: [[UInt8]]
    /// Limits exceeded, in the order met.
    public var limitErrors: [MailHeaderLimitError]
    /// Offset of the first body byte (the input's length when there is no empty line).
    public var bodyOffset: Int

    /// Parses the header block at the start of `bytes`.
    public init<Bytes: Collection>(parsing bytes: Bytes, limits: MailHeaderLimits = MailHeaderLimits()) where Bytes.Element == UInt8 {
        var parser = MailHeaderParser(limits: limits)
        var events = parser.feed(bytes)
        if !parser.isComplete { events += parser.finish() }
        fields = []
        malformedLines = []
        limitErrors = []
        for event in events {
            switch event {
            case .field(let f): fields.append(f)
            case .malformed(let line, _): malformedLines.append(line)
            case .limitExceeded(let e): limitErrors.append(e)
            case .end: break
            }
        }
        bodyOffset = parser.consumed
    }

    /// The first field called `name` (ASCII case ignored).
    public func first(_ name: String) -> MailHeaderField? { fields.first { $0.hasName(name) } }

    /// Every field called `name` (ASCII case ignored), in order.
    public func all(_ name: String) -> [MailHeaderField] { fields.filter { $0.hasName(name) } }
}

extension String {
    func caseInsensitiveEquals(_ other: String) -> Bool {
        let a = utf8, b = other.utf8
        guard a.count == b.count else { return false }
        for (x, y) in zip(a, b) where x != y {
            let lx = (x >= 65 && x <= 90) ? x + 32 : x
            let ly = (y >= 65 && y <= 90) ? y + 32 : y
            if lx != ly { return false }
        }
        return true
    }
}
