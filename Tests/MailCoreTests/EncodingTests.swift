import PosternTestSupport
import XCTest
import PluginAPI

final class TransferEncodingTests: XCTestCase {
    func testBase64RoundTripRandomChunked() {
        var rng = SeededRandom(seed: 1)
        for n in [0, 1, 2, 3, 4, 56, 57, 58, 1000, 4099] {
            let data = rng.bytes(n)
            var enc = Base64Encoder()
            let chunkSize = Int.random(in: 1...17, using: &rng)
            let encoded = chunked(data, size: chunkSize) { enc.encode($0) } + enc.finish()
            XCTAssertEqual(encoded, Base64Encoder.encode(data))
            for line in text(encoded).components(separatedBy: "\r\n") { XCTAssertLessThanOrEqual(line.count, 76) }
            for size in [1, 2, 3, 5, 77] {
                var dec = Base64Decoder()
                let decoded = chunked(encoded, size: size) { dec.decode($0) } + dec.finish()
                XCTAssertEqual(decoded, data, "n=\(n) chunk=\(size)")
                XCTAssertFalse(dec.sawInvalidInput)
            }
        }
        XCTAssertEqual(text(Base64Encoder.encode(bytes("Hello"))), "SGVsbG8=")
    }

    func testBase64TolerantDecoding() {
        var d = Base64Decoder()
        XCTAssertEqual(d.decode(bytes("SGVs bG8=\r\n!!")) + d.finish(), bytes("Hello"))
        XCTAssertTrue(d.sawInvalidInput)
        XCTAssertEqual(Base64Decoder.decode(bytes("SGVsbG8")), bytes("Hello"))          // padding missing
        XCTAssertEqual(Base64Decoder.decode(bytes("SGVsbG8=SGk=")), bytes("HelloHi"))   // concatenated
        XCTAssertEqual(Base64Decoder.decode(bytes("S")), [])                            // lone character dropped
    }

    func testQuotedPrintableBinaryRoundTripRandom() {
        var rng = SeededRandom(seed: 2)
        for n in [0, 1, 75, 76, 77, 500, 3000] {
            let data = rng.bytes(n)
            let encoded = QuotedPrintableEncoder.encode(data, mode: .binary)
            for line in text(encoded).components(separatedBy: "\r\n") { XCTAssertLessThanOrEqual(line.utf8.count, 76) }
            for size in [1, 2, 3, 64] {
                var dec = QuotedPrintableDecoder()
                XCTAssertEqual(chunked(encoded, size: size) { dec.decode($0) } + dec.finish(), data, "n=\(n) chunk=\(size)")
                XCTAssertFalse(dec.sawInvalidInput)
            }
            var enc = QuotedPrintableEncoder(mode: .binary)
            XCTAssertEqual(chunked(data, size: 3) { enc.encode($0) } + enc.finish(), encoded)
        }
    }

    func testQuotedPrintableTextMode() {
        let input = bytes("Trailing space \r\nTab\t\r\n" + String(repeating: "é", count: 40) + "\r\nend ")
        let encoded = QuotedPrintableEncoder.encode(input)
        XCTAssertTrue(text(encoded).hasPrefix("Trailing space=20\r\nTab=09\r\n=C3=A9"))
        XCTAssertTrue(text(encoded).hasSuffix("\r\nend=20"))
        for line in text(encoded).components(separatedBy: "\r\n") { XCTAssertLessThanOrEqual(line.utf8.count, 76) }
        XCTAssertEqual(QuotedPrintableDecoder.decode(encoded), input)
    }

    func testQuotedPrintableTolerantDecoding() {
        XCTAssertEqual(text(QuotedPrintableDecoder.decode(bytes("a=3Db=\r\nc=\nd"))), "a=bcd")
        XCTAssertEqual(text(QuotedPrintableDecoder.decode(bytes("a=3db"))), "a=b")             // lower-case hex
        XCTAssertEqual(text(QuotedPrintableDecoder.decode(bytes("ab  \r\ncd\t\n"))), "ab\r\ncd\n") // padding dropped
        XCTAssertEqual(text(QuotedPrintableDecoder.decode(bytes("soft = \r\nbreak"))), "soft break")
        var d = QuotedPrintableDecoder()
        XCTAssertEqual(text(d.decode(bytes("a=ZZb =4")) + d.finish()), "a=ZZb =4")
        XCTAssertTrue(d.sawInvalidInput)
        // A chunk boundary inside "=XX" and inside a soft break.
        var c = QuotedPrintableDecoder()
        let parts = ["caf=", "C", "3=A9 x=", "\r", "\ny"]
        XCTAssertEqual(text(parts.flatMap { c.decode(bytes($0)) } + c.finish()), "café xy")
    }
}

final class EncodedWordTests: XCTestCase {
    func testCharsets() {
        let cases: [(String, String)] = [
            ("=?UTF-8?B?R3LDvMOfZSDigqw=?=", "Grüße €"),
            ("=?ISO-8859-1?Q?caf=E9_cr=E8me?=", "café crème"),
            ("=?windows-1252?Q?=93quoted=94_=80?=", "“quoted” €"),
            ("=?KOI8-R?B?8NLJ18XUIM3J0g==?=", "Привет мир"),
            ("=?ISO-2022-JP?B?GyRCJDMkcyRLJEEkTxsoQg==?=", "こんにちは"),
            ("=?utf-8*en?q?hi?=", "hi"),                                          // RFC 2231 language
        ]
        for (input, expected) in cases { XCTAssertEqual(EncodedWords.decode(input), expected, input) }
    }

    func testWhitespaceBetweenWordsAndSplitCharacters() {
        XCTAssertEqual(EncodedWords.decode("=?UTF-8?Q?a?= =?UTF-8?Q?b?="), "ab")
        XCTAssertEqual(EncodedWords.decode("=?UTF-8?Q?a?=\t  =?ISO-8859-1?Q?=E9?="), "aé")
        XCTAssertEqual(EncodedWords.decode("=?UTF-8?Q?a?= b =?UTF-8?Q?c?="), "a b c")
        XCTAssertEqual(EncodedWords.decode("Re: =?UTF-8?Q?a?=  tail"), "Re: a  tail")
        XCTAssertEqual(EncodedWords.decode("=?UTF-8?B?4oI=?= =?UTF-8?B?rA==?="), "€")   // € split across words
    }

    func testMalformedWordsAreLeftAlone() {
        for input in ["=?UTF-8?X?abc?=", "=?UTF-8?Q?abc", "=?utf-8?q?a b?=", "=??Q?a?=", "=?", "a=?b"] {
            XCTAssertEqual(EncodedWords.decode(input), input)
        }
        XCTAssertEqual(EncodedWords.decode("=?x-unknown?Q?caf=C3=A9?="), "café")   // unknown: UTF-8 when valid
        XCTAssertEqual(EncodedWords.decode("=?x-unknown?Q?caf=E9?="), "café")      // else Latin-1
        XCTAssertEqual(EncodedWords.decode(bytes("Grüße =?UTF-8?Q?x?=")), "Grüße x")
        XCTAssertEqual(EncodedWords.decode(bytes("caf") + [0xE9]), "café")
    }

    func testEncodeDecodeRoundTrip() {
        let samples = ["plain ascii", "Grüße aus Köln", "こんにちは、世界。これは長い件名のテストです。これは長い件名のテストです。",
                       "emoji 👩‍👩‍👧 mix", "looks like =?utf-8?q?x?= a word", "€", "a  b", "Ünïcödé everywhere ÄÖÜ äöü ß " + String(repeating: "é", count: 60)]
        for s in samples {
            let encoded = EncodedWords.encode(s)
            XCTAssertTrue(encoded.unicodeScalars.allSatisfy(\.isASCII), encoded)
            for word in encoded.split(separator: " ") where word.hasPrefix("=?") { XCTAssertLessThanOrEqual(word.count, 75) }
            XCTAssertEqual(EncodedWords.decode(encoded), s, encoded)
            for forced in [EncodedWords.Encoding.base64, .quoted] {
                XCTAssertEqual(EncodedWords.decode(EncodedWords.encode(s, encoding: forced)), s)
            }
        }
        XCTAssertEqual(EncodedWords.encode("plain ascii"), "plain ascii")
        XCTAssertEqual(EncodedWords.encode("Hello €", encoding: .base64), "Hello =?UTF-8?B?4oKs?=")
        XCTAssertEqual(EncodedWords.encode("caf\u{e9} ok", encoding: .quoted), "=?UTF-8?Q?caf=C3=A9?= ok")
    }

    func testCharsetConversion() {
        let latin: [UInt8] = [0x63, 0x61, 0x66, 0xE9]
        for label in ["latin1", "LATIN1", "iso-8859-1", " ISO-8859-1 ", "l1"] {
            XCTAssertEqual(MailCharset.decode(latin, charset: label), "café", label)
        }
        XCTAssertEqual(MailCharset.decode(bytes("café"), charset: "utf8"), "café")
        XCTAssertEqual(MailCharset.decode(bytes("café"), charset: "UTF-8"), "café")
        XCTAssertEqual(MailCharset.decode([0x80], charset: "cp1252"), "€")
        XCTAssertEqual(MailCharset.decode(latin, charset: "no-such-charset"), "café")
        XCTAssertEqual(MailCharset.decode([0x61, 0xFF, 0x62], charset: "utf-8"), "a\u{FFFD}b")
        XCTAssertEqual(MailCharset.decode([0x61, 0x80, 0x62], charset: "iso-2022-jp"), "a\u{FFFD}b")
        XCTAssertTrue(MailCharset.isSupported("koi8-r"))
        XCTAssertTrue(MailCharset.isSupported("Windows-1252"))
        XCTAssertFalse(MailCharset.isSupported("x-no-such"))
    }
}
