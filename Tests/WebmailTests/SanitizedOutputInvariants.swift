import Foundation
@testable import PosternWebmailCore

/// What must hold for any sanitizer output, checked by re-tokenising it. The lists here are
/// written out again rather than taken from `HTMLAllowList`, so a wrong allow-list fails too.
enum SanitizedOutputInvariants {
    static let safeElements: Set<String> = [
        "a", "abbr", "acronym", "address", "article", "aside", "b", "bdi", "bdo", "big", "blockquote", "br",
        "caption", "center", "cite", "code", "col", "colgroup", "dd", "del", "details", "dfn", "div", "dl", "dt",
        "em", "figcaption", "figure", "font", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hgroup",
        "hr", "i", "img", "ins", "kbd", "li", "main", "mark", "nav", "ol", "p", "pre", "q", "rp", "rt", "ruby",
        "s", "samp", "section", "small", "span", "strike", "strong", "sub", "summary", "sup", "table", "tbody",
        "td", "tfoot", "th", "thead", "time", "tr", "tt", "u", "ul", "var", "wbr",
    ]
    static let voidElements: Set<String> = ["br", "col", "hr", "img", "wbr"]
    static let safeAttributes: Set<String> = [
        "dir", "lang", "title", "align", "valign", "width", "height", "colspan", "rowspan", "border", "cellpadding",
        "cellspacing", "bgcolor", "color", "face", "size", "style", "alt", "start", "type", "reversed", "value",
        "nowrap", "scope", "span", "open", "frame", "rules", "noshade", "clear",
    ]
    /// What `cid:` URLs resolve to in these tests.
    static let contentIDPrefix = "/webmail/part/"
    static let forbiddenInValues = ["javascript:", "vbscript:", "livescript:", "data:text", "data:image/svg"]
    static let forbiddenInStyles = ["url(", "expression(", "@import", "behavior", "binding", "\\", "position", "z-index"]

    /// Every violation found; empty when the output is safe and well-formed.
    static func violations(in html: String) -> [String] {
        var found: [String] = []
        var open: [String] = []
        let lowered = html.lowercased()
        for marker in ["<script", "<style", "<iframe", "<svg", "<math", "<object", "<embed", "<form", "<!--", "<meta", "<link", "<base"]
        where lowered.contains(marker) {
            found.append("output contains \(marker)")
        }
        for token in HTMLTokenizer.tokenize(Array(html.utf8)) {
            switch token {
            case let .startTag(name, attributes, _):
                guard safeElements.contains(name) else {
                    found.append("element <\(name)>")
                    continue
                }
                found += attributeViolations(element: name, attributes)
                if !voidElements.contains(name) { open.append(name) }
            case let .endTag(name):
                if open.last == name { open.removeLast() } else { found.append("end tag </\(name)> out of order") }
            case .comment, .doctype:
                found.append("comment or doctype in output")
            case .text:
                break
            }
        }
        if !open.isEmpty { found.append("unclosed: \(open)") }
        return found
    }

    private static func attributeViolations(element: String, _ attributes: [HTMLAttribute]) -> [String] {
        var found: [String] = []
        for attribute in attributes {
            let name = attribute.name
            // What a browser would see as the scheme: controls and spaces gone, any case.
            let squeezed = String(attribute.value.unicodeScalars.filter { $0.value > 0x20 && $0.value != 0x7F }).lowercased()
            if name.hasPrefix("on") { found.append("handler \(name) on <\(element)>") }
            // A script scheme only acts at the start of a value; inside an http URL or a title it is inert text.
            for word in forbiddenInValues where squeezed.hasPrefix(word) { found.append("\(word) in \(name) on <\(element)>") }
            switch (element, name) {
            case ("a", "href"):
                if !(squeezed.hasPrefix("http:") || squeezed.hasPrefix("https:") || squeezed.hasPrefix("mailto:")) {
                    found.append("href \(attribute.value)")
                }
            case ("a", "rel"):
                if attribute.value != "noopener noreferrer nofollow" { found.append("rel \(attribute.value)") }
            case ("a", "target"):
                if attribute.value != "_blank" { found.append("target \(attribute.value)") }
            case ("img", "src"):
                let loadsRemote = squeezed.hasPrefix("http:") || squeezed.hasPrefix("https:") || squeezed.hasPrefix("//")
                if !(squeezed.hasPrefix("data:image/") || attribute.value.hasPrefix(contentIDPrefix) || loadsRemote) {
                    found.append("img src \(attribute.value)")
                }
            case ("img", "data-postern-remote-src"):
                if !(squeezed.hasPrefix("http:") || squeezed.hasPrefix("https:")) { found.append("remote src \(attribute.value)") }
            case (_, "style"):
                for word in forbiddenInStyles where squeezed.contains(word) { found.append("\(word) in style") }
            default:
                if !safeAttributes.contains(name) { found.append("attribute \(name) on <\(element)>") }
            }
        }
        return found
    }

    /// Remote loads in output sanitised with remote images blocked.
    static func remoteLoads(in html: String) -> [String] {
        var found: [String] = []
        for case let .startTag(name, attributes, _) in HTMLTokenizer.tokenize(Array(html.utf8)) {
            for attribute in attributes where attribute.name == "src" {
                let squeezed = String(attribute.value.unicodeScalars.filter { $0.value > 0x20 }).lowercased()
                if squeezed.hasPrefix("http:") || squeezed.hasPrefix("https:") || squeezed.hasPrefix("//") {
                    found.append("<\(name) src=\(attribute.value)>")
                }
            }
        }
        return found
    }
}
