import PluginAPI
import XCTest

@testable import PosternFilterDLPCore

/// Policies over whole messages: which texts are read (every text part, text-like attachments
/// by type or name, HTML without its tags, the subject), thresholds, directions, the verdicts,
/// and the `X-DLP-Match` field that never carries what matched.
final class PolicyTests: XCTestCase {
    static func crlf(_ text: String) -> [UInt8] { Array(text.replacingOccurrences(of: "\n", with: "\r\n").utf8) }

    func message(_ text: String, direction: FilterDirection = .outbound) -> FilterMessage {
        FilterMessage(bytes: Self.crlf(text), sender: "alice@example.org", recipients: ["bob@remote.example"],
                      connection: FilterConnection(peerAddress: "127.0.0.1", listener: "submission", direction: direction, isSecure: false))
    }

    func builtIn(_ names: String...) -> [any Detector] { names.map { n in BuiltInDetectors.all.first { $0.name == n }! } }

    let head = "From: alice@example.org\nTo: bob@remote.example\nSubject: figures\nMIME-Version: 1.0\n"

    func testEveryTextPartAndTextLikeAttachmentIsReadDecoded() {
        let csv = Base64Encoder.encode(Array("name;card\nBob;4111 1111 1111 1111\n".utf8))
        let json = "{\"iban\": \"DE89370400440532013000\"}"
        let bytes = head + """
            Content-Type: multipart/mixed; boundary=m

            --m
            Content-Type: multipart/alternative; boundary=a

            --a
            Content-Type: text/plain; charset=iso-8859-1
            Content-Transfer-Encoding: quoted-printable

            Kundennummer 5500-0000-=
            0000-0004 f=FCr Sie.
            --a
            Content-Type: text/html

            <p>Card <b>4111</b><span> 1111 1111 1111</span> &amp; more</p>
            --a--
            --m
            Content-Type: application/octet-stream
            Content-Disposition: attachment; filename*=utf-8''liste%20r%C3%A9sum%C3%A9.csv
            Content-Transfer-Encoding: base64

            \(String(decoding: csv, as: UTF8.self))
            --m
            Content-Type: application/json

            \(json)
            --m
            Content-Type: image/png
            Content-Transfer-Encoding: base64

            \(String(decoding: Base64Encoder.encode(Array("4111111111111111".utf8)), as: UTF8.self))
            --m--

            """
        let texts = MessageTexts.texts(of: message(bytes))
        XCTAssertEqual(texts.count, 5, "subject, plain, html, csv by name, json by type; not the image")
        XCTAssertEqual(builtIn("credit_card")[0].count(in: texts[1]), 1, "quoted-printable soft break undone")
        XCTAssertEqual(texts.reduce(0) { $0 + builtIn("credit_card")[0].count(in: $1) }, 3)
        XCTAssertEqual(texts.reduce(0) { $0 + builtIn("iban")[0].count(in: $1) }, 1)
        XCTAssertTrue(texts[2].string.contains("& more"), texts[2].string)
    }

    func testThresholdCountsAllThePolicysDetectorsTogether() {
        let policy = DLPPolicy(name: "bulk", detectors: builtIn("credit_card", "iban"), threshold: 3, action: .quarantine)
        let inspector = DLPInspector(policies: [policy])
        let two = message(head + "\n4111111111111111 and GB82WEST12345698765432\n")
        XCTAssertEqual(inspector.matches(two), [])
        let three = message(head + "\n4111111111111111, 5500000000000004 and GB82WEST12345698765432\n")
        XCTAssertEqual(inspector.matches(three), [DLPInspector.Match(policy: "bulk", action: .quarantine,
                                                                      counts: [("credit_card", 2), ("iban", 1)])])
    }

    func testPoliciesApplyToTheirDirectionsOnly() {
        let policy = DLPPolicy(name: "pci", detectors: builtIn("credit_card"), action: .reject)
        let inspector = DLPInspector(policies: [policy])
        XCTAssertEqual(inspector.matches(message(head + "\n4111111111111111\n", direction: .inbound)), [])
        XCTAssertEqual(inspector.matches(message(head + "\n4111111111111111\n", direction: .outbound)).count, 1)
    }

    func testRejectTellsTheSenderWhatKindOfDataAndNeverTheData() async {
        let inspector = DLPInspector(policies: [DLPPolicy(name: "pci", detectors: builtIn("credit_card"), action: .reject)])
        let (verdict, modifications) = await inspector.inspect(message(head + "\nMy card: 4111 1111 1111 1111\n"))
        guard case .reject(let reply) = verdict else { return XCTFail("\(verdict)") }
        XCTAssertEqual(reply.code, 550)
        XCTAssertEqual(reply.enhanced, "5.7.1")
        XCTAssertEqual(reply.text, "message refused by the data protection policy 'pci': it contains payment card numbers; "
            + "remove that data (or send it by an approved channel) and try again")
        XCTAssertEqual(modifications, [])
    }

    func testQuarantineAndNotifyTogether() async {
        let inspector = DLPInspector(policies: [
            DLPPolicy(name: "marked", detectors: [PhraseDetector(name: "markings", phrases: ["CONFIDENTIAL"], caseSensitive: true)],
                      action: .notify, notify: "compliance@example.org"),
            DLPPolicy(name: "ids", detectors: builtIn("es_dni", "nl_bsn"), action: .quarantine),
            DLPPolicy(name: "cards", detectors: builtIn("credit_card"), action: .reject),
        ])
        let (verdict, modifications) = await inspector.inspect(message(head + "\nCONFIDENTIAL: DNI 12345678Z, BSN 111222333.\n"))
        XCTAssertEqual(verdict, .quarantine(reason: "DLP policy ids"))
        XCTAssertEqual(modifications, [
            .addHeader(name: "X-DLP-Match", value: "policy=marked; action=notify; detectors=markings:1"),
            .addHeader(name: "X-DLP-Match", value: "policy=ids; action=quarantine; detectors=es_dni:1, nl_bsn:1"),
            .addRecipient("compliance@example.org"),
        ])
        for case .addHeader(_, let value) in modifications {
            XCTAssertFalse(value.contains("12345678") || value.contains("111222333"), "never the matched values: \(value)")
        }
    }

    func testNotifyDeliversAndAddsTheComplianceAddress() async {
        let inspector = DLPInspector(policies: [DLPPolicy(name: "iban", detectors: builtIn("iban"), action: .notify, notify: "dpo@example.org")])
        let (verdict, modifications) = await inspector.inspect(message(head + "\nIBAN NL91 ABNA 0417 1643 00\n"))
        XCTAssertEqual(verdict, .continue)
        XCTAssertEqual(modifications, [.addHeader(name: "X-DLP-Match", value: "policy=iban; action=notify; detectors=iban:1"),
                                       .addRecipient("dpo@example.org")])
        let (clean, none) = await inspector.inspect(message(head + "\nNothing here: NL91 ABNA 0417 1643 01\n"))
        XCTAssertEqual(clean, .continue)
        XCTAssertEqual(none, [])
    }

    func testTheSubjectIsRead() {
        let inspector = DLPInspector(policies: [DLPPolicy(name: "m", detectors: [PhraseDetector(name: "markings", phrases: ["CONFIDENTIAL"], caseSensitive: true)], action: .quarantine)])
        let m = message("From: a@example.org\nSubject: =?utf-8?q?CONFIDENTIAL_plan?=\n\nhi\n")
        XCTAssertEqual(inspector.matches(m).count, 1)
    }

    func testBrokenMIMEIsStillRead() {
        // No close delimiter, a part header cut short, a charset nobody knows.
        let inspector = DLPInspector(policies: [DLPPolicy(name: "pci", detectors: builtIn("credit_card"), action: .reject)])
        let m = message(head + "Content-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: text/plain; charset=x-unknown\n\ncard 4111111111111111\n--x\nContent-Type: text/plain\n")
        XCTAssertEqual(inspector.matches(m).count, 1)
    }
}
