import Foundation
import XCTest
@testable import PosternWebmailCore

/// The sanitizer on single techniques: what must go, what must stay, and the exact output where
/// the form matters (escaping, closing, links, images).
final class HTMLSanitizerTests: XCTestCase {
    static let options = HTMLSanitizer.Options(resolveContentID: { SanitizedOutputInvariants.contentIDPrefix + $0 })

    func sanitized(_ html: String, options: HTMLSanitizer.Options = HTMLSanitizerTests.options) -> HTMLSanitizer.Result {
        HTMLSanitizer.sanitize(html, options: options)
    }

    func html(_ input: String) -> String { sanitized(input).html }

    func assertSafe(_ input: String, file: StaticString = #filePath, line: UInt = #line) {
        let output = html(input)
        XCTAssertEqual(SanitizedOutputInvariants.violations(in: output), [], "\(input) → \(output)", file: file, line: line)
        XCTAssertEqual(SanitizedOutputInvariants.remoteLoads(in: output), [], input, file: file, line: line)
        XCTAssertFalse(output.lowercased().contains("<script"), output, file: file, line: line)
        XCTAssertNil(output.range(of: #"\son[a-z]*\s*="#, options: [.regularExpression, .caseInsensitive]), output, file: file, line: line)
    }

    func testKeepsFormattingAndEscapesText() {
        XCTAssertEqual(html("<p>Hello <b>world</b> &amp; <I>you</I></p>"), "<p>Hello <b>world</b> &amp; <i>you</i></p>")
        XCTAssertEqual(html("a < b > c \" ' &lt;x&gt;"), "a &lt; b &gt; c &quot; &#39; &lt;x&gt;")
        XCTAssertEqual(html("<p title='a\"b' dir=rtl lang=de-CH>x"), "<p title=\"a&quot;b\" dir=\"rtl\" lang=\"de-CH\">x</p>")
        XCTAssertEqual(html("<table border=1 cellpadding=\"4\" width=100%><tr><td colspan=2 bgcolor=#fff>x"),
                       "<table border=\"1\" cellpadding=\"4\" width=\"100%\"><tr><td colspan=\"2\" bgcolor=\"#fff\">x</td></tr></table>")
        XCTAssertEqual(html("<font face=\"Arial, sans-serif\" size=+1 color=red>x</font>"),
                       "<font face=\"Arial, sans-serif\" size=\"+1\" color=\"red\">x</font>")
    }

    func testPresentationalValuesMustHaveTheirShape() {
        XCTAssertEqual(html("<td width=\"expression(alert(1))\" bgcolor=\"red;background:url(x)\" align=\"center\">x</td>"),
                       "<td align=\"center\">x</td>")
        XCTAssertEqual(html("<font size=\"7;x\" face=\"a<b\">x</font>"), "<font>x</font>")
    }

    func testDropsClassIdDataAndHandlers() {
        XCTAssertEqual(html("<div class=x id=y data-x=1 name=n onclick=alert(1) ONMOUSEOVER=x tabindex=1>t</div>"), "<div>t</div>")
        XCTAssertEqual(html("<img src=\"cid:a\" data-postern-remote-src=\"javascript:alert(1)\">"), "<img src=\"/webmail/part/a\">")
    }

    func testDropsActiveElementsWithTheirContent() {
        for name in ["script", "style", "iframe", "object", "applet", "noscript", "template", "svg", "math", "form", "button",
                     "select", "textarea", "title", "audio", "video", "canvas", "xmp", "noembed", "noframes", "frameset"] {
            let result = sanitized("a<\(name)><b>x</b><img src=x onerror=alert(1)></\(name)>b")
            XCTAssertEqual(result.html, "ab", name)
            XCTAssertGreaterThanOrEqual(result.droppedElements, 1, name)
        }
        XCTAssertEqual(html("a<plaintext>b</plaintext>c"), "a")
        XCTAssertEqual(html("<svg><svg></svg><p>in</p></svg>out"), "out")
        XCTAssertEqual(html("<svg/><p>after</p>"), "<p>after</p>")
        XCTAssertEqual(html("a<meta http-equiv=refresh content=0><link rel=stylesheet href=x><base href=x><input><embed src=x>b"), "ab")
    }

    func testUnwrapsUnknownElementsAndDocumentStructure() {
        XCTAssertEqual(html("<html><head><title>T</title><meta charset=utf-8><style>p{}</style></head><body bgcolor=red><p>x<o:p></o:p></p></body></html>"),
                       "<p>x</p>")
        XCTAssertEqual(html("<custom-tag>kept</custom-tag><marquee>m</marquee>"), "keptm")
        // A head never closed ends where a browser ends it: at the first body content.
        XCTAssertEqual(html("<head><title>T</title><p>body text"), "<p>body text</p>")
        XCTAssertEqual(html("<head><title>T</title>\n text"), "\n text")
        let result = sanitized("<html><body><x>y</x></body></html>")
        XCTAssertEqual(result.droppedElements, 1)
    }

    func testClosesElementsAndDropsStrayEndTags() {
        XCTAssertEqual(html("<b><i>x</b>y</i>"), "<b><i>x</i></b>y")
        XCTAssertEqual(html("</div></p>x</b><br></br>"), "x<br>")
        XCTAssertEqual(html("<p>a<p>b<ul><li>1<li>2<ul><li>2a</ul></ul>"),
                       "<p>a</p><p>b</p><ul><li>1</li><li>2<ul><li>2a</li></ul></li></ul>")
        XCTAssertEqual(html("<table><tr><td>a<td>b<tr><td>c</table>"),
                       "<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>")
        XCTAssertEqual(html("<div><table><tr><td>x</div>y</td></tr></table>z</div>"),
                       "<div><table><tr><td>xy</td></tr></table>z</div>")
        XCTAssertEqual(html("<dl><dt>a<dd>b<dt>c</dl><h1>x<h2>y"), "<dl><dt>a</dt><dd>b</dd><dt>c</dt></dl><h1>x</h1><h2>y</h2>")
        XCTAssertEqual(html("<br/><hr/><img src=cid:x />"), "<br><hr><img src=\"/webmail/part/x\">")
    }

    func testNestingBeyondTheCapIsFlattened() {
        let deep = String(repeating: "<div>", count: 150) + "deep" + String(repeating: "</div>", count: 150)
        let output = html(deep)
        XCTAssertEqual(output, String(repeating: "<div>", count: 100) + "deep" + String(repeating: "</div>", count: 100))
        let shallow = HTMLSanitizer.sanitize(deep, options: .init(maximumDepth: 3)).html
        XCTAssertEqual(shallow, "<div><div><div>deep</div></div></div>")
    }

    func testLinks() {
        XCTAssertEqual(html("<a href=\"https://example.org/a?b=1&amp;c=2\" target=_self rel=opener>x</a>"),
                       "<a href=\"https://example.org/a?b=1&amp;c=2\" rel=\"noopener noreferrer nofollow\" target=\"_blank\">x</a>")
        XCTAssertEqual(html("<a href=\" mailto:a@example.org \">m</a>"),
                       "<a href=\"mailto:a@example.org\" rel=\"noopener noreferrer nofollow\" target=\"_blank\">m</a>")
        XCTAssertEqual(html("<a href=\"http://x.example/a b\">s</a>"),
                       "<a href=\"http://x.example/a%20b\" rel=\"noopener noreferrer nofollow\" target=\"_blank\">s</a>")
        for href in ["javascript:alert(1)", "JaVaScRiPt:alert(1)", "jav&#x61;script:alert(1)", "&#106avascript:alert(1)",
                     "jav\tascript:alert(1)", "jav&#x09;ascript:alert(1)", "java&Tab;script&colon;alert(1)",
                     " \u{1}javascript:alert(1)", "java\nscript:alert(1)", "vbscript:msgbox(1)", "data:text/html,<script>",
                     "/relative", "#fragment", "//evil.example/", "java\u{0}script:alert(1)", "ftp://x", "file:///etc/passwd"] {
            XCTAssertEqual(html("<a href=\"\(href)\">x</a>"), "<a>x</a>", href)
        }
    }

    func testImages() {
        let blocked = sanitized("<img src=\"http://t.example/p.gif\" width=1 alt=\"a\"><img src=HTTPS://t.example/q>")
        XCTAssertEqual(blocked.html, "<img data-postern-remote-src=\"http://t.example/p.gif\" width=\"1\" alt=\"a\">"
                       + "<img data-postern-remote-src=\"HTTPS://t.example/q\">")
        XCTAssertEqual(blocked.blockedRemoteImages, 2)
        let allowed = sanitized("<img src=\"http://t.example/p.gif\">", options: .init(allowRemoteImages: true))
        XCTAssertEqual(allowed.html, "<img src=\"http://t.example/p.gif\">")
        XCTAssertEqual(allowed.blockedRemoteImages, 0)
        XCTAssertEqual(html("<img src=\"cid:part1%40example.org\">"), "<img src=\"/webmail/part/part1@example.org\">")
        XCTAssertEqual(HTMLSanitizer.sanitize("<img src=cid:x>a").html, "a")  // no resolver: no image
        XCTAssertEqual(html("<img src=\"data:image/png;base64,iVBORw0KGgo=\">"), "<img src=\"data:image/png;base64,iVBORw0KGgo=\">")
        for source in ["data:image/svg+xml;base64,PHN2Zz4=", "data:text/html;base64,PHNjcmlwdD4=", "data:image/png,<svg>",
                       "data:image/png;base64,<svg>", "javascript:alert(1)", "x", "//t.example/p.gif", "ftp://t.example/p"] {
            XCTAssertEqual(html("<img src=\"\(source)\" alt=x>y"), "y", source)
        }
        XCTAssertEqual(html("<img srcset=\"http://t.example/a 2x\" src=cid:a lowsrc=http://t.example/b>"), "<img src=\"/webmail/part/a\">")
    }

    func testStyleAttributes() {
        XCTAssertEqual(html("<p style=\"COLOR: Red ;font-family: 'Segoe UI', sans-serif;;margin:0 auto\">x</p>"),
                       "<p style=\"color: Red; font-family: &#39;Segoe UI&#39;, sans-serif; margin: 0 auto\">x</p>")
        XCTAssertEqual(html("<p style=\"position:fixed;top:0;z-index:9;background:url(http://x)\">x</p>"), "<p>x</p>")
    }

    func testCSSDeclarations() {
        let cases: [(String, String)] = [
            ("color: red; background-color: #fff", "color: red; background-color: #fff"),
            ("width: expression(alert(1))", ""),
            ("width: exp/**/ression(alert(1))", ""),
            ("background-image: url(http://t.example/a.png)", ""),
            ("background: red", ""),
            ("color: red; x: url(javascript:alert(1)); font-weight: bold", "color: red; font-weight: bold"),
            ("font-family: \\6a avascript", ""),
            ("color: r\\65 d", ""),
            ("behavior: url(x.htc)", ""),
            ("-moz-binding: url(x.xml#y)", ""),
            ("color: red; @import 'x.css'", "color: red"),
            ("font-family: 'a;b'; color: blue", "font-family: 'a;b'; color: blue"),
            ("font-family: 'unterminated; color: blue", ""),
            ("width: calc(100% - 2px; color: red", ""),
            ("display: block", "display: block"),
            ("display: table-cell", "display: table-cell"),
            ("display: flex", ""),
            ("display: contents", ""),
            ("position: absolute; left: 0; right: 0; top: 0; bottom: 0; z-index: 10", ""),
            ("margin-top: -100px; margin: 0 -5px; padding-left: 4px; text-indent: -999px", "padding-left: 4px"),
            ("border: 1px solid #000; border-image: url(x) 30; border-collapse: collapse",
             "border: 1px solid #000; border-collapse: collapse"),
            ("COLOR:\tred\n !important", "color: red !important"),
            ("color: <script>", ""),
            ("color: red /* comment */ ; /* a; b */ font-size: 12px", "color: red; font-size: 12px"),
            ("color: red; font-size: 12px /* unterminated", "color: red; font-size: 12px"),
            ("--custom: x; color: var(--custom)", ""),
            ("list-style-type: disc; list-style-image: url(x)", "list-style-type: disc"),
            ("", ""),
            (";;;", ""),
            (":red", ""),
        ]
        for (input, expected) in cases {
            XCTAssertEqual(CSSSanitizer.sanitizedDeclarations(input), expected, input)
            XCTAssertEqual(CSSSanitizer.sanitizedDeclarations(expected), expected, "idempotent: \(expected)")
        }
    }

    func testHostileTechniques() {
        let techniques = [
            "<script>alert(1)</script>", "<SCRIPT SRC=//x.example/x.js></SCRIPT>", "<scr<script>ipt>alert(1)</script>",
            "<img src=x onerror=alert(1)>", "<body onload=alert(1)>", "<svg onload=alert(1)>", "<svg><script>alert(1)</script>",
            "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
            "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\">",
            "<a href=\"jav&#x09;ascript:alert(1)\">x</a>", "<iframe srcdoc=\"<script>alert(1)</script>\">",
            "<object data=javascript:alert(1)>", "<embed src=x.swf>", "<base href=http://evil.example/>",
            "<meta http-equiv=refresh content=\"0;url=http://evil.example\">", "<link rel=stylesheet href=http://x/x.css>",
            "<form action=http://evil.example><button formaction=javascript:alert(1)>x</button></form>",
            "<div style=\"width:expression(alert(1))\">", "<div style=\"background:url(javascript:alert(1))\">",
            "<div style=\"-moz-binding:url(x)\">", "<div style=\"background:\\75rl(x)\">", "<style>@import 'x';</style>",
            "<img src=http://t.example/p.gif>", "<table background=http://t.example/b.png>",
            "<div style=\"background-image:url(http://t.example/p.png)\">", "<img srcset=\"http://t.example/p.png 2x\">",
            "<video poster=http://t.example/p.png>", "<input type=image src=http://t.example/p.png>",
            "<!--<script>alert(1)</script>-->", "<![CDATA[<script>alert(1)</script>]]>", "<!-- <script>",
            "+ADw-script+AD4-alert(1)+ADw-/script+AD4-", "<plaintext><script>", "<xmp><script>alert(1)</script></xmp>",
            "<template><script>alert(1)</script></template>", "<textarea></textarea><script>alert(1)</script>",
            "<img src=`x` onerror=`alert(1)`>", "<a href=x onclick=alert(1) href=javascript:alert(1)>",
            "<p title=\"" + String(repeating: "x", count: 50_000) + "\" onclick=alert(1)>",
            "<a href=http://ok.example/\"onmouseover=\"alert(1)>x</a>", "<isindex type=image src=x onerror=alert(1)>",
            "<img src=\"x\" ONERROR=\"alert(1)\">", "<IMG SRC=\"jav\tascript:alert(1);\">", "<div/onmouseover='alert(1)'>x",
        ]
        for technique in techniques { assertSafe(technique) }
    }

    func testByteLevelInput() {
        let cases: [([UInt8], String)] = [
            ([0x61, 0x00, 0x62], "a\u{FFFD}b"),
            ([0xC0, 0xBC] + Array("script".utf8) + [0xC0, 0xBE], "\u{FFFD}\u{FFFD}script\u{FFFD}\u{FFFD}"),
            ([0xEF, 0xBB, 0xBF] + Array("<b>x</b>".utf8), "\u{FEFF}<b>x</b>"),
            (Array("<a href=\"java".utf8) + [0x00] + Array("script:x\">y</a>".utf8), "<a>y</a>"),
            (Array("<p".utf8) + [0xFF] + Array(">x</p>".utf8), "x"),
            (Array("<img src=x on".utf8) + [0x00] + Array("error=alert(1)>".utf8), ""),
        ]
        for (input, expected) in cases {
            let output = HTMLSanitizer.sanitize(input, options: Self.options).html
            XCTAssertEqual(output, expected, "\(input)")
            XCTAssertEqual(SanitizedOutputInvariants.violations(in: output), [])
        }
    }

    func testPathologicalInputTakesLinearTime() {
        let size = 300_000
        let inputs: [String: [UInt8]] = [
            "open tags": Array(String(repeating: "<a", count: size / 2).utf8),
            "comments": Array(String(repeating: "<!--", count: size / 4).utf8),
            "references": Array(String(repeating: "&#", count: size / 2).utf8),
            "long reference": Array(("&#" + String(repeating: "9", count: size)).utf8),
            "nesting": Array(String(repeating: "<div><span>", count: size / 11).utf8),
            "attributes": Array(("<p " + String(repeating: "a ", count: size / 2)).utf8),
            "raw text": Array(("<script>" + String(repeating: "</scrip", count: size / 7)).utf8),
            "style": Array(("<p style=\"" + String(repeating: "a:b(;", count: size / 5) + "\">").utf8),
            "spaces in href": Array(("<a href=\"" + String(repeating: " ", count: size) + "http://x\">").utf8),
        ]
        for (name, input) in inputs.sorted(by: { $0.key < $1.key }) {
            let started = Date()
            let result = HTMLSanitizer.sanitize(input, options: Self.options)
            XCTAssertLessThan(Date().timeIntervalSince(started), 10, name)
            XCTAssertEqual(SanitizedOutputInvariants.violations(in: result.html), [], name)
        }
        let started = Date()
        let rendered = PlainTextRenderer.render("http://a.example/" + String(repeating: ")", count: size) + " http://://" + String(repeating: "> ", count: size))
        XCTAssertLessThan(Date().timeIntervalSince(started), 10, "plain text")
        XCTAssertTrue(rendered.hasPrefix("<div style=\"white-space: pre-wrap\"><a href=\"http://a.example/\""))
    }

    func testPlainTextRendering() {
        XCTAssertEqual(PlainTextRenderer.render("a < b & \"c\"\r\nline 2\n"),
                       "<div style=\"white-space: pre-wrap\">a &lt; b &amp; &quot;c&quot;\nline 2</div>")
        XCTAssertEqual(PlainTextRenderer.render("see https://example.org/a?b=1&c=2, or (http://x.example/p_(q))."),
                       "<div style=\"white-space: pre-wrap\">see <a href=\"https://example.org/a?b=1&amp;c=2\" "
                       + "rel=\"noopener noreferrer nofollow\" target=\"_blank\">https://example.org/a?b=1&amp;c=2</a>, or ("
                       + "<a href=\"http://x.example/p_(q)\" rel=\"noopener noreferrer nofollow\" target=\"_blank\">"
                       + "http://x.example/p_(q)</a>).</div>")
        XCTAssertEqual(PlainTextRenderer.render("javascript:alert(1) xhttp://a.example http://\"onmouseover=x"),
                       "<div style=\"white-space: pre-wrap\">javascript:alert(1) xhttp://a.example http://&quot;onmouseover=x</div>")
        XCTAssertEqual(PlainTextRenderer.render("hi\n> quoted\n> > deeper\nback"),
                       "<div style=\"white-space: pre-wrap\">hi<blockquote>quoted<blockquote>deeper</blockquote></blockquote>back</div>")
        XCTAssertEqual(PlainTextRenderer.render("> a", markQuotes: false), "<div style=\"white-space: pre-wrap\">&gt; a</div>")
        let rendered = PlainTextRenderer.render("<script>alert(1)</script> http://a.example/<img>\n>> x")
        XCTAssertEqual(SanitizedOutputInvariants.violations(in: rendered), [])
        XCTAssertEqual(HTMLSanitizer.sanitize(rendered).html, rendered, "the renderer's output passes the sanitizer unchanged")
    }
}
