// A DMARC policy record (RFC 7489 §6.3), as published in TXT at `_dmarc.<domain>`.

/// What a Domain Owner asks receivers to do with mail that fails DMARC (`p=`, `sp=`), and what a
/// receiver did (the disposition of RFC 7489 §7.2's reports).
package enum DMARCPolicy: String, Sendable, CaseIterable, Codable {
    case none, quarantine, reject

    /// The next less strict policy: what applies to a message `pct=` leaves out (§6.6.4).
    package var lessStrict: DMARCPolicy {
        switch self {
        case .reject: .quarantine
        case .quarantine, .none: .none
        }
    }
}

/// Identifier alignment (`adkim=`, `aspf=`, RFC 7489 §3.1).
package enum DMARCAlignment: String, Sendable, Codable {
    case relaxed = "r", strict = "s"
}

package struct DMARCRecord: Sendable, Equatable, Codable {
    /// One `rua=`/`ruf=` destination: a URI and the largest report it takes, in bytes (`!10m`).
    package struct ReportURI: Sendable, Equatable, Codable {
        package var uri: String
        package var maxSize: UInt64?

        package init(uri: String, maxSize: UInt64? = nil) {
            self.uri = uri
            self.maxSize = maxSize
        }

        /// The address of a `mailto:` URI (RFC 6068), `%XX` decoded, without `?headers`; nil for
        /// other schemes or a URI without an address.
        package var mailtoAddress: String? {
            guard uri.lowercased().hasPrefix("mailto:") else { return nil }
            var address = uri.dropFirst("mailto:".count)
            if let query = address.firstIndex(of: "?") { address = address[..<query] }
            guard let decoded = String(address).removingPercentEncodingBytes, decoded.contains("@") else { return nil }
            return decoded
        }
    }

    /// `p=`; nil when it was missing or not a policy (the record then counts only through
    /// §6.6.3's rule on `rua`, see `DMARCRecord.parse`).
    package var policy: DMARCPolicy?
    /// `sp=`, for subdomains of the Organizational Domain; nil when absent (then `p` applies).
    package var subdomainPolicy: DMARCPolicy?
    /// `pct=`, 0 to 100; 100 when absent or not a number in range.
    package var percent: Int = 100
    package var dkimAlignment: DMARCAlignment = .relaxed
    package var spfAlignment: DMARCAlignment = .relaxed
    /// `rua=`: where aggregate reports go. URIs that do not parse are left out.
    package var aggregateReportURIs: [ReportURI] = []
    /// `ruf=`: where failure reports go.
    package var failureReportURIs: [ReportURI] = []
    /// `fo=` options (`0`, `1`, `d`, `s`), as written; `["0"]` when absent or none is valid.
    package var failureOptions: [String] = ["0"]
    /// `rf=` formats; `["afrf"]` when absent or none is valid.
    package var reportFormats: [String] = ["afrf"]
    /// `ri=`, seconds; 86,400 when absent or not a 32-bit number.
    package var reportInterval: UInt32 = 86_400

    package init(policy: DMARCPolicy?, subdomainPolicy: DMARCPolicy? = nil) {
        self.policy = policy
        self.subdomainPolicy = subdomainPolicy
    }

    /// What one TXT string turned out to be.
    package enum Parsed: Sendable, Equatable {
        /// Not a DMARC record (no leading `v=DMARC1`): discarded (§6.6.3 step 3).
        case notDMARC
        /// A DMARC record whose tag-list does not parse, or that has no usable policy.
        case invalid(reason: String)
        case record(DMARCRecord)
    }

    /// Reads one TXT record. It must start with `v=DMARC1` (the version exactly so, §6.4).
    /// Unknown tags are ignored; a known tag with a bad value takes its default, except `p` and
    /// `sp`: when `p` is missing or not a policy, or `sp` is not one, the record still counts
    /// as `p=none` if `rua` names at least one valid URI, and is invalid otherwise (§6.6.3 step
    /// 6). Tag names and keyword values are compared without case (ABNF strings).
    package static func parse<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> Parsed {
        // The tag-list of DKIM (RFC 7489 §6.4 borrows it from RFC 6376 §3.2).
        let list: DKIMTagList
        do {
            list = try DKIMTagList.parse(Array(bytes))
        } catch {
            // A text that does not even start like a DMARC record is someone else's TXT.
            return startsWithVersion(bytes) ? .invalid(reason: "bad tag-list: \(error)") : .notDMARC
        }
        guard let first = list.tags.first, first.name.lowercased() == "v", first.value == "DMARC1" else { return .notDMARC }
        var tags: [String: String] = [:]
        for tag in list.tags.dropFirst() where tags[tag.name.lowercased()] == nil {
            tags[tag.name.lowercased()] = tag.value
        }

        var record = DMARCRecord(policy: tags["p"].flatMap(policy), subdomainPolicy: tags["sp"].flatMap(policy))
        if let text = tags["pct"], text.utf8.count <= 3, text.utf8.allSatisfy(isDigit), let pct = Int(text), pct <= 100 {
            record.percent = pct
        }
        if let text = tags["adkim"], let mode = DMARCAlignment(rawValue: text.lowercased()) { record.dkimAlignment = mode }
        if let text = tags["aspf"], let mode = DMARCAlignment(rawValue: text.lowercased()) { record.spfAlignment = mode }
        if let text = tags["rua"] { record.aggregateReportURIs = reportURIs(text) }
        if let text = tags["ruf"] { record.failureReportURIs = reportURIs(text) }
        if let text = tags["fo"] {
            let options = colonList(text).filter { ["0", "1", "d", "s"].contains($0) }
            if !options.isEmpty { record.failureOptions = options }
        }
        if let text = tags["rf"] {
            let formats = colonList(text).filter { !$0.isEmpty && $0.utf8.allSatisfy { isAlpha($0) || isDigit($0) || $0 == 0x2D } }
            if !formats.isEmpty { record.reportFormats = formats }
        }
        if let text = tags["ri"], text.utf8.allSatisfy(isDigit), let seconds = UInt32(text) { record.reportInterval = seconds }

        let policyUsable = record.policy != nil && (tags["sp"] == nil || record.subdomainPolicy != nil)
        if !policyUsable {
            guard !record.aggregateReportURIs.isEmpty else {
                return .invalid(reason: tags["p"] == nil ? "no p= policy" : "p= or sp= is not a policy")
            }
            // §6.6.3 step 6: as if the record said p=none.
            record.policy = DMARCPolicy.none
            record.subdomainPolicy = nil
        }
        return .record(record)
    }

    private static func policy(_ text: String) -> DMARCPolicy? { DMARCPolicy(rawValue: text.lowercased()) }

    private static func isDigit(_ byte: UInt8) -> Bool { (0x30...0x39).contains(byte) }
    private static func isAlpha(_ byte: UInt8) -> Bool { (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) }

    /// Whether the text starts with `v` `=` (white space allowed around `=`), to tell a broken
    /// DMARC record from a TXT record of another kind.
    private static func startsWithVersion<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> Bool {
        let trimmed = bytes.drop { $0 == 0x20 || $0 == 0x09 }
        guard let first = trimmed.first, first == 0x76 || first == 0x56 else { return false }
        return trimmed.dropFirst().drop { $0 == 0x20 || $0 == 0x09 }.first == 0x3D
    }

    private static func colonList(_ text: String) -> [String] {
        text.split(separator: ":", omittingEmptySubsequences: false).map { $0.trimmingASCIISpace.lowercased() }
    }

    /// `dmarc-uri *(*WSP "," *WSP dmarc-uri)`, `dmarc-uri = URI [ "!" 1*DIGIT [ "k" / "m" / "g"
    /// / "t" ] ]` (§6.4). A URI needs a scheme (RFC 3986 §3.1) and something after it; ones that
    /// do not parse are left out, the others kept.
    private static func reportURIs(_ text: String) -> [ReportURI] {
        text.split(separator: ",").compactMap { part -> ReportURI? in
            var uri = part.trimmingASCIISpace
            var maxSize: UInt64?
            if let bang = uri.lastIndex(of: "!") {
                var size = uri[uri.index(after: bang)...]
                uri = uri[..<bang]
                var multiplier: UInt64 = 1
                if let unit = size.last, !isDigit(unit.asciiValue ?? 0) {
                    switch unit.lowercased() {
                    case "k": multiplier = 1 << 10
                    case "m": multiplier = 1 << 20
                    case "g": multiplier = 1 << 30
                    case "t": multiplier = 1 << 40
                    default: return nil
                    }
                    size = size.dropLast()
                }
                guard !size.isEmpty, size.utf8.allSatisfy(isDigit), let number = UInt64(size) else { return nil }
                let (bytes, overflow) = number.multipliedReportingOverflow(by: multiplier)
                maxSize = overflow ? UInt64.max : bytes
            }
            guard let colon = uri.firstIndex(of: ":"), colon != uri.startIndex, uri.index(after: colon) != uri.endIndex else { return nil }
            let scheme = uri[..<colon].utf8
            guard let first = scheme.first, isAlpha(first),
                  scheme.allSatisfy({ isAlpha($0) || isDigit($0) || $0 == 0x2B || $0 == 0x2D || $0 == 0x2E }),
                  uri.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
            return ReportURI(uri: String(uri), maxSize: maxSize)
        }
    }
}

extension Substring {
    var trimmingASCIISpace: Substring {
        var text = self
        while let first = text.first, first == " " || first == "\t" { text = text.dropFirst() }
        while let last = text.last, last == " " || last == "\t" { text = text.dropLast() }
        return text
    }
}

extension String {
    /// `%XX` decoded byte by byte; nil when a `%` is not followed by two hex digits or the
    /// result is not UTF-8.
    var removingPercentEncodingBytes: String? {
        var out: [UInt8] = []
        var bytes = utf8[...]
        while let byte = bytes.first {
            bytes = bytes.dropFirst()
            guard byte == 0x25 else { out.append(byte); continue }
            let hex = bytes.prefix(2)
            guard hex.count == 2, hex.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x66) }),
                  let value = UInt8(String(decoding: hex, as: UTF8.self), radix: 16) else { return nil }
            out.append(value)
            bytes = bytes.dropFirst(2)
        }
        return String(validating: out, as: UTF8.self)
    }
}
