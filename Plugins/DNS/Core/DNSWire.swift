// The DNS wire format (RFC 1035 §4.1): DNSMessage to bytes and back. Pure functions over byte
// arrays. Everything a packet claims (counts, lengths, compression pointers) is checked against
// the bytes actually there before it is used, so a hostile or broken packet gives a
// DNSWireError, never a trap, and every loop is bounded by the packet's length.

/// Why bytes are not a well-formed DNS message (or a name cannot be put on the wire).
enum DNSWireError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The packet ends inside `what`, which starts at `offset`.
    case truncated(what: String, offset: Int)
    /// A length byte with the top bits 01 or 10: a label longer than 63 octets, or one of the
    /// reserved label types. `offset` is nil for a name given as text.
    case labelTooLong(length: Int, offset: Int?)
    /// A name longer than 255 octets on the wire.
    case nameTooLong(offset: Int?)
    /// A name given as text with an empty label (`a..b`).
    case emptyLabel(String)
    /// A compression pointer to an offset past the end of the packet.
    case pointerOutOfRange(offset: Int, target: Int)
    /// A compression pointer to a later offset: RFC 1035 pointers refer to prior occurrences.
    case pointerForward(offset: Int, target: Int)
    /// A compression pointer back into the labels of the name being read, which would loop forever.
    case pointerLoop(offset: Int, target: Int)
    /// A record whose RDLENGTH reaches past the end of the packet.
    case rdataPastEnd(type: String, offset: Int, length: Int, available: Int)
    /// A record whose data does not fill exactly its RDLENGTH (or is malformed for its type).
    case badRData(type: String, offset: Int, reason: String)

    var description: String {
        switch self {
        case .truncated(let what, let offset):
            return "truncated packet: \(what) at offset \(offset) runs past the end"
        case .labelTooLong(let length, let offset?):
            return "label length byte \(length) at offset \(offset): labels are at most 63 octets (64...191 are reserved label types)"
        case .labelTooLong(let length, nil):
            return "label of \(length) octets: labels are at most 63 octets"
        case .nameTooLong(let offset?):
            return "name starting at offset \(offset) is longer than 255 octets"
        case .nameTooLong(nil):
            return "name is longer than 255 octets"
        case .emptyLabel(let text):
            return "empty label in name '\(text)'"
        case .pointerOutOfRange(let offset, let target):
            return "compression pointer at offset \(offset) points to \(target), past the end of the packet"
        case .pointerForward(let offset, let target):
            return "compression pointer at offset \(offset) points forward to \(target)"
        case .pointerLoop(let offset, let target):
            return "compression pointer at offset \(offset) points to \(target), inside the name it belongs to (a loop)"
        case .rdataPastEnd(let type, let offset, let length, let available):
            return "\(type) record data at offset \(offset) claims \(length) octets, only \(available) remain"
        case .badRData(let type, let offset, let reason):
            return "\(type) record data at offset \(offset): \(reason)"
        }
    }
}

enum DNSWire {
    // MARK: Encoding

    /// The message's bytes, without name compression (queries carry one name; the tests' servers
    /// build their answers with this too). Names are assumed valid: `DNSName` keeps them so.
    static func encode(_ message: DNSMessage) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(512)
        let h = message.header
        var flags: UInt16 = UInt16(h.opcode & 0x0F) << 11 | UInt16(h.rcode & 0x0F)
        if h.isResponse { flags |= 0x8000 }
        if h.authoritative { flags |= 0x0400 }
        if h.truncated { flags |= 0x0200 }
        if h.recursionDesired { flags |= 0x0100 }
        if h.recursionAvailable { flags |= 0x0080 }
        if h.authenticData { flags |= 0x0020 }
        if h.checkingDisabled { flags |= 0x0010 }
        for value in [h.id, flags, UInt16(message.questions.count), UInt16(message.answers.count),
                      UInt16(message.authorities.count), UInt16(message.additionals.count)] {
            put16(value, into: &out)
        }
        for question in message.questions {
            putName(question.name, into: &out)
            put16(question.type.rawValue, into: &out)
            put16(question.recordClass, into: &out)
        }
        for record in message.answers + message.authorities + message.additionals {
            putRecord(record, into: &out)
        }
        return out
    }

    private static func put16(_ value: UInt16, into out: inout [UInt8]) {
        out.append(UInt8(value >> 8))
        out.append(UInt8(value & 0xFF))
    }

    private static func put32(_ value: UInt32, into out: inout [UInt8]) {
        put16(UInt16(value >> 16), into: &out)
        put16(UInt16(value & 0xFFFF), into: &out)
    }

    private static func putName(_ name: DNSName, into out: inout [UInt8]) {
        for label in name.labels {
            out.append(UInt8(label.count))
            out += label
        }
        out.append(0)
    }

    private static func putRecord(_ record: DNSResourceRecord, into out: inout [UInt8]) {
        putName(record.name, into: &out)
        put16(record.type.rawValue, into: &out)
        put16(record.recordClass, into: &out)
        put32(record.ttl, into: &out)
        var data: [UInt8] = []
        switch record.data {
        case .a(let bytes), .aaaa(let bytes), .unknown(let bytes):
            data = bytes
        case .mx(let preference, let exchange):
            put16(preference, into: &data)
            putName(exchange, into: &data)
        case .txt(let strings):
            for string in strings {
                // A character-string holds at most 255 octets; longer text is the caller's to split.
                let chunk = string.prefix(255)
                data.append(UInt8(chunk.count))
                data += chunk
            }
        case .ptr(let name), .cname(let name), .ns(let name):
            putName(name, into: &data)
        case .soa(let soa):
            putName(soa.primaryServer, into: &data)
            putName(soa.responsibleMailbox, into: &data)
            for value in [soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum] { put32(value, into: &data) }
        case .opt(let options):
            for option in options {
                put16(option.code, into: &data)
                put16(UInt16(option.data.count), into: &data)
                data += option.data
            }
        }
        put16(UInt16(data.count), into: &out)
        out += data
    }

    // MARK: Decoding

    /// Reads a whole message. Octets after the last counted record are ignored.
    static func decode(_ bytes: [UInt8]) throws -> DNSMessage {
        var reader = WireReader(bytes: bytes)
        let id = try reader.read16("header")
        let flags = try reader.read16("header")
        let counts = [try reader.read16("header"), try reader.read16("header"),
                      try reader.read16("header"), try reader.read16("header")]
        let header = DNSHeader(
            id: id, isResponse: flags & 0x8000 != 0, opcode: UInt8((flags >> 11) & 0x0F),
            authoritative: flags & 0x0400 != 0, truncated: flags & 0x0200 != 0,
            recursionDesired: flags & 0x0100 != 0, recursionAvailable: flags & 0x0080 != 0,
            authenticData: flags & 0x0020 != 0, checkingDisabled: flags & 0x0010 != 0,
            rcode: UInt8(flags & 0x000F))
        var message = DNSMessage(header: header)
        // Each entry consumes at least five octets, so these loops end with the packet.
        for _ in 0..<counts[0] {
            let name = try reader.readName()
            let type = try reader.read16("question type")
            let recordClass = try reader.read16("question class")
            message.questions.append(DNSQuestion(name: name, type: DNSRecordType(rawValue: type), recordClass: recordClass))
        }
        for _ in 0..<counts[1] { message.answers.append(try reader.readRecord()) }
        for _ in 0..<counts[2] { message.authorities.append(try reader.readRecord()) }
        for _ in 0..<counts[3] { message.additionals.append(try reader.readRecord()) }
        return message
    }
}

/// A cursor over a packet. `limit` is where sequential reads must stop (the end of a record's
/// data while it is read); compression pointers may still refer to anything before them.
struct WireReader {
    let bytes: [UInt8]
    var offset = 0
    var limit: Int

    init(bytes: [UInt8]) {
        self.bytes = bytes
        self.limit = bytes.count
    }

    mutating func read8(_ what: String) throws -> UInt8 {
        guard offset < limit else { throw DNSWireError.truncated(what: what, offset: offset) }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func read16(_ what: String) throws -> UInt16 {
        guard offset + 2 <= limit else { throw DNSWireError.truncated(what: what, offset: offset) }
        defer { offset += 2 }
        return UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
    }

    mutating func read32(_ what: String) throws -> UInt32 {
        guard offset + 4 <= limit else { throw DNSWireError.truncated(what: what, offset: offset) }
        defer { offset += 4 }
        return bytes[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) }
    }

    mutating func readBytes(_ count: Int, _ what: String) throws -> [UInt8] {
        guard count >= 0, offset + count <= limit else { throw DNSWireError.truncated(what: what, offset: offset) }
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    /// Reads a possibly compressed name (RFC 1035 §4.1.4) and leaves `offset` after it (after the
    /// first pointer, if any). A pointer must lead strictly before the first octet of the run of
    /// labels it ends: that forbids forward pointers and loops, and makes each jump go further
    /// back, so the walk ends.
    mutating func readName() throws -> DNSName {
        let start = offset
        var labels: [[UInt8]] = []
        var wireLength = 1
        var position = offset
        var runStart = offset
        var runLimit = limit
        var resumeAt: Int?
        while true {
            guard position < runLimit else { throw DNSWireError.truncated(what: "name", offset: start) }
            let length = Int(bytes[position])
            switch length {
            case 0:
                offset = resumeAt ?? position + 1
                return DNSName(validLabels: labels)
            case 1...DNSName.maxLabelLength:
                guard position + 1 + length <= runLimit else {
                    throw DNSWireError.truncated(what: "name", offset: start)
                }
                wireLength += length + 1
                guard wireLength <= DNSName.maxWireLength else { throw DNSWireError.nameTooLong(offset: start) }
                labels.append(Array(bytes[position + 1...position + length]))
                position += 1 + length
            case 0xC0...0xFF:
                guard position + 2 <= runLimit else { throw DNSWireError.truncated(what: "name", offset: start) }
                let target = (length & 0x3F) << 8 | Int(bytes[position + 1])
                if target >= bytes.count { throw DNSWireError.pointerOutOfRange(offset: position, target: target) }
                if target > position { throw DNSWireError.pointerForward(offset: position, target: target) }
                if target >= runStart { throw DNSWireError.pointerLoop(offset: position, target: target) }
                if resumeAt == nil { resumeAt = position + 2 }
                position = target
                runStart = target
                // Earlier names lie wholly before the current one, outside any record's limit.
                runLimit = bytes.count
            default:
                throw DNSWireError.labelTooLong(length: length, offset: position)
            }
        }
    }

    mutating func readRecord() throws -> DNSResourceRecord {
        let name = try readName()
        let type = DNSRecordType(rawValue: try read16("record type"))
        let recordClass = try read16("record class")
        let ttl = try read32("record TTL")
        let length = Int(try read16("record length"))
        let dataStart = offset
        guard dataStart + length <= limit else {
            throw DNSWireError.rdataPastEnd(type: type.description, offset: dataStart, length: length, available: limit - dataStart)
        }
        let outerLimit = limit
        limit = dataStart + length
        defer { limit = outerLimit }
        let data = try readRecordData(type: type, start: dataStart, length: length)
        guard offset == dataStart + length else {
            throw DNSWireError.badRData(type: type.description, offset: dataStart,
                                        reason: "\(offset - dataStart) octets used of RDLENGTH \(length)")
        }
        // RFC 2181 §8: a TTL with the top bit set is to be read as zero.
        return DNSResourceRecord(name: name, type: type, recordClass: recordClass,
                                 ttl: type != .opt && ttl & 0x8000_0000 != 0 ? 0 : ttl, data: data)
    }

    private mutating func readRecordData(type: DNSRecordType, start: Int, length: Int) throws -> DNSRecordData {
        func bad(_ reason: String) -> DNSWireError { .badRData(type: type.description, offset: start, reason: reason) }
        do {
            switch type {
            case .a:
                guard length == 4 else { throw bad("expected 4 octets, found \(length)") }
                return .a(try readBytes(4, "A"))
            case .aaaa:
                guard length == 16 else { throw bad("expected 16 octets, found \(length)") }
                return .aaaa(try readBytes(16, "AAAA"))
            case .mx:
                let preference = try read16("MX preference")
                return .mx(preference: preference, exchange: try readName())
            case .txt:
                var strings: [[UInt8]] = []
                while offset < limit {
                    let count = Int(try read8("TXT string length"))
                    strings.append(try readBytes(count, "TXT string"))
                }
                return .txt(strings)
            case .ptr: return .ptr(try readName())
            case .cname: return .cname(try readName())
            case .ns: return .ns(try readName())
            case .soa:
                let primary = try readName()
                let mailbox = try readName()
                return .soa(DNSSOA(primaryServer: primary, responsibleMailbox: mailbox, serial: try read32("SOA serial"),
                                   refresh: try read32("SOA refresh"), retry: try read32("SOA retry"),
                                   expire: try read32("SOA expire"), minimum: try read32("SOA minimum")))
            case .opt:
                var options: [EDNSOption] = []
                while offset < limit {
                    let code = try read16("EDNS option code")
                    let count = Int(try read16("EDNS option length"))
                    options.append(EDNSOption(code: code, data: try readBytes(count, "EDNS option")))
                }
                return .opt(options)
            default:
                return .unknown(try readBytes(length, type.description))
            }
        } catch DNSWireError.truncated(let what, _) {
            // The record's end was checked against the packet's: this is a bad RDLENGTH.
            throw bad("\(what) runs past the end of the record data (RDLENGTH \(length))")
        }
    }
}
