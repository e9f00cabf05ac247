import Foundation
import PosternTestSupport
import XCTest
@testable import PosternWebmailCore

/// The hostile corpus (Fixtures/hostile, one technique a file) and random and mutated bytes: every
/// output must re-tokenise to allow-listed elements and attributes only, load nothing remote
/// while remote images are blocked, and come out unchanged when sanitised again.
final class HostileCorpusTests: XCTestCase {
    static let corpusDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/hostile")

    static func corpus() throws -> [(name: String, bytes: [UInt8])] {
        let names = try FileManager.default.contentsOfDirectory(atPath: corpusDirectory.path).filter { $0.hasSuffix(".html") }.sorted()
        return try names.map { name in
            (name, Array(try Data(contentsOf: corpusDirectory.appendingPathComponent(name))))
        }
    }

    static let blocking = HTMLSanitizer.Options(resolveContentID: { SanitizedOutputInvariants.contentIDPrefix + $0 })
    /// For the idempotence check: with remote images shown and no cid resolver, the output holds
    /// nothing the sanitizer would treat differently the second time (a withheld image's marker is
    /// deliberately never read back from mail, and resolved cid URLs are same-origin paths).
    static let reading = HTMLSanitizer.Options(allowRemoteImages: true)

    func assertInvariants(_ input: [UInt8], _ label: String, file: StaticString = #filePath, line: UInt = #line) {
        let output = HTMLSanitizer.sanitize(input, options: Self.blocking).html
        XCTAssertEqual(SanitizedOutputInvariants.violations(in: output), [], "\(label): \(output.prefix(300))", file: file, line: line)
        XCTAssertEqual(SanitizedOutputInvariants.remoteLoads(in: output), [], label, file: file, line: line)
        let once = HTMLSanitizer.sanitize(input, options: Self.reading).html
        XCTAssertEqual(SanitizedOutputInvariants.violations(in: once), [], label, file: file, line: line)
        let twice = HTMLSanitizer.sanitize(once, options: Self.reading).html
        XCTAssertEqual(twice, once, "\(label): not idempotent", file: file, line: line)
    }

    func testCorpusIsThere() throws {
        let corpus = try Self.corpus()
        XCTAssertGreaterThanOrEqual(corpus.count, 110)
        for file in corpus {
            XCTAssertNotNil(file.name.range(of: #"^[0-9]{3}-[a-z0-9-]+\.html$"#, options: .regularExpression), file.name)
        }
    }

    func testEveryCorpusFileSanitisesSafely() throws {
        for file in try Self.corpus() {
            assertInvariants(file.bytes, file.name)
            let output = HTMLSanitizer.sanitize(file.bytes, options: Self.blocking).html.lowercased()
            for marker in ["<script", "javascript:", "vbscript:", "expression(", "url(", "@import", "-moz-binding", "onerror=", "onload="] {
                // Text may mention these harmlessly, but never unescaped markup: check tags only.
                let tags = output.split(separator: "<").dropFirst().map { $0.prefix { $0 != ">" } }
                XCTAssertFalse(tags.contains { $0.contains(marker) }, "\(file.name): \(marker)")
            }
        }
    }

    func testCorpusRemoteImagesAreCounted() throws {
        let files = try Self.corpus().filter { $0.name.contains("remote-img-") && !$0.name.contains("protocol-relative") }
        XCTAssertFalse(files.isEmpty)
        for file in files {
            let result = HTMLSanitizer.sanitize(file.bytes, options: Self.blocking)
            XCTAssertEqual(result.blockedRemoteImages, 1, file.name)
            XCTAssertTrue(result.html.contains(HTMLSanitizer.remoteImageAttribute), file.name)
        }
    }

    static let fragments: [[UInt8]] = [
        "<", ">", "</", "/>", "<!--", "-->", "--!>", "<!", "<?", "<![CDATA[", "]]>", "&", "&#", "&#x", "&amp;", "&lt",
        ";", "\"", "'", "`", "=", " ", "\t", "\n", "<script>", "</script>", "<style>", "</style>", "<title>", "</title>",
        "<textarea>", "<noscript>", "</noscript>", "<plaintext>", "<svg>", "</svg>", "<math>", "<mtext>", "<table>",
        "<tr>", "<td>", "</td>", "</table>", "<p>", "</p>", "<li>", "<ul>", "<div>", "</div>", "<b>", "</i>", "<a href=",
        "<img src=", "http://t.example/p", "cid:x", "data:image/png;base64,AAAA", "javascript:", "jav&#x61;script:",
        "java&Tab;script&colon;", " onerror=alert(1)", " onclick=", " style=\"", "color:red;", "url(", "expression(",
        "\\", "/*", "*/", "<head>", "<body>", "<html>", "x", "text", "é", "\u{FEFF}",
    ].map { Array($0.utf8) } + [[0x00], [0xFF], [0xC0, 0xBC], [0xE2, 0x82], [0xED, 0xA0, 0x80], [0x0D]]

    func testRandomFragmentSoup() {
        var generator = SeededRandom(seed: 0x5EED_0001)
        for round in 0..<3000 {
            var input: [UInt8] = []
            for _ in 0..<Int.random(in: 1...40, using: &generator) {
                input += Self.fragments.randomElement(using: &generator)!
            }
            assertInvariants(input, "soup \(round): \(String(decoding: input, as: UTF8.self))")
        }
    }

    func testRandomBytes() {
        var generator = SeededRandom(seed: 0x5EED_0002)
        let alphabet = Array("<>/!-=\"' \ta&#;x".utf8) + [0x00, 0x80, 0xC3, 0xFF]
        for round in 0..<2000 {
            let input = (0..<Int.random(in: 0...64, using: &generator)).map { _ in
                Bool.random(using: &generator) ? alphabet.randomElement(using: &generator)! : UInt8.random(in: 0...255, using: &generator)
            }
            assertInvariants(input, "bytes \(round): \(input)")
        }
    }

    func testMutatedCorpus() throws {
        var generator = SeededRandom(seed: 0x5EED_0003)
        let corpus = try Self.corpus().map(\.bytes).filter { $0.count < 4000 }
        for round in 0..<2000 {
            var input = corpus.randomElement(using: &generator)!
            for _ in 0..<Int.random(in: 1...6, using: &generator) {
                let index = input.isEmpty ? 0 : Int.random(in: 0..<input.count, using: &generator)
                switch Int.random(in: 0..<4, using: &generator) {
                case 0 where !input.isEmpty: input.remove(at: index)
                case 1: input.insert(contentsOf: Self.fragments.randomElement(using: &generator)!, at: index)
                case 2 where !input.isEmpty: input[index] = UInt8.random(in: 0...255, using: &generator)
                default:
                    let other = corpus.randomElement(using: &generator)!
                    input = Array(input[..<index]) + other[Int.random(in: 0..<other.count, using: &generator)...]
                }
            }
            assertInvariants(input, "mutation \(round)")
        }
    }
}
