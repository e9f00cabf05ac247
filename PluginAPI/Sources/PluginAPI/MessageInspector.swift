/// A message as a content filter sees it at end of message: the envelope, the client, and the
/// bytes as the client sent them (header block, empty line, body; CRLF line ends).
public struct FilterMessage: Sendable {
    public var connection: FilterConnection
    public var helo: String?
    public var sender: String
    public var senderParameters: [String: String]
    public var recipients: [String]
    /// The header block as received, unfolded.
    public var fields: [(name: String, value: String)]
    /// The whole message, or its first `maxBufferedBytes` when `isTruncated`.
    public var bytes: [UInt8]
    /// The message's real size (what SIZE and the queue see).
    public var size: Int
    /// The message was bigger than the inspector buffers: `bytes` is its head only.
    public var isTruncated: Bool
    /// The fields the chain's authentication filters add above the message (Authentication-
    /// Results, Received-SPF): for judging, not part of `fields`, whose positions changes refer to.
    public var precedingFields: [(name: String, value: String)] = []

    public init(connection: FilterConnection, helo: String? = nil, sender: String, senderParameters: [String: String] = [:],
                recipients: [String], fields: [(name: String, value: String)], bytes: [UInt8], size: Int? = nil, isTruncated: Bool = false) {
        self.connection = connection
        self.helo = helo
        self.sender = sender
        self.senderParameters = senderParameters
        self.recipients = recipients
        self.fields = fields
        self.bytes = bytes
        self.size = size ?? bytes.count
        self.isTruncated = isTruncated
    }

    /// A message from its bytes alone (tests, tools): the header block parsed out of them.
    public init(bytes: [UInt8], sender: String, recipients: [String], connection: FilterConnection) {
        let block = MailHeaderBlock(parsing: bytes)
        self.init(connection: connection, sender: sender, recipients: recipients,
                  fields: block.fields.map { ($0.name, $0.text) }, bytes: bytes)
    }

    /// The first header field called `name` (case ignored), unfolded.
    public func header(_ name: String) -> String? { fields.first { $0.name.lowercased() == name.lowercased() }?.value }

    /// The fields a content filter judges: those the authentication filters added, then the message's own.
    public var judgedFields: [(name: String, value: String)] { precedingFields + fields }

    /// Every header field called `name`, in order.
    public func headers(_ name: String) -> [String] { fields.filter { $0.name.lowercased() == name.lowercased() }.map(\.value) }

    /// The MIME structure of `bytes`.
    public func mime(limits: MIMEParserLimits = MIMEParserLimits()) -> MIMEMessage { MIMEMessage(parsing: bytes, limits: limits) }
}

/// A content filter that wants the whole message at once (anti-virus, attachments, rules,
/// disclaimers, DLP) rather than stage by stage: `InspectingFilter` collects the envelope and
/// the message and calls `inspect` at end of message.
public protocol MessageInspector: Sendable {
    /// The most a transaction buffers; bigger messages reach `inspect` truncated.
    var maxBufferedBytes: Int { get }
    /// An early verdict at RCPT (a recipient count, a blocked sender): `.continue` by default.
    func recipient(_ recipient: String, sender: String, connection: FilterConnection) async -> FilterVerdict
    /// The verdict on the complete message and the changes to make.
    func inspect(_ message: FilterMessage) async -> (FilterVerdict, [FilterModification])
    /// When `inspect` runs in the chain's end of message (`FilterPhase`).
    var phase: FilterPhase { get }
}

extension MessageInspector {
    public var maxBufferedBytes: Int { 64 << 20 }
    public var phase: FilterPhase { .content }
    public func recipient(_ recipient: String, sender: String, connection: FilterConnection) async -> FilterVerdict { .continue }
}

/// The `MailFilter` around a `MessageInspector`.
public struct InspectingFilter<Inspector: MessageInspector>: MailFilter {
    public let inspector: Inspector

    public init(_ inspector: Inspector) { self.inspector = inspector }

    public var phase: FilterPhase { inspector.phase }

    public func makeTransaction(_ connection: FilterConnection) -> any FilterTransaction {
        InspectingTransaction(inspector: inspector, connection: connection)
    }
}

/// One connection's worth of collecting: the envelope and the message's bytes, rebuilt from the
/// stages as the client sent them.
public final class InspectingTransaction<Inspector: MessageInspector>: FilterTransaction {
    private struct State {
        var connection: FilterConnection
        var helo: String?
        var sender = ""
        var senderParameters: [String: String] = [:]
        var recipients: [String] = []
        var fields: [(name: String, value: String)] = []
        var bytes: [UInt8] = []
        var size = 0
        var truncated = false
        var precedingFields: [(name: String, value: String)] = []

        mutating func append(_ chunk: [UInt8], limit: Int) {
            size += chunk.count
            let room = limit - bytes.count
            if room >= chunk.count {
                bytes += chunk
            } else {
                if room > 0 { bytes += chunk.prefix(room) }
                truncated = true
            }
        }
    }

    private let inspector: Inspector
    private let state: NIOLockedValueBox<State>

    init(inspector: Inspector, connection: FilterConnection) {
        self.inspector = inspector
        self.state = NIOLockedValueBox(State(connection: connection))
    }

    public func connectionChanged(_ connection: FilterConnection) {
        state.withLockedValue { $0.connection = connection }
    }

    public func precedingFields(_ fields: [(name: String, value: String)]) {
        state.withLockedValue { $0.precedingFields = fields }
    }

    public func helo(_ name: String) async -> FilterVerdict {
        state.withLockedValue { $0.helo = name }
        return .continue
    }

    public func mailFrom(_ sender: String, parameters: [String: String]) async -> FilterVerdict {
        state.withLockedValue { s in
            let keep = (s.connection, s.helo)
            s = State(connection: keep.0)
            s.helo = keep.1
            s.sender = sender
            s.senderParameters = parameters
        }
        return .continue
    }

    public func rcptTo(_ recipient: String, parameters: [String: String]) async -> FilterVerdict {
        let (sender, connection) = state.withLockedValue { ($0.sender, $0.connection) }
        let verdict = await inspector.recipient(recipient, sender: sender, connection: connection)
        // Kept unless this filter refuses it (a quarantine or discard verdict accepts it).
        if verdict.severity < FilterVerdict.tempfail(MailReply(451, nil, "")).severity {
            state.withLockedValue { $0.recipients.append(recipient) }
        }
        return verdict
    }

    public func headers(_ fields: [(name: String, value: String)], raw: [String]) async -> FilterVerdict {
        var block: [UInt8] = []
        for (i, f) in fields.enumerated() {
            block += Array(f.name.utf8) + [58]
            // Folds come as LF (as milters get them); the message had CRLF.
            for b in (i < raw.count ? raw[i] : " " + f.value).utf8 {
                if b == 10 { block += [13, 10] } else { block.append(b) }
            }
            block += [13, 10]
        }
        block += [13, 10]
        state.withLockedValue { s in
            s.fields = fields
            s.append(block, limit: inspector.maxBufferedBytes)
        }
        return .continue
    }

    public func body(_ chunk: [UInt8]) async -> FilterVerdict {
        let limit = inspector.maxBufferedBytes
        state.withLockedValue { $0.append(chunk, limit: limit) }
        return .continue
    }

    public func endOfMessage() async -> (FilterVerdict, [FilterModification]) {
        let s = state.withLockedValue { s -> State in
            let out = s
            s.bytes = []
            return out
        }
        var message = FilterMessage(connection: s.connection, helo: s.helo, sender: s.sender, senderParameters: s.senderParameters,
                                    recipients: s.recipients, fields: s.fields, bytes: s.bytes, size: s.size, isTruncated: s.truncated)
        message.precedingFields = s.precedingFields
        return await inspector.inspect(message)
    }

    public func abort() async {
        state.withLockedValue { s in
            s.bytes = []
            s.recipients = []
        }
    }
}
