// One connection to a milter as a pure state machine: what to send for each step of an SMTP
// session (after option negotiation decided which steps the milter wants, with which macros, and
// which it answers), and what the milter's bytes mean. No sockets and no clocks: MilterLink does
// the I/O and the timing, the tests feed bytes.

/// One step of a session, as the filter stages produce them.
enum MilterStep: Sendable, Equatable {
    case connect(hostname: String, family: MilterFamily, port: UInt16, address: String)
    case helo(String)
    case mail([String])
    case rcpt([String])
    case data
    /// `value`: the field as received after the colon, leading space and folds (LF) kept.
    case header(name: String, value: String)
    case endOfHeaders
    /// At most `MilterConversation.maxBodyChunk` octets.
    case body([UInt8])
    case endOfMessage
    case abort
    case quit

    var name: String {
        switch self {
        case .connect: return "connect"
        case .helo: return "helo"
        case .mail: return "mail"
        case .rcpt: return "rcpt"
        case .data: return "data"
        case .header: return "header"
        case .endOfHeaders: return "eoh"
        case .body: return "body"
        case .endOfMessage: return "eom"
        case .abort: return "abort"
        case .quit: return "quit"
        }
    }

    /// The stage whose macros go before this step.
    var macroStage: MilterMacroStage? {
        switch self {
        case .connect: return .connect
        case .helo: return .helo
        case .mail: return .mail
        case .rcpt: return .rcpt
        case .data: return .data
        case .endOfHeaders: return .endOfHeaders
        case .endOfMessage: return .endOfMessage
        case .header, .body, .abort, .quit: return nil
        }
    }
}

/// The milter's final word on a step, with the changes it asked for before it (end of message).
struct MilterAnswer: Sendable, Equatable {
    enum Verdict: Sendable, Equatable {
        case `continue`, accept, discard, skip
        /// `reply` is the milter's own SMTP reply (SMFIR_REPLYCODE), if it gave one.
        case reject(reply: String?)
        case tempfail(reply: String?)
    }

    var verdict: Verdict
    /// Header, recipient, sender and body changes and quarantine, in the order the milter sent them.
    var modifications: [MilterReply] = []
}

enum MilterEvent: Sendable, Equatable {
    /// Option negotiation is done; steps may be sent.
    case negotiated
    /// The milter is still working on the step (SMFIR_PROGRESS): its time starts again.
    case progress
    case answer(MilterAnswer)
}

enum MilterProtocolError: Error, Equatable, CustomStringConvertible {
    case wire(MilterWireError)
    case unexpected(String)
    case negotiation(String)

    var description: String {
        switch self {
        case .wire(let e): return e.description
        case .unexpected(let what): return "milter protocol violation: \(what)"
        case .negotiation(let what): return "milter option negotiation failed: \(what)"
        }
    }
}

struct MilterConversation {
    /// libmilter's MILTER_CHUNK_SIZE: the largest body packet every milter accepts.
    static let maxBodyChunk = 65535

    private enum State: Equatable {
        case start, negotiating, ready, awaiting(String), failed
    }

    private var state = State.start
    private var decoder = MilterPacketDecoder()
    private let offeredActions: MilterActions
    private(set) var actions: MilterActions = []
    private(set) var flags: MilterProtocolFlags = []
    private(set) var version: UInt32 = 0
    /// The macros the milter asked for per stage (SETSYMLIST); a stage not listed gets all of ours.
    private(set) var macroLists: [MilterMacroStage: [String]] = [:]
    private var modifications: [MilterReply] = []
    /// The milter said SKIP during this message's body: no more body packets.
    private(set) var bodySkipped = false

    init(offeredActions: MilterActions = .all) {
        self.offeredActions = offeredActions
    }

    var isReady: Bool { state == .ready }

    /// The option negotiation packet that opens the conversation.
    mutating func negotiate() -> [UInt8] {
        precondition(state == .start, "negotiate once, first")
        state = .negotiating
        return MilterCommand.optionNegotiation(version: 6, actions: offeredActions, protocol: .offered).encoded()
    }

    /// What to send for `step` (empty when the milter asked not to get it) and whether an answer
    /// must be awaited before the next step. `macros` are every macro this client knows for the
    /// step's stage; only those the milter asked for are sent.
    mutating func send(_ step: MilterStep, macros: [(name: String, value: String)] = []) -> (bytes: [UInt8], awaitsAnswer: Bool) {
        precondition(state == .ready, "a step while \(state)")
        if case .body(let chunk) = step { precondition(chunk.count <= Self.maxBodyChunk, "body chunk over 65535 octets") }
        switch step {
        case .abort, .endOfMessage:
            bodySkipped = false
        default: break
        }
        if skips(step) { return ([], false) }
        var bytes: [UInt8] = []
        if let stage = step.macroStage, !macros.isEmpty {
            let wanted = macroLists[stage].map { list in macros.filter { m in list.contains { Self.sameMacro($0, m.name) } } } ?? macros
            if !wanted.isEmpty { bytes += MilterCommand.macros(stage, wanted).encoded() }
        }
        bytes += command(for: step).encoded()
        let answers = answered(step)
        if answers { state = .awaiting(step.name) }
        modifications = []
        return (bytes, answers)
    }

    /// Takes the milter's bytes (any chunking); returns what they mean, in order. Throws on
    /// anything out of place: the connection is then useless and the caller closes it.
    mutating func receive<Bytes: Sequence>(_ bytes: Bytes) throws -> [MilterEvent] where Bytes.Element == UInt8 {
        guard state != .failed else { throw MilterProtocolError.unexpected("data after a protocol error") }
        decoder.feed(bytes)
        var events: [MilterEvent] = []
        do {
            while let (code, data) = try decoder.next() {
                events += try take(try MilterReply.parse(code: code, data: data))
            }
        } catch let e as MilterWireError {
            state = .failed
            throw MilterProtocolError.wire(e)
        } catch {
            state = .failed
            throw error
        }
        return events
    }

    private mutating func take(_ reply: MilterReply) throws -> [MilterEvent] {
        switch state {
        case .negotiating:
            guard case .optionNegotiation(let v, let a, let f, let lists) = reply else {
                return try fail("\(reply) before option negotiation")
            }
            guard v >= 2 else { return try failNegotiation("version \(v)") }
            guard a.isSubset(of: offeredActions) else {
                return try failNegotiation("milter wants actions 0x\(String(a.subtracting(offeredActions).rawValue, radix: 16)) not offered")
            }
            // The body-size bits (SMFIP_MDS_256K/1M) ask for larger chunks, which 65535 satisfies.
            let wanted = f.subtracting(MilterProtocolFlags(rawValue: 0x3000_0000))
            guard wanted.isSubset(of: .offered) else {
                return try failNegotiation("milter wants protocol flags 0x\(String(wanted.subtracting(.offered).rawValue, radix: 16)) not offered")
            }
            version = v
            actions = a
            flags = wanted
            macroLists = lists
            state = .ready
            return [.negotiated]
        case .awaiting(let step):
            switch reply {
            case .progress:
                return [.progress]
            case .accept: return answer(.accept)
            case .continue: return answer(.continue)
            case .discard: return answer(.discard)
            case .reject: return answer(.reject(reply: nil))
            case .tempfail: return answer(.tempfail(reply: nil))
            case .replyCode(let code, let text):
                return answer(code >= 500 ? .reject(reply: text) : .tempfail(reply: text))
            case .skip:
                guard step == "body", flags.contains(.skip) else { return try fail("SKIP at \(step)") }
                bodySkipped = true
                return answer(.skip)
            case .addHeader, .insertHeader, .changeHeader, .addRecipient, .deleteRecipient, .changeFrom,
                 .replaceBody, .quarantine:
                guard step == "eom" else { return try fail("\(Self.kind(reply)) at \(step)") }
                guard actions.contains(Self.action(needed: reply)) else {
                    return try fail("\(Self.kind(reply)) without negotiating it")
                }
                modifications.append(reply)
                return []
            case .optionNegotiation, .shutdown, .connectionFailure:
                return try fail("\(Self.kind(reply)) at \(step)")
            }
        case .start, .ready, .failed:
            return try fail("unsolicited \(Self.kind(reply))")
        }
    }

    private mutating func answer(_ verdict: MilterAnswer.Verdict) -> [MilterEvent] {
        state = .ready
        let a = MilterAnswer(verdict: verdict, modifications: modifications)
        modifications = []
        return [.answer(a)]
    }

    private mutating func fail(_ what: String) throws -> [MilterEvent] {
        state = .failed
        throw MilterProtocolError.unexpected(what)
    }

    private mutating func failNegotiation(_ what: String) throws -> [MilterEvent] {
        state = .failed
        throw MilterProtocolError.negotiation(what)
    }

    private func skips(_ step: MilterStep) -> Bool {
        switch step {
        case .connect: return flags.contains(.noConnect)
        case .helo: return flags.contains(.noHelo)
        case .mail: return flags.contains(.noMail)
        case .rcpt: return flags.contains(.noRcpt)
        case .data: return flags.contains(.noData)
        case .header: return flags.contains(.noHeaders)
        case .endOfHeaders: return flags.contains(.noEndOfHeaders)
        case .body: return flags.contains(.noBody) || bodySkipped
        case .endOfMessage, .abort, .quit: return false
        }
    }

    private func answered(_ step: MilterStep) -> Bool {
        switch step {
        case .connect: return !flags.contains(.noReplyConnect)
        case .helo: return !flags.contains(.noReplyHelo)
        case .mail: return !flags.contains(.noReplyMail)
        case .rcpt: return !flags.contains(.noReplyRcpt)
        case .data: return !flags.contains(.noReplyData)
        case .header: return !flags.contains(.noReplyHeader)
        case .endOfHeaders: return !flags.contains(.noReplyEndOfHeaders)
        case .body: return !flags.contains(.noReplyBody)
        case .endOfMessage: return true
        case .abort, .quit: return false
        }
    }

    private func command(for step: MilterStep) -> MilterCommand {
        switch step {
        case .connect(let h, let f, let p, let a): return .connect(hostname: h, family: f, port: p, address: a)
        case .helo(let name): return .helo(name)
        case .mail(let args): return .mail(args)
        case .rcpt(let args): return .rcpt(args)
        case .data: return .data
        case .header(let name, let value):
            // `value` is as received; without SMFIP_HDR_LEADSPC a milter gets it without the
            // whitespace after the colon, as Sendmail sends it.
            return .header(name: name, value: flags.contains(.headerLeadingSpace) ? value : String(value.drop { $0 == " " || $0 == "\t" }))
        case .endOfHeaders: return .endOfHeaders
        case .body(let chunk): return .body(chunk)
        case .endOfMessage: return .endOfMessage
        case .abort: return .abort
        case .quit: return .quit
        }
    }

    /// `{auth_authen}` in a symbol list names the macro we call `{auth_authen}` or `auth_authen`.
    static func sameMacro(_ a: String, _ b: String) -> Bool {
        func bare(_ s: String) -> String { s.hasPrefix("{") && s.hasSuffix("}") ? String(s.dropFirst().dropLast()) : s }
        return bare(a) == bare(b)
    }

    static func action(needed reply: MilterReply) -> MilterActions {
        switch reply {
        case .addHeader: return .addHeaders
        case .insertHeader, .changeHeader: return .changeHeaders
        case .addRecipient(_, let args): return args == nil ? .addRecipients : .addRecipientsWithArguments
        case .deleteRecipient: return .deleteRecipients
        case .changeFrom: return .changeFrom
        case .replaceBody: return .changeBody
        case .quarantine: return .quarantine
        default: return []
        }
    }

    static func kind(_ reply: MilterReply) -> String {
        switch reply {
        case .optionNegotiation: return "OPTNEG"
        case .accept: return "ACCEPT"
        case .continue: return "CONTINUE"
        case .discard: return "DISCARD"
        case .reject: return "REJECT"
        case .tempfail: return "TEMPFAIL"
        case .skip: return "SKIP"
        case .progress: return "PROGRESS"
        case .replyCode: return "REPLYCODE"
        case .addHeader: return "ADDHEADER"
        case .insertHeader: return "INSHEADER"
        case .changeHeader: return "CHGHEADER"
        case .addRecipient: return "ADDRCPT"
        case .deleteRecipient: return "DELRCPT"
        case .changeFrom: return "CHGFROM"
        case .replaceBody: return "REPLBODY"
        case .quarantine: return "QUARANTINE"
        case .shutdown: return "SHUTDOWN"
        case .connectionFailure: return "CONN_FAIL"
        }
    }
}
