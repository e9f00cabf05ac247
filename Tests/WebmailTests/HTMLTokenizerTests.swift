import XCTest
@testable import PosternWebmailCore

/// The tokenizer, fed whole byte arrays, including the malformed input mail is full of.
final class HTMLTokenizerTests: XCTestCase {
    func tokens(_ bytes: [UInt8]) -> [HTMLToken] { HTMLTokenizer.tokenize(bytes) }
    func tokens(_ text: String) -> [HTMLToken] { tokens(Array(text.utf8)) }

    func start(_ name: String, _ attributes: [(String, String)] = [], selfClosing: Bool = false) -> HTMLToken {
        .startTag(name: name, attributes: attributes.map { HTMLAttribute(name: $0.0, value: $0.1) }, selfClosing: selfClosing)
    }

    func testTagsAndAttributes() {
        XCTAssertEqual(tokens("<p>hi</p>"), [start("p"), .text("hi"), .endTag(name: "p")])
        XCTAssertEqual(tokens("<DIV ID=A Title='B' data-X=\"C\" hidden>"),
                       [start("div", [("id", "A"), ("title", "B"), ("data-x", "C"), ("hidden", "")])])
        XCTAssertEqual(tokens("<p a=\"1\"b=2 c = '3' d=>"), [start("p", [("a", "1"), ("b", "2"), ("c", "3"), ("d", "")])])
        XCTAssertEqual(tokens("<br/><br / ><img src=x />"),
                       [start("br", selfClosing: true), start("br"), start("img", [("src", "x")], selfClosing: true)])
        XCTAssertEqual(tokens("<p =x>"), [start("p", [("=x", "")])])
        XCTAssertEqual(tokens("<a/href=x/onclick=y>"), [start("a", [("href", "x/onclick=y")])])
        XCTAssertEqual(tokens("<img src=x\tonerror\n=\nalert(1)>"), [start("img", [("src", "x"), ("onerror", "alert(1)")])])
        XCTAssertEqual(tokens("<b>x</b onclick=y>"), [start("b"), .text("x"), .endTag(name: "b")])
    }

    func testFirstOfDuplicatedAttributesWins() {
        XCTAssertEqual(tokens("<a HREF=1 href=2 Href=3>"), [start("a", [("href", "1")])])
    }

    func testUnquotedValuesKeepQuotesAndBackticks() {
        XCTAssertEqual(tokens("<img src=`x` alt=a\"b'c<d>"), [start("img", [("src", "`x`"), ("alt", "a\"b'c<d")])])
    }

    func testMalformedTags() {
        XCTAssertEqual(tokens("<a<b>"), [start("a<b")])
        XCTAssertEqual(tokens("a</>b"), [.text("ab")])
        XCTAssertEqual(tokens("a<"), [.text("a<")])
        XCTAssertEqual(tokens("a</"), [.text("a</")])
        XCTAssertEqual(tokens("a<p"), [.text("a")])
        XCTAssertEqual(tokens("a<p title=\"x"), [.text("a")])
        XCTAssertEqual(tokens("a<p title="), [.text("a")])
        XCTAssertEqual(tokens("a<p/"), [.text("a")])
        XCTAssertEqual(tokens("1 < 2 <3 <>"), [.text("1 < 2 <3 <>")])
        XCTAssertEqual(tokens("</ x>y"), [.comment(" x"), .text("y")])
        XCTAssertEqual(tokens("</3>"), [.comment("3")])
        XCTAssertEqual(tokens("<<script>"), [.text("<"), start("script")])
    }

    func testComments() {
        XCTAssertEqual(tokens("<!-- a -->b"), [.comment(" a "), .text("b")])
        XCTAssertEqual(tokens("<!---->"), [.comment("")])
        XCTAssertEqual(tokens("<!-->x"), [.comment(""), .text("x")])
        XCTAssertEqual(tokens("<!--->x"), [.comment(""), .text("x")])
        XCTAssertEqual(tokens("<!-- a --!>b"), [.comment(" a "), .text("b")])
        XCTAssertEqual(tokens("<!--a--->"), [.comment("a-")])
        XCTAssertEqual(tokens("<!--a--!-->"), [.comment("a--!")])
        XCTAssertEqual(tokens("<!--a-- b-->"), [.comment("a-- b")])
        XCTAssertEqual(tokens("<!--<script>-->x"), [.comment("<script>"), .text("x")])
        XCTAssertEqual(tokens("<!-- never closed <img src=x>"), [.comment(" never closed <img src=x>")])
        XCTAssertEqual(tokens("<!--"), [.comment("")])
        XCTAssertEqual(tokens("<!-"), [.comment("-")])
        XCTAssertEqual(tokens("<! bogus>x"), [.comment(" bogus"), .text("x")])
        XCTAssertEqual(tokens("<?php echo 1 ?>x"), [.comment("?php echo 1 ?"), .text("x")])
        XCTAssertEqual(tokens("<![CDATA[<b>]]>"), [.comment("[CDATA[<b"), .text("]]>")])
        XCTAssertEqual(tokens("<!DOCTYPE html>x"), [.doctype("html"), .text("x")])
        XCTAssertEqual(tokens("<!doctype"), [.doctype("")])
    }

    func testRawTextRunsToItsOwnEndTag() {
        XCTAssertEqual(tokens("<script>a</b>c</SCRIPT >d"),
                       [start("script"), .text("a</b>c"), .endTag(name: "script"), .text("d")])
        XCTAssertEqual(tokens("<script>&amp;</scriptx></script/>"),
                       [start("script"), .text("&amp;</scriptx>"), .endTag(name: "script")])
        XCTAssertEqual(tokens("<style>x</style"), [start("style"), .text("x</style")])
        XCTAssertEqual(tokens("<title>&amp;<b></title>"), [start("title"), .text("&<b>"), .endTag(name: "title")])
        XCTAssertEqual(tokens("<textarea><p title=\"</textarea><img>\">"),
                       [start("textarea"), .text("<p title=\""), .endTag(name: "textarea"), start("img"), .text("\">")])
        XCTAssertEqual(tokens("<noscript><!--</noscript>-->"),
                       [start("noscript"), .text("<!--"), .endTag(name: "noscript"), .text("-->")])
        XCTAssertEqual(tokens("<plaintext></plaintext><b>"), [start("plaintext"), .text("</plaintext><b>")])
        for name in ["xmp", "iframe", "noembed", "noframes"] {
            XCTAssertEqual(tokens("<\(name)><b></\(name)>"), [start(name), .text("<b>"), .endTag(name: name)], name)
        }
    }

    func testCharacterReferencesInText() {
        XCTAssertEqual(tokens("&amp;&lt;&gt;&quot;&apos;&nbsp;&copy;&reg;&hellip;&euro;"), [.text("&<>\"'\u{A0}©®…€")])
        XCTAssertEqual(tokens("&#106;&#x6A;&#X6a&#0000106"), [.text("jjjj")])
        XCTAssertEqual(tokens("&#0;&#xD800;&#x110000;&#99999999999999999999;"), [.text("\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}")])
        XCTAssertEqual(tokens("&#x80;&#150;&#x81;"), [.text("€–\u{81}")])
        XCTAssertEqual(tokens("&amp &copy2 &notit; &unknown; & &# &#x; &;"), [.text("& ©2 ¬it; &unknown; & &# &#x; &;")])
        XCTAssertEqual(tokens("java&Tab;script&colon;"), [.text("java\tscript:")])
    }

    func testCharacterReferencesInAttributes() {
        XCTAssertEqual(tokens("<a href=\"jav&#x61;script:\" title='&#106;avascript' alt=&lt;b&gt;>"),
                       [start("a", [("href", "javascript:"), ("title", "javascript"), ("alt", "<b>")])])
        // Legacy names without `;` stay literal before `=` or an alphanumeric, so query strings survive.
        XCTAssertEqual(tokens("<a href=\"?a=1&copy=2&amp=3&lt;x&copy \">"), [start("a", [("href", "?a=1&copy=2&amp=3<x© ")])])
    }

    func testNULBecomesReplacementEverywhere() {
        XCTAssertEqual(tokens([0x61, 0x00, 0x62]), [.text("a\u{FFFD}b")])
        XCTAssertEqual(tokens(Array("<p a".utf8) + [0x00] + Array("=x".utf8) + [0x00] + Array(">".utf8)),
                       [start("p", [("a\u{FFFD}", "x\u{FFFD}")])])
        XCTAssertEqual(tokens(Array("<b".utf8) + [0x00] + Array(">".utf8)), [start("b\u{FFFD}")])
        XCTAssertEqual(tokens(Array("<script>".utf8) + [0x00]), [start("script"), .text("\u{FFFD}")])
        XCTAssertEqual(tokens(Array("<!--".utf8) + [0x00] + Array("-->".utf8)), [.comment("\u{FFFD}")])
    }

    func testInvalidUTF8BecomesReplacement() {
        XCTAssertEqual(tokens([0xC0, 0xBC, 0x61]), [.text("\u{FFFD}\u{FFFD}a")])  // overlong '<' is no '<'
        XCTAssertEqual(tokens([0xFF, 0xFE, 0x3C, 0x00]), [.text("\u{FFFD}\u{FFFD}<\u{FFFD}")])
        XCTAssertEqual(tokens([0xE2, 0x82, 0x3C, 0x62, 0x3E]), [.text("\u{FFFD}"), start("b")])
        XCTAssertEqual(tokens([0xED, 0xA0, 0x80]), [.text("\u{FFFD}\u{FFFD}\u{FFFD}")])  // an encoded surrogate
        XCTAssertEqual(tokens([0x3C, 0x61, 0x20, 0x74, 0x3D, 0xF0, 0x9F, 0x3E]), [start("a", [("t", "\u{FFFD}")])])
        XCTAssertEqual(tokens([0xC3, 0xA9, 0xE2, 0x82, 0xAC]), [.text("é€")])
    }

    func testEveryPrefixOfAMessyDocumentTerminates() {
        let document = Array("<!DOCTYPE x><p a='1' b=\"&#x6a;\" c=d/>t&amp;<!-- c --!><script>x</script><?y?></>&#1".utf8)
        for length in 0...document.count {
            let result = tokens(Array(document[..<length]))
            XCTAssertLessThanOrEqual(result.count, document.count, "prefix \(length)")
        }
    }
}
