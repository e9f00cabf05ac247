#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Streaming MIME structure parser (RFC 2045-2049): fed a message in chunks of any size, it
/// walks nested multiparts and message/rfc822 parts and records every part's headers, MIME
/// fields, offsets, sizes and line counts. It keeps offsets, not bodies: its buffer stays within
/// `bufferedByteCount`'s bound whatever the message size.
///
/// Delimiters are matched exactly (`--boundary`, optional `--`, then only blanks), innermost
/// multipart first, so a boundary that is a prefix of another is no confusion; a delimiter of an
/// outer multipart also ends the inner ones. The Mime-Version field is not required.
public struct MIMEStructureParser: Sendable {
    private struct Builder: Sendable {
        var parent: Int
        var depth: Int
        var headerOffset: Int
        var headerSize = 0
        var bodyOffset = 0
        var bodyEnd = -1
        var startLF = 0, startBare = 0
        var endLF = 0, endBare = 0
        var fields: [MailHeaderField] = []
        var explicitType: MIMEContentType?
        var type: MIMEContentType = .defaultText
        var children: [Int] = []
        var boundary: [UInt8]?
        var boundaryActive = false
        var isMultipart = false
        var isMessage = false
        var inDigest = false
        var firstDelimiter: Int?
        var closeDelimiterEnd: Int?
        var sawClose = false
    }

    private enum Mode: Sendable {
        case header
        case body
        case skip
    }

    /// The limits in force.
    public let limits: MIMEParserLimits
    private var parts: [Builder] = []
    private var open: [Int] = []          // path from the root to the innermost open part
    private var mode = Mode.header
    private var header: MailHeaderParser
    private var problems: [MIMEProblem] = []
    private var reportedTooMany = false

    private var offset = 0
    private var lfCount = 0
    private var bareCount = 0
    private var lastByte: UInt8 = 0

    // The current line.
    private var atLineStart = true
    private var lineStart = 0
    private var lineStartLF = 0
    private var lineStartBare = 0
    private var lineHead: [UInt8] = []
    private var lineCaptured = true        // lineHead holds the whole line so far
    private var headerLineFed = false      // some of this line already went to the header parser
    // The line end before the current line.
    private var prevTerminator = 0         // 0 (no line before), 1 (LF) or 2 (CRLF)

    private var activeBoundaries = 0

    /// A parser at the start of a message.
    public init(limits: MIMEParserLimits = MIMEParserLimits()) {
        self.limits = limits
        header = MailHeaderParser(limits: limits.header)
        parts.append(Builder(parent: -1, depth: 0, headerOffset: 0))
        open = [0]
    }

    /// Bytes held between calls: a partial line (bounded by `maxDelimiterLineLength`) and the
    /// header parser's partial field (bounded by the header limits).
    public var bufferedByteCount: Int { lineHead.count + header.bufferedByteCount }

    /// Bytes fed so far.
    public var bytesConsumed: Int { offset }

    /// Feeds the next chunk of the message.
    public mutating func feed<Bytes: Collection>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        if let done = bytes.withContiguousStorageIfAvailable({ buf -> Bool in
            feedBuffer(UnsafeRawBufferPointer(buf))
            return true
        }), done { return }
        let copy = Array(bytes)
        copy.withUnsafeBytes { feedBuffer($0) }
    }

    private mutating func feedBuffer(_ buf: UnsafeRawBufferPointer) {
        let n = buf.count
        var i = 0
        let base = buf.baseAddress
        while i < n {
            if atLineStart {
                atLineStart = false
                lineStart = offset
                lineStartLF = lfCount
                lineStartBare = bareCount
                lineHead.removeAll(keepingCapacity: true)
                lineCaptured = true
                headerLineFed = false
            }
            // Find the end of this line within the buffer.
            let found = memchr(base! + i, 10, n - i)
            let end = found.map { UnsafeRawPointer($0) - UnsafeRawPointer(base!) + 1 } ?? n
            let segment = UnsafeRawBufferPointer(rebasing: buf[i..<end])
            absorb(segment)
            let endsLine = found != nil
            // Whether the LF (if any) closing this segment follows a CR, possibly in an earlier chunk.
            let crBefore = endsLine && (segment.count >= 2 ? segment[segment.count - 2] == 13 : lastByte == 13)
            if endsLine {
                lfCount += 1
                if !crBefore { bareCount += 1 }
            }
            lastByte = segment[segment.count - 1]
            offset += segment.count
            i = end
            if endsLine {
                lineEnded()
                prevTerminator = crBefore ? 2 : 1
                atLineStart = true
            }
        }
    }

    /// Takes in part of the current line (up to and including its LF).
    private mutating func absorb(_ segment: UnsafeRawBufferPointer) {
        switch mode {
        case .header:
            if lineCaptured {
                if lineHead.count + segment.count <= limits.maxDelimiterLineLength + 2 {
                    lineHead.append(contentsOf: segment)
                    return
                }
                // Too long for a delimiter: hand what we held, and the rest, to the header parser.
                lineCaptured = false
                headerLineFed = true
                let held = lineHead
                lineHead.removeAll(keepingCapacity: true)
                feedHeader(held)
            }
            feedHeader(Array(segment))
        case .body, .skip:
            guard activeBoundaries > 0, lineCaptured else { return }
            // Only lines starting with "--" can be delimiters.
            let have = lineHead.count
            var k = 0
            while have + k < 2, k < segment.count {
                if segment[k] != 45 { lineCaptured = false; lineHead.removeAll(keepingCapacity: true); return }
                k += 1
            }
            if lineHead.count + segment.count > limits.maxDelimiterLineLength + 2 {
                lineCaptured = false
                lineHead.removeAll(keepingCapacity: true)
                return
            }
            lineHead.append(contentsOf: segment)
        }
    }

    private mutating func feedHeader(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        let events = header.feed(bytes)
        handleHeaderEvents(events)
    }

    private mutating func handleHeaderEvents(_ events: [MailHeaderEvent]) {
        let current = open.last!
        for e in events {
            switch e {
            case .field(let f):
                var f = f
                f.offset += parts[current].headerOffset
                parts[current].fields.append(f)
            case .malformed(_, let off):
                problems.append(.malformedHeaderLine(part: current, offset: off + parts[current].headerOffset))
            case .limitExceeded(let err):
                problems.append(.headerLimit(part: current, err))
            case .end:
                break
            }
        }
    }

    /// A line (ending in LF) is complete.
    private mutating func lineEnded() {
        if lineCaptured, activeBoundaries > 0, let (owner, close) = matchDelimiter(lineHead) {
            if mode == .header {
                // A delimiter inside a header block: the block ends here, the body is empty.
                endHeaderAbruptly(at: lineStart)
            }
            delimiter(owner: owner, close: close, lineEnd: offset)
            return
        }
        if mode == .header {
            if !headerLineFed {
                let held = lineHead
                feedHeader(held)
            }
            if header.isComplete { headerDone(bodyOffset: offset) }
        }
    }

    /// Which active multipart's delimiter the line is, if any (innermost first).
    private func matchDelimiter(_ line: [UInt8]) -> (Int, Bool)? {
        guard line.count >= 3, line[0] == 45, line[1] == 45 else { return nil }
        var end = line.count
        while end > 2, line[end - 1] == 10 || line[end - 1] == 13 || line[end - 1] == 32 || line[end - 1] == 9 { end -= 1 }
        let body = line[2..<end]
        for idx in open.reversed() {
            let p = parts[idx]
            guard p.boundaryActive, let b = p.boundary else { continue }
            if body.count == b.count && body.elementsEqual(b) { return (idx, false) }
            if body.count == b.count + 2 && body.prefix(b.count).elementsEqual(b) && body.suffix(2).elementsEqual([45, 45]) {
                return (idx, true)
            }
        }
        return nil
    }

    /// Closes every open part below `owner` at the body end the delimiter line implies.
    private mutating func closeBelow(_ owner: Int) {
        while let last = open.last, last != owner {
            closePart(last, atDelimiterLine: true)
            open.removeLast()
            if parts[last].boundaryActive {
                parts[last].boundaryActive = false
                activeBoundaries -= 1
                problems.append(.missingCloseDelimiter(part: last))
            }
        }
    }

    private mutating func closePart(_ idx: Int, atDelimiterLine: Bool) {
        guard parts[idx].bodyEnd < 0 else { return }
        var p = parts[idx]
        if atDelimiterLine {
            let end = lineStart - prevTerminator
            if prevTerminator > 0 && end >= p.bodyOffset {
                p.bodyEnd = end
                p.endLF = lineStartLF - 1
                p.endBare = lineStartBare - (prevTerminator == 1 ? 1 : 0)
            } else {
                p.bodyEnd = max(p.bodyOffset, lineStart)
                p.endLF = max(p.startLF, lineStartLF)
                p.endBare = max(p.startBare, lineStartBare)
            }
        } else {
            p.bodyEnd = offset
            p.endLF = lfCount
            p.endBare = bareCount
        }
        if p.bodyEnd < p.bodyOffset {
            p.bodyEnd = p.bodyOffset
            p.endLF = p.startLF
            p.endBare = p.startBare
        }
        parts[idx] = p
    }

    private mutating func delimiter(owner: Int, close: Bool, lineEnd: Int) {
        closeBelow(owner)
        if parts[owner].firstDelimiter == nil { parts[owner].firstDelimiter = lineStart }
        if close {
            parts[owner].boundaryActive = false
            parts[owner].sawClose = true
            parts[owner].closeDelimiterEnd = lineEnd
            activeBoundaries -= 1
            mode = .body
            return
        }
        // A new child part starts after the delimiter line.
        guard parts.count < limits.maxParts else {
            if !reportedTooMany { reportedTooMany = true; problems.append(.tooManyParts) }
            mode = .skip
            return
        }
        let idx = parts.count
        var child = Builder(parent: owner, depth: parts[owner].depth + 1, headerOffset: lineEnd)
        child.inDigest = parts[owner].type.subtype.caseInsensitiveEquals("digest")
        parts.append(child)
        parts[owner].children.append(idx)
        open.append(idx)
        startHeader()
    }

    private mutating func startHeader() {
        mode = .header
        header = MailHeaderParser(limits: limits.header)
    }

    private mutating func endHeaderAbruptly(at position: Int) {
        // Lines held for the delimiter test never reached the header parser; this one is the
        // delimiter itself. Finish what the parser has.
        handleHeaderEvents(header.finish())
        headerDone(bodyOffset: position)
    }

    /// The current part's header block is complete; its body starts at `bodyOffset`.
    private mutating func headerDone(bodyOffset: Int) {
        let idx = open.last!
        var p = parts[idx]
        p.headerSize = bodyOffset - p.headerOffset
        p.bodyOffset = bodyOffset
        p.startLF = lfCount
        p.startBare = bareCount
        if bodyOffset == lineStart && bodyOffset != offset {
            // Ended at a delimiter line: counts as of that line's start.
            p.startLF = lineStartLF
            p.startBare = lineStartBare
        }
        header = MailHeaderParser(limits: limits.header)
        // MIME fields.
        for f in p.fields {
            let name = f.name
            guard name.utf8.count > 8, name.utf8.prefix(8).elementsEqual("content-".utf8, by: { a, b in a | 0x20 == b | 0x20 })
            else { continue }
            let rest = String(name.dropFirst(8))
            switch rest.lowercased() {
            case "type" where p.explicitType == nil:
                p.explicitType = MIMEContentType.parse(f.value)
            default: break
            }
        }
        p.type = p.explicitType ?? (p.inDigest ? .defaultDigest : .defaultText)
        let encoding = p.fields.first(where: { $0.hasName("Content-Transfer-Encoding") }).flatMap { MIMEFields.transferEncoding($0.value) }
        parts[idx] = p
        mode = .body

        if p.type.isMultipart {
            guard let boundary = p.type.boundary else {
                problems.append(.missingBoundary(part: idx))
                return
            }
            guard p.depth < limits.maxDepth else {
                problems.append(.tooDeep(part: idx))
                return
            }
            parts[idx].boundary = boundary
            parts[idx].boundaryActive = true
            parts[idx].isMultipart = true
            activeBoundaries += 1
        } else if p.type.isMessage {
            if let e = encoding?.lowercased(), e == "base64" || e == "quoted-printable" {
                problems.append(.encodedMessage(part: idx))
                return
            }
            guard p.depth < limits.maxDepth else {
                problems.append(.tooDeep(part: idx))
                return
            }
            guard parts.count < limits.maxParts else {
                if !reportedTooMany { reportedTooMany = true; problems.append(.tooManyParts) }
                return
            }
            parts[idx].isMessage = true
            let child = parts.count
            parts.append(Builder(parent: idx, depth: p.depth + 1, headerOffset: bodyOffset))
            parts[idx].children.append(child)
            open.append(child)
            startHeader()
        }
    }

    /// Ends the input and returns the structure.
    public mutating func finish() -> MIMEMessage {
        if !atLineStart {
            // A last line without line end may still be a delimiter ("--b--" at EOF).
            if lineCaptured, activeBoundaries > 0, let (owner, close) = matchDelimiter(lineHead) {
                if mode == .header { endHeaderAbruptly(at: lineStart) }
                delimiter(owner: owner, close: close, lineEnd: offset)
            } else if mode == .header, !headerLineFed {
                let held = lineHead
                feedHeader(held)
            }
            atLineStart = true
        }
        // A message/rfc822 whose header ends here opens its enclosed message's header: loop.
        while mode == .header {
            handleHeaderEvents(header.finish())
            headerDone(bodyOffset: offset)
        }
        while let last = open.last {
            closePart(last, atDelimiterLine: false)
            if parts[last].boundaryActive {
                parts[last].boundaryActive = false
                activeBoundaries -= 1
                problems.append(.missingCloseDelimiter(part: last))
            }
            open.removeLast()
        }
        // Parts never opened for lack of room keep their defaults; close any stragglers.
        for i in parts.indices where parts[i].bodyEnd < 0 {
            parts[i].bodyEnd = max(parts[i].bodyOffset, offset)
            parts[i].endLF = lfCount
            parts[i].endBare = bareCount
        }
        let root = build(0)
        return MIMEMessage(root: root, problems: problems, size: offset, partCount: parts.count)
    }

    private func build(_ idx: Int) -> MIMEPart {
        let b = parts[idx]
        var part = MIMEPart(index: idx, depth: b.depth, headerOffset: b.headerOffset, headerSize: b.headerSize,
                            bodyOffset: b.bodyOffset, bodySize: b.bodyEnd - b.bodyOffset,
                            bodyVirtualSize: b.bodyEnd - b.bodyOffset + (b.endBare - b.startBare),
                            bodyLines: b.endLF - b.startLF, fields: b.fields, explicitContentType: b.explicitType,
                            contentType: b.type, contentID: nil, contentDescription: nil, contentTransferEncoding: nil,
                            contentDisposition: nil, contentLanguage: nil, contentLocation: nil, contentMD5: nil,
                            children: b.children.map { build($0) }, isMultipart: b.isMultipart, isMessage: b.isMessage)
        for f in b.fields {
            guard f.name.utf8.count > 8 else { continue }
            switch f.name.lowercased() {
            case "content-id": if part.contentID == nil { part.contentID = f.value }
            case "content-description": if part.contentDescription == nil { part.contentDescription = f.value }
            case "content-transfer-encoding":
                if part.contentTransferEncoding == nil { part.contentTransferEncoding = MIMEFields.transferEncoding(f.value) }
            case "content-disposition":
                if part.contentDisposition == nil { part.contentDisposition = MIMEContentDisposition.parse(f.value) }
            case "content-language": if part.contentLanguage == nil { part.contentLanguage = MIMEFields.languages(f.value) }
            case "content-location": if part.contentLocation == nil { part.contentLocation = f.value }
            case "content-md5": if part.contentMD5 == nil { part.contentMD5 = f.value }
            default: break
            }
        }
        if part.contentLanguage?.isEmpty == true { part.contentLanguage = nil }
        if b.isMultipart {
            let first = b.firstDelimiter ?? b.bodyEnd
            // The line end before the first delimiter belongs to it.
            var preEnd = first
            if first > b.bodyOffset { preEnd = max(b.bodyOffset, first - 1) }
            part.preamble = (b.bodyOffset, max(0, preEnd - b.bodyOffset))
            if let e = b.closeDelimiterEnd { part.epilogue = (e, max(0, b.bodyEnd - e)) }
        }
        return part
    }
}
