import Foundation
import PluginAPI
import XCTest
@testable import PosternSenderAuthCore

/// Messages, keys and sealing helpers shared by the ARC tests. Keys are DKIM's test keys,
/// published under `arc.test` (selector `prsa` RSA, `ped` Ed25519).
enum ARCFixtures {
    static let domain = "arc.test"
    /// The authserv-id of the Authentication-Results the sealer takes as its own.
    static let authservID = "mx.arc.test"

    static let message = DKIMFixtures.message(extraHeaders: [
        "Received: from mail.example.org (mail.example.org [192.0.2.25])\r\n\tby mx.arc.test; Tue, 02 Jan 2024 10:00:01 +0000",
    ])

    static let records = ["prsa": DKIMFixtures.rsaKey.keyRecord, "ped": DKIMFixtures.ed25519Key.keyRecord]

    static let rsaSealer = ARCSealer(domain: domain, selector: "prsa", key: DKIMFixtures.rsaKey)
    static let ed25519Sealer = ARCSealer(domain: domain, selector: "ped", key: DKIMFixtures.ed25519Key)

    /// A verifier whose resolver serves `records` under `arc.test` (a table, for the unit tests;
    /// the interop tests ask unbound through the DNS plugin).
    static func verifier(_ records: [String: String] = records) -> ARCVerifier {
        ARCVerifier(keys: DKIMVerifier(resolver: DKIMFixtures.resolver(
            Dictionary(uniqueKeysWithValues: records.map { ("\($0.key)._domainkey.\(domain)", $0.value) }))))
    }

    /// `message` with an Authentication-Results field on top, as the filter writes it on arrival.
    static func withResults(_ message: [UInt8], authservID: String = authservID, arc: String? = "none") -> [UInt8] {
        var value = "\(authservID); spf=pass smtp.mailfrom=alice@example.org;\r\n\tdkim=none (no signature)"
        if let arc { value += ";\r\n\tarc=\(arc)" }
        return Array("Authentication-Results: \(value)\r\n".utf8) + message
    }

    /// The fields (each without its CRLF) put on top of `message`.
    static func prepending(_ fields: [String], to message: [UInt8]) -> [UInt8] {
        Array(fields.map { $0 + "\r\n" }.joined().utf8) + message
    }

    /// `message` after a hop that verified it (`arc=` as found) and sealed it with `sealer`;
    /// fails the test when the sealer refuses.
    static func sealed(_ message: [UInt8], by sealer: ARCSealer = rsaSealer, arc: String = "none",
                       file: StaticString = #filePath, line: UInt = #line) throws -> [UInt8] {
        let arrived = withResults(message, arc: arc)
        let set = try XCTUnwrap(try sealer.seal(arrived, authservID: authservID, now: Date()), "the sealer refused", file: file, line: line)
        XCTAssertEqual(set.count, 3, file: file, line: line)
        return prepending(set, to: arrived)
    }

    /// An ARC set made by hand over `message`'s chain, for seals the sealer never writes: any
    /// `cv=` and instance. The AMS signs From, To, Subject, Date and Message-ID, relaxed/relaxed;
    /// the seal is signed properly, so that only the chain's form or `cv=` can fail it.
    /// `signedFields` replaces the AMS's `h=`, `sealTags` are added to the seal before `b=`.
    static func handSealed(_ message: [UInt8], instance: Int, cv: String, selector: String = "ped",
                           key: DKIMSigningKey = DKIMFixtures.ed25519Key,
                           signedFields: [String] = ["from", "to", "subject", "date", "message-id"],
                           sealTags: [String] = []) throws -> [UInt8] {
        let parsed = DKIMMessage(message)
        let existing: [ARCSet]
        switch ARCChain(parsed) {
        case .sets(let sets): existing = sets
        default: existing = []
        }
        let aar = "ARC-Authentication-Results: i=\(instance); \(authservID); arc=\(cv)"
        var hasher = DKIMBodyHasher(.relaxed)
        hasher.feed(parsed.body)
        let names = signedFields
        var ams = SignatureFieldWriter(name: "ARC-Message-Signature")
        for tag in ["i=\(instance);", "a=\(key.algorithm.rawValue);", "c=relaxed/relaxed;", "d=\(domain);", "s=\(selector);"] {
            ams.append(tag)
        }
        ams.appendHeaderList(names)
        ams.append("bh=\(Data(hasher.finish()).base64EncodedString());")
        ams.append("b=")
        var data: [UInt8] = []
        for field in parsed.select(names).compactMap({ $0 }) {
            data += DKIMHeaderCanonicalizer.canonicalize(field.raw, .relaxed) + [0x0D, 0x0A]
        }
        data += DKIMHeaderCanonicalizer.canonicalize(Array(ams.text.utf8), .relaxed)
        let amsField = ams.signed(Data(try key.sign(data)).base64EncodedString())
        var seal = SignatureFieldWriter(name: "ARC-Seal")
        for tag in ["i=\(instance);", "a=\(key.algorithm.rawValue);", "cv=\(cv);", "d=\(domain);", "s=\(selector);"] + sealTags + ["b="] {
            seal.append(tag)
        }
        let set = DKIMMessage(Array((aar + "\r\n" + amsField + "\r\n" + seal.text + "\r\n\r\n").utf8))
        let added = ARCSet(instance: instance, results: set.fields[0], messageSignature: set.fields[1], seal: set.fields[2])
        let input = ARCVerifier.sealInput(existing + [added], lastSeal: Array(set.fields[2].raw))
        let sealField = seal.signed(Data(try key.sign(input)).base64EncodedString())
        return prepending([sealField, amsField, aar], to: message)
    }

    /// `message` with every occurrence of `old` replaced by `new` (text edits of fixtures).
    static func replacing(_ old: String, with new: String, in message: [UInt8]) -> [UInt8] {
        Array(String(decoding: message, as: UTF8.self).replacingOccurrences(of: old, with: new).utf8)
    }

    /// `message` without the field `name` of ARC set `instance` (continuation lines included).
    static func removingField(_ name: String, instance: Int, from message: [UInt8]) -> [UInt8] {
        let parsed = DKIMMessage(message)
        guard let field = parsed.fields.first(where: { $0.lowercasedName == name.lowercased() && ARCChain.instance(of: $0) == instance }) else {
            return message
        }
        return Array(parsed.bytes[..<field.raw.startIndex]) + Array(parsed.bytes[(field.raw.endIndex + 2)...])
    }
}
