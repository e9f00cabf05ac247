/// The IMAP command parser: a pure, incremental state machine over the bytes a client sends.
/// Feed it bytes in any chunking; it answers with events in the same order whatever the chunks
/// were.
///
/// How a command is read:
/// - Lines end in CRLF; a bare LF is accepted as a line end too (as Dovecot does), since
///   refusing it helps nobody in IMAP (no smuggling concern: a command is one line or literals).
/// - A line ending in a literal header `{n}` (synchronizing), `{n+}` (RFC 7888), or `~{n}`
///   (literal8) continues with `n` bytes of literal contents and then more of the same command.
/// - The first literal of a command is checked before it is accepted: the command up to it must
///   be well formed (tag, a known command, valid arguments so far) and the literal within its
///   limit; only then does a synchronizing literal get `.continuationRequest`. Later literals
///   of the same command are checked for size only; the rest of the syntax is checked when the
///   command is complete. (Checking every prefix would make a command with many literals cost
///   quadratic time.)
/// - A refused command is answered once (`.error`), then the parser drops the rest of it and
///   starts again at the next command. When a literal was announced: a non-synchronizing one is
///   read and dropped (the client sends it whatever we say); a synchronizing one gets no
///   continuation, so the client does not send it, and the next line is a new command. A client
///   that sends a synchronizing literal's bytes without waiting for the continuation sees them
///   read as commands (and answered BAD): that is its own protocol error.
/// - After AUTHENTICATE, IDLE, STARTTLS and COMPRESS the parser pauses (bytes fed meanwhile are
///   kept, not read) because what follows is not a command: SASL responses, `DONE`, a TLS
///   handshake, compressed data. The session calls `resume(expecting:)` when it knows, after
///   `takeBufferedInput()` where the buffered bytes must be discarded (STARTTLS, RFC 3501
///   §6.2.1) or decompressed (COMPRESS).
public struct IMAPCommandParser: Sendable {
    public enum Event: Sendable, Hashable {
        /// A complete command.
        case command(IMAPTaggedCommand)
        /// A synchronizing literal was announced and accepted: send `+ ...` now.
        case continuationRequest
        /// A refused command (or AUTHENTICATE/IDLE line): send `error.responseBytes`.
        case error(IMAPCommandError)
        /// One line of an AUTHENTICATE exchange (mode `.authenticationResponse`); the parser
        /// pauses after it until the session decides what comes next.
        case authenticationResponse(IMAPAuthenticationResponse)
        /// `DONE` ended IDLE (mode `.idleDone`); commands follow.
        case idleDone
    }

    /// What the next line is.
    public enum Expectation: Sendable, Hashable {
        case command
        /// A SASL response line or `*` (after `+ challenge`).
        case authenticationResponse
        /// `DONE` (after `+ idling`).
        case idleDone
    }

    private enum State: Sendable {
        /// Reading a line of the current command.
        case line
        /// Copying `remaining` bytes of literal contents into the command.
        case literal(remaining: Int)
        /// Dropping `remaining` bytes of a refused command's literal.
        case skipping(remaining: Int)
    }

    private struct LiteralHeader {
        var size: Int
        var nonSync: Bool
    }

    /// Options; changes apply from the next line on.
    public var options: IMAPParserOptions
    /// Whether the parser waits for `resume(expecting:)`.
    public private(set) var isPaused = false
    /// What the next line is read as.
    public private(set) var expectation = Expectation.command

    private var input: [UInt8] = []
    private var inputStart = 0
    private var events: [Event] = []
    private var state = State.line
    /// The tag of the AUTHENTICATE or IDLE command whose lines are being read.
    private var exchangeTag: String?

    // The command being assembled.
    private var raw = IMAPRawCommand()
    private var lineStart = 0
    /// The command was refused and answered: its remaining bytes are dropped.
    private var failed = false
    /// Last bytes of a line being dropped, enough to see a literal header at its end.
    private var tail: [UInt8] = []
    private var commandSize = 0
    private var messageBytes = 0
    private var commandTag: String?
    private var commandName = ""
    private static let tailLength = 32

    public init(options: IMAPParserOptions = IMAPParserOptions()) {
        self.options = options
    }

    /// Bytes received and not looked at yet: those fed while paused. (Bytes of an incomplete
    /// line or literal are already taken into the command and bounded by the limits; bytes fed
    /// while paused are not, so a session may want to cap this.)
    public var bufferedByteCount: Int { input.count - inputStart }

    /// Literal bytes still to come before lines are read again: those of an accepted literal,
    /// or of a refused non-synchronizing one being dropped. 0 while reading a line. A session
    /// may use it to tell a client that stopped mid-literal from one that stopped between commands.
    public var awaitedLiteralBytes: Int {
        switch state {
        case .line: return 0
        case .literal(let remaining), .skipping(let remaining): return remaining
        }
    }

    /// Whether a literal's contents arrived and the rest of its command line has not: the moment a
    /// client may be holding a short tail back until the literal is acknowledged.
    public var isAwaitingLineAfterLiteral: Bool {
        if case .line = state, !raw.literals.isEmpty, !failed { return true }
        return false
    }

    /// Reads `bytes`; returns the events they complete. While paused, only keeps them.
    public mutating func feed<Bytes: Sequence>(_ bytes: Bytes) -> [Event] where Bytes.Element == UInt8 {
        input.append(contentsOf: bytes)
        return process()
    }

    /// Ends a pause: the next line is read as `expecting`. Returns the events that bytes already
    /// buffered complete.
    public mutating func resume(expecting: Expectation) -> [Event] {
        isPaused = false
        expectation = expecting
        return process()
    }

    /// Removes and returns the bytes not read yet: after STARTTLS (to drop them: they were sent
    /// before the handshake) or COMPRESS (to decompress them and feed them again).
    public mutating func takeBufferedInput() -> [UInt8] {
        let rest = Array(input[inputStart...])
        input.removeAll(keepingCapacity: true)
        inputStart = 0
        return rest
    }

    // MARK: - The state machine

    private mutating func process() -> [Event] {
        while !isPaused && inputStart < input.count {
            switch state {
            case .line:
                let newline = input[inputStart...].firstIndex(of: 0x0A)
                let chunkEnd = newline ?? input.count
                appendLineBytes(input[inputStart..<chunkEnd])
                inputStart = chunkEnd
                if newline != nil {
                    inputStart += 1
                    endOfLine()
                }
            case .literal(let remaining):
                let n = min(remaining, input.count - inputStart)
                raw.bytes.append(contentsOf: input[inputStart..<inputStart + n])
                inputStart += n
                if n == remaining { startLine() } else { state = .literal(remaining: remaining - n) }
            case .skipping(let remaining):
                let n = min(remaining, input.count - inputStart)
                inputStart += n
                if n == remaining { startLine() } else { state = .skipping(remaining: remaining - n) }
            }
        }
        if inputStart == input.count {
            input.removeAll(keepingCapacity: input.capacity <= 1 << 20)
            inputStart = 0
        } else if inputStart >= 1 << 16 {
            input.removeFirst(inputStart)
            inputStart = 0
        }
        let out = events
        events.removeAll()
        return out
    }

    private mutating func startLine() {
        state = .line
        lineStart = raw.bytes.count
        tail.removeAll()
    }

    private mutating func appendLineBytes(_ chunk: ArraySlice<UInt8>) {
        guard !chunk.isEmpty else { return }
        if failed {
            keepTail(chunk)
            return
        }
        // One byte of slack for the CR of the terminator.
        let room = options.limits.maxLineLength + 1 - (raw.bytes.count - lineStart)
        if chunk.count <= room {
            raw.bytes.append(contentsOf: chunk)
            return
        }
        // Too long: keep the line's start (for the tag) and its end (for a literal header).
        raw.bytes.append(contentsOf: chunk.prefix(room))
        tail = Array(raw.bytes[max(lineStart, raw.bytes.count - Self.tailLength)...])
        keepTail(chunk.dropFirst(room))
        refuse(IMAPCommandError(tag: currentTag(), text: "Command line too long (over \(options.limits.maxLineLength) bytes)"))
    }

    private mutating func keepTail(_ chunk: ArraySlice<UInt8>) {
        if chunk.count >= Self.tailLength {
            tail = Array(chunk.suffix(Self.tailLength))
        } else {
            tail.append(contentsOf: chunk)
            if tail.count > Self.tailLength { tail.removeFirst(tail.count - Self.tailLength) }
        }
    }

    private mutating func endOfLine() {
        if failed {
            // The rest of a refused command: a non-synchronizing literal at the end of this line
            // is still coming and is dropped; otherwise the command ends here (a synchronizing
            // one gets no continuation, so it never comes).
            if tail.last == 0x0D { tail.removeLast() }
            if expectation == .command, let header = Self.literalHeader(tail[...]), header.nonSync {
                state = .skipping(remaining: header.size)
                if header.size == 0 { startLine() }
                return
            }
            endCommand()
            return
        }
        if raw.bytes.count > lineStart && raw.bytes.last == 0x0D { raw.bytes.removeLast() }
        let lineLength = raw.bytes.count - lineStart
        let header = expectation == .command ? Self.literalHeader(raw.bytes[lineStart...]) : nil
        // The one byte of slack kept for a CR was not a CR (a bare LF ended the line).
        if lineLength > options.limits.maxLineLength {
            refuse(IMAPCommandError(tag: currentTag(), text: "Command line too long (over \(options.limits.maxLineLength) bytes)"), literal: header)
            return
        }
        switch expectation {
        case .command: endOfCommandLine(lineLength, header: header)
        case .authenticationResponse: endOfAuthenticationLine()
        case .idleDone: endOfIdleLine()
        }
    }

    private mutating func endOfCommandLine(_ lineLength: Int, header: LiteralHeader?) {
        if raw.bytes[lineStart...].contains(0) {
            refuse(IMAPCommandError(tag: currentTag(), text: "NUL byte in command line"), literal: header)
            return
        }
        commandSize += lineLength
        if commandSize > options.limits.maxCommandSize {
            refuse(IMAPCommandError(tag: currentTag(), text: "Command too long (over \(options.limits.maxCommandSize) bytes)"), literal: header)
            return
        }
        if let header {
            acceptLiteral(header)
            return
        }
        switch IMAPCommandReader.read(raw, options: options) {
        case .success(let command):
            events.append(.command(command))
            switch command.command {
            case .authenticate, .idle, .startTLS, .compress:
                isPaused = true
                exchangeTag = command.tag
            default:
                break
            }
        case .failure(let error):
            events.append(.error(error))
        }
        endCommand()
    }

    private mutating func acceptLiteral(_ header: LiteralHeader) {
        let role: IMAPLiteralRole
        if raw.literals.isEmpty {
            let prefix = IMAPCommandReader.readPrefix(raw, options: options)
            commandTag = prefix.tag
            commandName = prefix.commandName
            switch prefix.outcome {
            case .success(let r): role = r
            case .failure(let error):
                refuse(error, literal: header)
                return
            }
        } else {
            role = commandName == "APPEND" ? .message : .string
        }
        let limits = options.limits
        if header.nonSync && options.nonSyncLiterals == .refused {
            refuse(IMAPCommandError(tag: commandTag, text: "Non-synchronizing literals are not supported"), literal: header)
            return
        }
        switch role {
        case .message:
            if header.size > limits.maxAppendMessageSize {
                refuse(IMAPCommandError(tag: commandTag, status: .no, code: .tooBig,
                                        text: "Message too large (over \(limits.maxAppendMessageSize) bytes)"), literal: header)
                return
            }
            if messageBytes + header.size > limits.maxAppendTotalSize {
                refuse(IMAPCommandError(tag: commandTag, status: .no, code: .tooBig,
                                        text: "Messages too large together (over \(limits.maxAppendTotalSize) bytes)"), literal: header)
                return
            }
            messageBytes += header.size
        case .string:
            if header.size > limits.maxLiteralSize {
                refuse(IMAPCommandError(tag: commandTag, text: "Literal too large (over \(limits.maxLiteralSize) bytes)"), literal: header)
                return
            }
            if commandSize + header.size > limits.maxCommandSize {
                refuse(IMAPCommandError(tag: commandTag, text: "Command too long (over \(limits.maxCommandSize) bytes)"), literal: header)
                return
            }
            commandSize += header.size
        }
        // RFC 7888 §5: under LITERAL-, a non-synchronizing literal over 4096 bytes is refused.
        if header.nonSync && options.nonSyncLiterals == .literalMinus && header.size > 4096 {
            refuse(IMAPCommandError(tag: commandTag, code: .tooBig,
                                    text: "Non-synchronizing literal over 4096 bytes (LITERAL-): use a synchronizing one"), literal: header)
            return
        }
        if !header.nonSync { events.append(.continuationRequest) }
        raw.literals.append(raw.bytes.count..<raw.bytes.count + header.size)
        // Reserve for what is announced, but not more than 1 MiB ahead of what has come.
        raw.bytes.reserveCapacity(raw.bytes.count + min(header.size, 1 << 20))
        state = .literal(remaining: header.size)
        if header.size == 0 { startLine() }
    }

    private mutating func endOfAuthenticationLine() {
        if let response = IMAPAuthenticationResponse.parse(raw.bytes[lineStart...]) {
            events.append(.authenticationResponse(response))
        } else {
            events.append(.error(IMAPCommandError(tag: exchangeTag, text: "Invalid base64 in authentication response")))
        }
        endCommand()
    }

    private mutating func endOfIdleLine() {
        if IMAPCharacters.equalsIgnoringCase(raw.bytes[lineStart...], "DONE") {
            events.append(.idleDone)
        } else {
            events.append(.error(IMAPCommandError(tag: exchangeTag, text: "Expected DONE")))
        }
        endCommand()
    }

    /// Answers the command with `error` and drops the rest of it: a non-synchronizing literal
    /// announced at the end of this line is skipped; after a synchronizing one, nothing comes.
    private mutating func refuse(_ error: IMAPCommandError, literal header: LiteralHeader?) {
        events.append(.error(error))
        failed = true
        if let header, header.nonSync {
            state = .skipping(remaining: header.size)
            if header.size == 0 { startLine() }
        } else {
            endCommand()
        }
    }

    /// Answers the command with `error` in the middle of a line: the rest of the line is dropped
    /// when it ends (see `endOfLine`).
    private mutating func refuse(_ error: IMAPCommandError) {
        events.append(.error(error))
        failed = true
    }

    /// Forgets the command; the next line starts a new one. After an AUTHENTICATE line the
    /// parser pauses for the session; after an IDLE line, commands follow.
    private mutating func endCommand() {
        switch expectation {
        case .command: break
        case .authenticationResponse: isPaused = true
        case .idleDone: expectation = .command
        }
        raw = IMAPRawCommand()
        lineStart = 0
        failed = false
        tail.removeAll()
        commandSize = 0
        messageBytes = 0
        commandTag = nil
        commandName = ""
        state = .line
    }

    /// The tag to answer with: the one of the AUTHENTICATE/IDLE being continued, the one read
    /// from the command's first line, or one guessed from its first bytes.
    private func currentTag() -> String? {
        if expectation != .command { return exchangeTag }
        if let commandTag { return commandTag }
        var end = 0
        while end < raw.bytes.count, IMAPCharacters.isTagChar(raw.bytes[end]) { end += 1 }
        guard end > 0, end < raw.bytes.count, raw.bytes[end] == 0x20 else { return nil }
        return String(decoding: raw.bytes[..<end], as: UTF8.self)
    }

    /// `{n}`, `{n+}` (or with `~` before) at the end of `line`. Sizes of more than 18 digits
    /// are not taken as headers (the command is then refused as malformed).
    private static func literalHeader(_ line: ArraySlice<UInt8>) -> LiteralHeader? {
        guard line.last == UInt8(ascii: "}") else { return nil }
        var i = line.endIndex - 1
        var nonSync = false
        if i > line.startIndex && line[i - 1] == UInt8(ascii: "+") {
            nonSync = true
            i -= 1
        }
        let digitsEnd = i
        while i > line.startIndex && IMAPCharacters.isDigit(line[i - 1]) { i -= 1 }
        let count = digitsEnd - i
        guard count >= 1, count <= 18, i > line.startIndex, line[i - 1] == UInt8(ascii: "{") else { return nil }
        return LiteralHeader(size: decimal(line[i..<digitsEnd]), nonSync: nonSync)
    }
}
