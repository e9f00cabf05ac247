// The Sendmail milter protocol, version 6, as libmilter speaks it (mfapi.h, mfdef.h): every
// packet is a 4-octet big-endian length (counting the command octet), a command octet and its
// data. Strings are NUL-terminated. Pure: bytes in, typed packets out, and the reverse.

/// The command octets the MTA sends (SMFIC_*).
enum MilterCommandCode: UInt8 {
    case abort = 0x41        // 'A'
    case body = 0x42         // 'B'
    case connect = 0x43      // 'C'
    case macro = 0x44        // 'D'
    case endOfMessage = 0x45 // 'E'
    case helo = 0x48         // 'H'
    case header = 0x4C       // 'L'
    case mail = 0x4D         // 'M'
    case endOfHeaders = 0x4E // 'N'
    case optionNegotiation = 0x4F // 'O'
    case quit = 0x51         // 'Q'
    case rcpt = 0x52         // 'R'
    case data = 0x54         // 'T'
}

/// Actions a milter may take at end of message (SMFIF_*), negotiated.
struct MilterActions: OptionSet, Sendable, Hashable {
    let rawValue: UInt32
    static let addHeaders = MilterActions(rawValue: 0x01)
    static let changeBody = MilterActions(rawValue: 0x02)
    static let addRecipients = MilterActions(rawValue: 0x04)
    static let deleteRecipients = MilterActions(rawValue: 0x08)
    static let changeHeaders = MilterActions(rawValue: 0x10)
    static let quarantine = MilterActions(rawValue: 0x20)
    static let changeFrom = MilterActions(rawValue: 0x40)
    static let addRecipientsWithArguments = MilterActions(rawValue: 0x80)
    static let setSymbolList = MilterActions(rawValue: 0x100)
    /// Everything this client carries out.
    static let all: MilterActions = [.addHeaders, .changeBody, .addRecipients, .deleteRecipients, .changeHeaders,
                                     .quarantine, .changeFrom, .addRecipientsWithArguments, .setSymbolList]
}

/// Protocol steps a milter may skip or not answer (SMFIP_*), negotiated.
struct MilterProtocolFlags: OptionSet, Sendable, Hashable {
    let rawValue: UInt32
    static let noConnect = MilterProtocolFlags(rawValue: 0x1)
    static let noHelo = MilterProtocolFlags(rawValue: 0x2)
    static let noMail = MilterProtocolFlags(rawValue: 0x4)
    static let noRcpt = MilterProtocolFlags(rawValue: 0x8)
    static let noBody = MilterProtocolFlags(rawValue: 0x10)
    static let noHeaders = MilterProtocolFlags(rawValue: 0x20)
    static let noEndOfHeaders = MilterProtocolFlags(rawValue: 0x40)
    static let noReplyHeader = MilterProtocolFlags(rawValue: 0x80)
    static let noUnknown = MilterProtocolFlags(rawValue: 0x100)
    static let noData = MilterProtocolFlags(rawValue: 0x200)
    /// The MTA understands SKIP during the body.
    static let skip = MilterProtocolFlags(rawValue: 0x400)
    static let rejectedRecipients = MilterProtocolFlags(rawValue: 0x800)
    static let noReplyConnect = MilterProtocolFlags(rawValue: 0x1000)
    static let noReplyHelo = MilterProtocolFlags(rawValue: 0x2000)
    static let noReplyMail = MilterProtocolFlags(rawValue: 0x4000)
    static let noReplyRcpt = MilterProtocolFlags(rawValue: 0x8000)
    static let noReplyData = MilterProtocolFlags(rawValue: 0x10000)
    static let noReplyUnknown = MilterProtocolFlags(rawValue: 0x20000)
    static let noReplyEndOfHeaders = MilterProtocolFlags(rawValue: 0x40000)
    static let noReplyBody = MilterProtocolFlags(rawValue: 0x80000)
    /// Header values are sent with their leading space.
    static let headerLeadingSpace = MilterProtocolFlags(rawValue: 0x100000)
    /// What this client offers: every step may be skipped or go unanswered; SKIP; leading space.
    /// Not offered: rejected recipients (the host never shows a filter a refused RCPT) and the
    /// larger body chunks (libmilter's default of 65535 is what every milter handles).
    static let offered: MilterProtocolFlags = [.noConnect, .noHelo, .noMail, .noRcpt, .noBody, .noHeaders, .noEndOfHeaders,
                                               .noReplyHeader, .noUnknown, .noData, .skip, .noReplyConnect, .noReplyHelo,
                                               .noReplyMail, .noReplyRcpt, .noReplyData, .noReplyUnknown,
                                               .noReplyEndOfHeaders, .noReplyBody, .headerLeadingSpace]
}

/// The stages a milter may ask macros for (SMFIM_*), in the order of the symbol-list indices.
enum MilterMacroStage: UInt32, Sendable, CaseIterable {
    case connect = 0, helo, mail, rcpt, data, endOfMessage, endOfHeaders

    /// The command octet a macro packet for this stage names.
    var command: MilterCommandCode {
        switch self {
        case .connect: return .connect
        case .helo: return .helo
        case .mail: return .mail
        case .rcpt: return .rcpt
        case .data: return .data
        case .endOfMessage: return .endOfMessage
        case .endOfHeaders: return .endOfHeaders
        }
    }
}

/// Address families of SMFIC_CONNECT.
enum MilterFamily: UInt8, Sendable {
    case unknown = 0x55 // 'U'
    case unix = 0x4C    // 'L'
    case inet = 0x34    // '4'
    case inet6 = 0x36   // '6'
}

/// A packet from the MTA to the milter.
enum MilterCommand: Sendable, Equatable {
    case optionNegotiation(version: UInt32, actions: MilterActions, protocol: MilterProtocolFlags)
    case macros(MilterMacroStage, [(name: String, value: String)])
    case connect(hostname: String, family: MilterFamily, port: UInt16, address: String)
    case helo(String)
    /// The sender in angle brackets, then the ESMTP parameters.
    case mail([String])
    case rcpt([String])
    case data
    case header(name: String, value: String)
    case endOfHeaders
    case body([UInt8])
    case endOfMessage
    case abort
    case quit

    static func == (a: MilterCommand, b: MilterCommand) -> Bool { a.encoded() == b.encoded() }

    /// The packet as it goes on the wire.
    func encoded() -> [UInt8] {
        var data: [UInt8] = []
        let code: MilterCommandCode
        switch self {
        case .optionNegotiation(let version, let actions, let flags):
            code = .optionNegotiation
            data = MilterWire.uint32(version) + MilterWire.uint32(actions.rawValue) + MilterWire.uint32(flags.rawValue)
        case .macros(let stage, let pairs):
            code = .macro
            data = [stage.command.rawValue]
            for (name, value) in pairs { data += MilterWire.cString(name) + MilterWire.cString(value) }
        case .connect(let hostname, let family, let port, let address):
            code = .connect
            data = MilterWire.cString(hostname) + [family.rawValue]
            if family != .unknown { data += [UInt8(port >> 8), UInt8(port & 0xFF)] + MilterWire.cString(address) }
        case .helo(let name):
            code = .helo
            data = MilterWire.cString(name)
        case .mail(let args):
            code = .mail
            data = args.flatMap(MilterWire.cString)
        case .rcpt(let args):
            code = .rcpt
            data = args.flatMap(MilterWire.cString)
        case .data: code = .data
        case .header(let name, let value):
            code = .header
            data = MilterWire.cString(name) + MilterWire.cString(value)
        case .endOfHeaders: code = .endOfHeaders
        case .body(let chunk):
            code = .body
            data = chunk
        case .endOfMessage: code = .endOfMessage
        case .abort: code = .abort
        case .quit: code = .quit
        }
        return MilterWire.uint32(UInt32(data.count + 1)) + [code.rawValue] + data
    }
}

/// A packet from the milter to the MTA (SMFIR_*).
enum MilterReply: Sendable, Equatable {
    case optionNegotiation(version: UInt32, actions: MilterActions, protocol: MilterProtocolFlags, macros: [MilterMacroStage: [String]])
    case accept
    case `continue`
    case discard
    case reject
    case tempfail
    case skip
    case progress
    /// A full SMTP reply: the code, the enhanced status (if any) and the text.
    case replyCode(code: Int, text: String)
    case addHeader(name: String, value: String)
    case insertHeader(index: UInt32, name: String, value: String)
    case changeHeader(index: UInt32, name: String, value: String)
    case addRecipient(String, arguments: String?)
    case deleteRecipient(String)
    case changeFrom(String, arguments: String?)
    case replaceBody([UInt8])
    case quarantine(reason: String)
    case shutdown
    case connectionFailure

    /// Reads one packet's command octet and data. Anything that does not match its command's
    /// layout is an error (a milter speaking something else must not be half understood).
    static func parse(code: UInt8, data: [UInt8]) throws -> MilterReply {
        var reader = MilterReader(data)
        let reply: MilterReply
        switch code {
        case 0x4F: // 'O'
            let version = try reader.uint32(), actions = try reader.uint32(), flags = try reader.uint32()
            var lists: [MilterMacroStage: [String]] = [:]
            while !reader.atEnd {
                let index = try reader.uint32()
                guard let stage = MilterMacroStage(rawValue: index) else { throw MilterWireError.malformed("macro stage \(index)") }
                lists[stage] = try reader.string().split(separator: " ").map(String.init)
            }
            return .optionNegotiation(version: version, actions: MilterActions(rawValue: actions),
                                      protocol: MilterProtocolFlags(rawValue: flags), macros: lists)
        case 0x61: reply = .accept       // 'a'
        case 0x63: reply = .continue     // 'c'
        case 0x64: reply = .discard      // 'd'
        case 0x72: reply = .reject       // 'r'
        case 0x74: reply = .tempfail     // 't'
        case 0x73: reply = .skip         // 's'
        case 0x70: reply = .progress     // 'p'
        case 0x34: reply = .shutdown     // '4'
        case 0x66: reply = .connectionFailure // 'f'
        case 0x79: // 'y'
            let text = try reader.string()
            guard text.utf8.count >= 3, let code = Int(text.prefix(3)), (400...599).contains(code) else {
                throw MilterWireError.malformed("reply code '\(text.prefix(40))'")
            }
            reply = .replyCode(code: code, text: text)
        case 0x68: reply = .addHeader(name: try reader.string(), value: try reader.string())       // 'h'
        case 0x69: reply = .insertHeader(index: try reader.uint32(), name: try reader.string(), value: try reader.string()) // 'i'
        case 0x6D: reply = .changeHeader(index: try reader.uint32(), name: try reader.string(), value: try reader.string()) // 'm'
        case 0x2B: reply = .addRecipient(try reader.string(), arguments: nil)                       // '+'
        case 0x32: reply = .addRecipient(try reader.string(), arguments: reader.atEnd ? nil : try reader.string()) // '2'
        case 0x2D: reply = .deleteRecipient(try reader.string())                                    // '-'
        case 0x65: reply = .changeFrom(try reader.string(), arguments: reader.atEnd ? nil : try reader.string()) // 'e'
        case 0x62: return .replaceBody(data)                                                        // 'b'
        case 0x71: reply = .quarantine(reason: try reader.string())                                 // 'q'
        default: throw MilterWireError.unknownReply(code)
        }
        guard reader.atEnd else { throw MilterWireError.malformed("trailing data after '\(Character(Unicode.Scalar(code)))'") }
        return reply
    }
}

enum MilterWireError: Error, Equatable, CustomStringConvertible {
    case malformed(String)
    case unknownReply(UInt8)
    case badLength(UInt32)

    var description: String {
        switch self {
        case .malformed(let what): return "malformed milter packet: \(what)"
        case .unknownReply(let code): return "unknown milter reply 0x\(String(code, radix: 16))"
        case .badLength(let n): return "milter packet length \(n) out of range"
        }
    }
}

enum MilterWire {
    static func uint32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }

    /// A string as milter sends it: its UTF-8 octets without NULs, then a NUL.
    static func cString(_ s: String) -> [UInt8] { Array(s.utf8).filter { $0 != 0 } + [0] }

    /// The largest packet a milter may send: a replaced body arrives in chunks of at most 64 KiB in
    /// practice; 16 MiB leaves room without letting a broken peer make us buffer without end.
    static let maxPacket: UInt32 = 16 << 20
}

/// Reads the fields of one packet's data.
struct MilterReader {
    private let bytes: [UInt8]
    private var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var atEnd: Bool { offset == bytes.count }

    mutating func uint32() throws -> UInt32 {
        guard bytes.count - offset >= 4 else { throw MilterWireError.malformed("short integer") }
        let v = bytes[offset..<offset + 4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        offset += 4
        return v
    }

    mutating func string() throws -> String {
        guard let end = bytes[offset...].firstIndex(of: 0) else { throw MilterWireError.malformed("string without NUL") }
        let s = String(decoding: bytes[offset..<end], as: UTF8.self)
        offset = end + 1
        return s
    }
}

/// Splits the milter's byte stream into packets, whatever the chunking.
struct MilterPacketDecoder {
    private var buffer: [UInt8] = []

    mutating func feed<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 { buffer += bytes }

    /// The next whole packet as (command octet, data), nil until one has arrived.
    mutating func next() throws -> (code: UInt8, data: [UInt8])? {
        guard buffer.count >= 4 else { return nil }
        let length = buffer[0..<4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        guard length >= 1 && length <= MilterWire.maxPacket else { throw MilterWireError.badLength(length) }
        guard buffer.count >= 4 + Int(length) else { return nil }
        let code = buffer[4]
        let data = Array(buffer[5..<4 + Int(length)])
        buffer.removeFirst(4 + Int(length))
        return (code, data)
    }
}
