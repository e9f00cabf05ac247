import Foundation
import PluginAPI
import XCTest
@testable import PosternSenderAuthCore

/// A resolver over a fixed table, for the verifier's unit tests (the interop tests use unbound and
/// the real DNS plugin). TXT answers only; a name listed with `.temporary` throws that, an unlisted
/// name is NXDOMAIN. Counts the questions asked, to test the key cache.
final class TableResolver: DNSResolver, @unchecked Sendable {
    enum Answer { case txt([String]), noData, temporary }
    private let lock = NSLock()
    private var table: [String: Answer]
    private(set) var questions: [String] = []

    init(_ table: [String: Answer] = [:]) { self.table = table }

    func set(_ name: String, _ answer: Answer) { lock.withLock { table[name.lowercased()] = answer } }
    var questionCount: Int { lock.withLock { questions.count } }

    func records(_ name: String, _ type: DNSQuestionType) async throws -> DNSRecords {
        let answer: Answer? = lock.withLock {
            questions.append(name)
            return table[name.lowercased()]
        }
        switch answer {
        case nil: return .nameError
        case .noData: return .noData
        case .temporary: throw DNSError.temporary("SERVFAIL (test)")
        case .txt(let records): return .found(records)
        }
    }

    func mx(_ domain: String) async throws -> [MXRecord] { [] }
    func addresses(_ host: String) async throws -> [String] { [] }
    func txt(_ name: String) async throws -> [String] { [] }
    func ptr(_ address: String) async throws -> [String] { [] }
}

/// Messages, keys and signing helpers shared by the DKIM tests.
enum DKIMFixtures {
    /// RFC 8463 Appendix A.3: the example message with its Ed25519 and RSA signatures (continuation
    /// lines start with one space, the RFC's indentation removed).
    static let rfc8463Message = [
        "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;",
        " d=football.example.com; i=@football.example.com;",
        " q=dns/txt; s=brisbane; t=1528637909; h=from : to :",
        " subject : date : message-id : from : subject : date;",
        " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;",
        " b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus",
        " Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==",
        "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;",
        " d=football.example.com; i=@football.example.com;",
        " q=dns/txt; s=test; t=1528637909; h=from : to : subject :",
        " date : message-id : from : subject : date;",
        " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;",
        " b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3",
        " DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz",
        " dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=",
        "From: Joe SixPack <joe@football.example.com>",
        "To: Suzie Q <suzie@shopping.example.net>",
        "Subject: Is dinner ready?",
        "Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)",
        "Message-ID: <20030712040037.46341.5F8J@football.example.com>",
        "",
        "Hi.",
        "",
        "We lost the game.  Are you hungry yet?",
        "",
        "Joe.",
        "",
    ].joined(separator: "\r\n")
    /// RFC 8463 A.2 (Ed25519) and RFC 6376 Appendix C / RFC 8463 A.2 (the 1024-bit RSA key).
    static let rfc8463Ed25519Record = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
    static let rfc8463RSARecord = "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB"
    /// The signing time of the RFC example.
    static let rfc8463Time = Date(timeIntervalSince1970: 1_528_637_909)

    /// A plain message with the fields the default list signs, LF-free.
    static func message(body: String = "Hello,\r\n\r\nthe report is attached.  \r\n\r\n\r\n",
                        extraHeaders: [String] = []) -> [UInt8] {
        let header = [
            "From: Alice Example <alice@example.org>",
            "To: Bob <bob@example.net>",
            "Subject: The quarterly report",
            "Date: Tue, 02 Jan 2024 10:00:00 +0000",
            "Message-ID: <report-1@example.org>",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
        ] + extraHeaders
        return Array((header.joined(separator: "\r\n") + "\r\n\r\n" + body).utf8)
    }

    /// One RSA and one Ed25519 key for the whole test run (RSA generation is slow).
    static let rsaKey = try! DKIMSigningKey.generate(algorithm: .rsa, bits: 2048)
    static let ed25519Key = try! DKIMSigningKey.generate(algorithm: .ed25519)

    static let now = Date(timeIntervalSince1970: 1_704_189_600)

    /// `message` with a signature by `signer` prepended.
    static func signed(_ message: [UInt8], by signer: DKIMSigner, now: Date = now) throws -> [UInt8] {
        Array(try signer.signatureField(for: message, now: now).utf8) + message
    }

    /// A verifier whose resolver serves `key`'s record at `selector._domainkey.example.org`.
    static func resolver(_ records: [String: String]) -> TableResolver {
        TableResolver(Dictionary(uniqueKeysWithValues: records.map { ($0.key.lowercased(), TableResolver.Answer.txt([$0.value])) }))
    }
}

extension DKIMFixtures {
    /// `message` with a DKIM-Signature made of `tags` (everything but bh= and b=), its body hash
    /// over `bodyLength` canonical octets: for fields the signer never writes (l=, odd orders).
    static func handSigned(_ message: [UInt8], tags: String, bodyLength: Int? = nil, key: DKIMSigningKey) throws -> [UInt8] {
        let parsedTags = try DKIMTagList.parse(Array(tags.utf8))
        let canonicalization = (parsedTags["c"] ?? "simple/simple").split(separator: "/").map { DKIMCanonicalization(rawValue: String($0))! }
        let parsed = DKIMMessage(message)
        var hasher = DKIMBodyHasher(canonicalization[1], limit: bodyLength)
        hasher.feed(parsed.body)
        let unsigned = "DKIM-Signature: \(tags); bh=\(Data(hasher.finish()).base64EncodedString()); b="
        var data: [UInt8] = []
        for field in parsed.select(parsedTags["h"]!.split(separator: ":").map(String.init)) {
            guard let field else { continue }
            data += DKIMHeaderCanonicalizer.canonicalize(field.raw, canonicalization[0]) + [0x0D, 0x0A]
        }
        data += DKIMHeaderCanonicalizer.canonicalize(Array(unsigned.utf8), canonicalization[0])
        let field = unsigned + Data(try key.sign(data)).base64EncodedString() + "\r\n"
        return Array(field.utf8) + message
    }
}

/// Runs real tools (openssl, python3, opendkim) for the tests; a missing tool is a failure.
enum Shell {
    struct Failure: Error, CustomStringConvertible { var description: String }

    /// Runs `executable` with `arguments`, `input` on stdin; returns stdout, throws on a non-zero exit.
    @discardableResult
    static func run(_ executable: String, _ arguments: [String], input: [UInt8] = [], environment: [String: String]? = nil) throws -> [UInt8] {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw Failure(description: "\(executable) is not installed: run scripts/install-deps.sh")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        // Read both outputs while writing, so that neither pipe fills and blocks the child.
        let output = NIOLockedValueBox(Data())
        let errors = NIOLockedValueBox(Data())
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) { output.withLockedValue { $0 = stdout.fileHandleForReading.readDataToEndOfFile() } }
        DispatchQueue.global().async(group: group) { errors.withLockedValue { $0 = stderr.fileHandleForReading.readDataToEndOfFile() } }
        try stdin.fileHandleForWriting.write(contentsOf: input)
        try stdin.fileHandleForWriting.close()
        group.wait()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(description: "\(executable) \(arguments.joined(separator: " ")) exited \(process.terminationStatus): "
                          + String(decoding: errors.withLockedValue { $0 }, as: UTF8.self))
        }
        return [UInt8](output.withLockedValue { $0 })
    }

    static func openssl(_ arguments: [String], input: [UInt8] = [], binary: Bool = false) throws -> [UInt8] {
        try run("/usr/bin/openssl", arguments, input: input)
    }

    /// Debian's python3 (with python3-dkim), never a pyenv one on PATH.
    static func python(_ script: String, _ arguments: [String] = [], input: [UInt8] = []) throws -> [UInt8] {
        try run("/usr/bin/python3", ["-c", script] + arguments, input: input)
    }
}
