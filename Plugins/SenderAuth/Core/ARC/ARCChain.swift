// The ARC sets of a message (RFC 8617 §4): each instance's ARC-Authentication-Results,
// ARC-Message-Signature and ARC-Seal, gathered and checked for form before any signature is.

/// One ARC set, by instance.
package struct ARCSet: Sendable {
    package var instance: Int
    package var results: DKIMMessage.Field
    package var messageSignature: DKIMMessage.Field
    package var seal: DKIMMessage.Field
}

/// What the form check of a message's ARC fields found.
package enum ARCChain: Sendable {
    /// No ARC field at all.
    case none
    /// Sets 1...N, each complete, in instance order.
    case sets([ARCSet])
    /// Fields that do not make a chain (a missing or repeated field, a gap, a bad `i=`).
    case malformed(String)

    /// The most instances a chain may have (RFC 8617 §4.2.1).
    package static let maxInstances = 50

    package static let fieldNames: Set<String> = ["arc-seal", "arc-message-signature", "arc-authentication-results"]

    package init(_ message: DKIMMessage) {
        var seals: [Int: [DKIMMessage.Field]] = [:]
        var signatures: [Int: [DKIMMessage.Field]] = [:]
        var results: [Int: [DKIMMessage.Field]] = [:]
        var any = false
        for field in message.fields where Self.fieldNames.contains(field.lowercasedName) {
            any = true
            guard let instance = Self.instance(of: field) else {
                self = .malformed("\(field.name) without a valid i= tag")
                return
            }
            switch field.lowercasedName {
            case "arc-seal": seals[instance, default: []].append(field)
            case "arc-message-signature": signatures[instance, default: []].append(field)
            default: results[instance, default: []].append(field)
            }
        }
        guard any else {
            self = .none
            return
        }
        let count = Set(seals.keys).union(signatures.keys).union(results.keys).max() ?? 0
        var sets: [ARCSet] = []
        for instance in 1...max(count, 1) {
            guard let seal = seals[instance], let signature = signatures[instance], let result = results[instance] else {
                self = .malformed("ARC set \(instance) is incomplete")
                return
            }
            guard seal.count == 1, signature.count == 1, result.count == 1 else {
                self = .malformed("ARC set \(instance) has a field more than once")
                return
            }
            sets.append(ARCSet(instance: instance, results: result[0], messageSignature: signature[0], seal: seal[0]))
        }
        self = .sets(sets)
    }

    /// The `i=` of an ARC field: a tag of the seal and the signature, and the start of the
    /// results field's value (`i=2; mx.example.org; ...`). Nil unless 1...50.
    static func instance(of field: DKIMMessage.Field) -> Int? {
        let text: String
        if field.lowercasedName == "arc-authentication-results" {
            let value = Array(field.value)
            guard let semicolon = value.firstIndex(of: UInt8(ascii: ";")) else { return nil }
            text = String(decoding: value[..<semicolon], as: UTF8.self)
            let parts = text.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, parts[0].trimmingWhiteSpace == "i" else { return nil }
            return number(String(parts[1].trimmingWhiteSpace))
        }
        guard let list = try? DKIMTagList.parse(Array(field.value)), let value = list["i"] else { return nil }
        return number(value)
    }

    private static func number(_ text: String) -> Int? {
        guard !text.isEmpty, text.count <= 2, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let n = Int(text),
              (1...maxInstances).contains(n) else { return nil }
        return n
    }
}

extension Substring {
    /// Without white space or line breaks at either end (CR LF is one Character in Swift).
    var trimmingWhiteSpace: Substring {
        let space: Set<Character> = [" ", "\t", "\r", "\n", "\r\n"]
        var s = self
        while let c = s.first, space.contains(c) { s = s.dropFirst() }
        while let c = s.last, space.contains(c) { s = s.dropLast() }
        return s
    }
}
