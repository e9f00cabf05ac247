// DNS messages as values (RFC 1035 §4.1, EDNS0 of RFC 6891), with no I/O and no imports:
// DNSWire.swift turns them into bytes and back, DNSAnswer.swift reads what a reply means. The
// test target compiles these files through symlinks and feeds them bytes directly.

/// A domain name as its labels (raw octets). The codec keeps every name within RFC 1035's limits:
/// labels of 1...63 octets, at most 255 octets on the wire.
struct DNSName: Sendable, CustomStringConvertible {
    static let maxLabelLength = 63
    static let maxWireLength = 255

    var labels: [[UInt8]]

    static let root = DNSName(validLabels: [])

    /// For labels already checked against the limits (the decoder checks as it reads).
    init(validLabels labels: [[UInt8]]) {
        self.labels = labels
    }

    /// Dotted ASCII text (`mx.example.org`, a trailing dot allowed; `.` or `""` is the root).
    /// Escapes (`\.`) are not interpreted: mail names never need them.
    init(_ text: String) throws {
        var text = Substring(text)
        if text.hasSuffix(".") { text = text.dropLast() }
        if text.isEmpty {
            self.labels = []
            return
        }
        var labels: [[UInt8]] = []
        var wireLength = 1
        for part in text.split(separator: ".", omittingEmptySubsequences: false) {
            let label = Array(part.utf8)
            guard !label.isEmpty else { throw DNSWireError.emptyLabel(String(text)) }
            guard label.count <= Self.maxLabelLength else {
                throw DNSWireError.labelTooLong(length: label.count, offset: nil)
            }
            wireLength += label.count + 1
            guard wireLength <= Self.maxWireLength else { throw DNSWireError.nameTooLong(offset: nil) }
            labels.append(label)
        }
        self.labels = labels
    }

    /// Octets on the wire without compression: each label with its length byte, then the root's 0.
    var wireLength: Int { labels.reduce(1) { $0 + $1.count + 1 } }

    /// Dotted text without the trailing dot (`.` for the root); octets that are not printable
    /// ASCII, dots and backslashes inside a label are written `\DDD` as in master files.
    var description: String {
        if labels.isEmpty { return "." }
        return labels.map { label in
            var text = ""
            for octet in label {
                if octet > 0x20 && octet < 0x7F && octet != UInt8(ascii: ".") && octet != UInt8(ascii: "\\") {
                    text.unicodeScalars.append(Unicode.Scalar(octet))
                } else {
                    let digits = String(octet)
                    text += "\\" + String(repeating: "0", count: 3 - digits.count) + digits
                }
            }
            return text
        }.joined(separator: ".")
    }

    /// The name with ASCII letters folded to lower case: DNS compares names without case (RFC 4343).
    var lowercased: DNSName {
        DNSName(validLabels: labels.map { $0.map { (0x41...0x5A).contains($0) ? $0 | 0x20 : $0 } })
    }

    /// Whether both are the same name, ignoring ASCII case.
    func matches(_ other: DNSName) -> Bool {
        labels.count == other.labels.count && lowercased.labels == other.lowercased.labels
    }
}

/// A record type (RFC 1035 §3.2.2 and later RFCs). Unknown values are kept, not refused.
struct DNSRecordType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    var rawValue: UInt16
    init(rawValue: UInt16) { self.rawValue = rawValue }

    static let a = DNSRecordType(rawValue: 1)
    static let ns = DNSRecordType(rawValue: 2)
    static let cname = DNSRecordType(rawValue: 5)
    static let soa = DNSRecordType(rawValue: 6)
    static let ptr = DNSRecordType(rawValue: 12)
    static let mx = DNSRecordType(rawValue: 15)
    static let txt = DNSRecordType(rawValue: 16)
    static let aaaa = DNSRecordType(rawValue: 28)
    static let opt = DNSRecordType(rawValue: 41)

    var description: String {
        switch self {
        case .a: return "A"
        case .ns: return "NS"
        case .cname: return "CNAME"
        case .soa: return "SOA"
        case .ptr: return "PTR"
        case .mx: return "MX"
        case .txt: return "TXT"
        case .aaaa: return "AAAA"
        case .opt: return "OPT"
        default: return "TYPE\(rawValue)"
        }
    }
}

/// The class IN; the only one a mail resolver asks for.
let dnsClassIN: UInt16 = 1

/// The response code, including the upper bits EDNS0 carries in the OPT record (RFC 6891 §6.1.3).
struct DNSResponseCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    var rawValue: UInt16
    init(rawValue: UInt16) { self.rawValue = rawValue }

    static let noError = DNSResponseCode(rawValue: 0)
    static let formatError = DNSResponseCode(rawValue: 1)
    static let serverFailure = DNSResponseCode(rawValue: 2)
    static let nameError = DNSResponseCode(rawValue: 3)
    static let notImplemented = DNSResponseCode(rawValue: 4)
    static let refused = DNSResponseCode(rawValue: 5)
    static let badVersion = DNSResponseCode(rawValue: 16)

    var description: String {
        switch self {
        case .noError: return "NOERROR"
        case .formatError: return "FORMERR"
        case .serverFailure: return "SERVFAIL"
        case .nameError: return "NXDOMAIN"
        case .notImplemented: return "NOTIMP"
        case .refused: return "REFUSED"
        case .badVersion: return "BADVERS"
        default: return "RCODE\(rawValue)"
        }
    }
}

/// The fixed 12-octet header without its section counts (those follow from the sections).
struct DNSHeader: Equatable, Sendable {
    var id: UInt16
    var isResponse = false
    var opcode: UInt8 = 0
    var authoritative = false
    var truncated = false
    var recursionDesired = false
    var recursionAvailable = false
    var authenticData = false
    var checkingDisabled = false
    /// The low four bits only; `DNSMessage.responseCode` adds the EDNS0 upper bits.
    var rcode: UInt8 = 0

    init(id: UInt16, isResponse: Bool = false, opcode: UInt8 = 0, authoritative: Bool = false,
         truncated: Bool = false, recursionDesired: Bool = false, recursionAvailable: Bool = false,
         authenticData: Bool = false, checkingDisabled: Bool = false, rcode: UInt8 = 0) {
        self.id = id
        self.isResponse = isResponse
        self.opcode = opcode
        self.authoritative = authoritative
        self.truncated = truncated
        self.recursionDesired = recursionDesired
        self.recursionAvailable = recursionAvailable
        self.authenticData = authenticData
        self.checkingDisabled = checkingDisabled
        self.rcode = rcode
    }
}

struct DNSQuestion: Equatable, Sendable {
    var name: DNSName
    var type: DNSRecordType
    var recordClass: UInt16 = dnsClassIN

    init(name: DNSName, type: DNSRecordType, recordClass: UInt16 = dnsClassIN) {
        self.name = name
        self.type = type
        self.recordClass = recordClass
    }

    static func == (lhs: DNSQuestion, rhs: DNSQuestion) -> Bool {
        lhs.name.matches(rhs.name) && lhs.type == rhs.type && lhs.recordClass == rhs.recordClass
    }
}

/// The SOA fields; `minimum` bounds how long a negative answer may be cached (RFC 2308 §5).
struct DNSSOA: Equatable, Sendable {
    var primaryServer: DNSName
    var responsibleMailbox: DNSName
    var serial: UInt32
    var refresh: UInt32
    var retry: UInt32
    var expire: UInt32
    var minimum: UInt32
}

/// One EDNS0 option (RFC 6891 §6.1.2), kept as raw octets.
struct EDNSOption: Equatable, Sendable {
    var code: UInt16
    var data: [UInt8]
}

/// The data of a record, decoded for the types a mail resolver reads.
enum DNSRecordData: Equatable, Sendable {
    /// Four octets.
    case a([UInt8])
    /// Sixteen octets.
    case aaaa([UInt8])
    case mx(preference: UInt16, exchange: DNSName)
    /// The character-strings, each up to 255 octets.
    case txt([[UInt8]])
    case ptr(DNSName)
    case cname(DNSName)
    case ns(DNSName)
    case soa(DNSSOA)
    /// The OPT pseudo-record's options; its other fields live in the record's class and TTL.
    case opt([EDNSOption])
    /// Any other type, as received.
    case unknown([UInt8])
}

extension DNSName: Equatable {
    /// Equality ignores ASCII case, as DNS does.
    static func == (lhs: DNSName, rhs: DNSName) -> Bool { lhs.matches(rhs) }
}

extension DNSName: Hashable {
    func hash(into hasher: inout Hasher) { hasher.combine(lowercased.labels) }
}

struct DNSResourceRecord: Equatable, Sendable {
    var name: DNSName
    var type: DNSRecordType
    /// The class; for OPT, the requester's UDP payload size.
    var recordClass: UInt16
    /// Seconds; for OPT, extended RCODE, version and flags.
    var ttl: UInt32
    var data: DNSRecordData

    init(name: DNSName, type: DNSRecordType, recordClass: UInt16 = dnsClassIN, ttl: UInt32, data: DNSRecordData) {
        self.name = name
        self.type = type
        self.recordClass = recordClass
        self.ttl = ttl
        self.data = data
    }
}

struct DNSMessage: Equatable, Sendable {
    var header: DNSHeader
    var questions: [DNSQuestion] = []
    var answers: [DNSResourceRecord] = []
    var authorities: [DNSResourceRecord] = []
    var additionals: [DNSResourceRecord] = []

    init(header: DNSHeader, questions: [DNSQuestion] = [], answers: [DNSResourceRecord] = [],
         authorities: [DNSResourceRecord] = [], additionals: [DNSResourceRecord] = []) {
        self.header = header
        self.questions = questions
        self.answers = answers
        self.authorities = authorities
        self.additionals = additionals
    }

    /// The EDNS0 OPT record, if the message carries one.
    var opt: DNSResourceRecord? { additionals.first { $0.type == .opt } }

    /// The full response code: the header's four bits plus the OPT record's upper eight.
    var responseCode: DNSResponseCode {
        let upper = opt.map { UInt16($0.ttl >> 24) << 4 } ?? 0
        return DNSResponseCode(rawValue: upper | UInt16(header.rcode))
    }

    /// A recursive query for one name and type, advertising EDNS0 with `udpPayloadSize` (RFC 6891).
    /// 1232 octets fits the IPv6 minimum MTU without fragmentation (DNS flag day 2020).
    static func query(id: UInt16, name: DNSName, type: DNSRecordType, udpPayloadSize: UInt16 = 1232) -> DNSMessage {
        DNSMessage(header: DNSHeader(id: id, recursionDesired: true),
                   questions: [DNSQuestion(name: name, type: type)],
                   additionals: [DNSResourceRecord(name: .root, type: .opt, recordClass: udpPayloadSize, ttl: 0, data: .opt([]))])
    }

    /// Whether this message is the answer to `query`: a response with the same ID, the same opcode
    /// and exactly the query's question (name without case, type, class). Anything else, a
    /// spoofing attempt or a late answer to an earlier query, is to be ignored (RFC 5452 §9.1).
    func isResponse(to query: DNSMessage) -> Bool {
        header.isResponse && header.id == query.header.id && header.opcode == query.header.opcode
            && questions.count == 1 && query.questions.count == 1 && questions[0] == query.questions[0]
    }
}
