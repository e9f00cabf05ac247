/// How an allowed attribute's value is checked. Presentational values get a strict shape, so a
/// value can never carry more than the attribute means (no CSS, no script, no URL smuggling).
enum HTMLAttributeRule: Equatable, Sendable {
    /// Free text (title, alt): harmless once escaped.
    case text
    /// A number, optionally `%` or `px`: width, height, colspan, border, ...
    case number
    /// `#hex` or a colour name.
    case color
    /// A keyword such as `center`, `rtl`, `top`, `1`, `a`.
    case keyword
    /// A BCP 47 language tag.
    case language
    /// `<font size>`: 1 to 7, optionally signed.
    case fontSize
    /// `<font face>`: a list of family names.
    case fontFace
    /// A boolean attribute (`open`, `nowrap`): written back as `name=""`.
    case flag
    /// `<a href>`: http, https, mailto only.
    case link
    /// `<img src>`: cid, http(s), or a raster data URL.
    case imageSource
    /// Sanitised by `CSSSanitizer`.
    case style
}

/// What the sanitizer lets through, and what it removes with everything inside it.
enum HTMLAllowList {
    /// Structure and text formatting: nothing here runs code, loads anything, takes input or
    /// escapes its box.
    static let elements: Set<String> = [
        "a", "abbr", "acronym", "address", "article", "aside", "b", "bdi", "bdo", "big", "blockquote", "br",
        "caption", "center", "cite", "code", "col", "colgroup", "dd", "del", "details", "dfn", "div", "dl", "dt",
        "em", "figcaption", "figure", "font", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hgroup",
        "hr", "i", "img", "ins", "kbd", "li", "main", "mark", "nav", "ol", "p", "pre", "q", "rp", "rt", "ruby",
        "s", "samp", "section", "small", "span", "strike", "strong", "sub", "summary", "sup", "table", "tbody",
        "td", "tfoot", "th", "thead", "time", "tr", "tt", "u", "ul", "var", "wbr",
    ]

    /// Elements with no content and no end tag, allowed or not: an unknown one must not start a
    /// subtree the sanitizer waits to close.
    static let voidElements: Set<String> = [
        "area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "image", "img", "input",
        "keygen", "link", "meta", "param", "source", "track", "wbr",
    ]

    /// Removed with all their content: active content, embedded documents, forms, media, metadata
    /// and the raw-text elements whose text is code or markup. Anything else unknown is unwrapped.
    static let droppedWithContent: Set<String> = [
        "applet", "audio", "base", "button", "canvas", "datalist", "dialog", "embed", "fencedframe", "form",
        "frame", "frameset", "head", "iframe", "input", "link", "math", "meta", "noembed", "noframes",
        "noscript", "object", "optgroup", "option", "plaintext", "portal", "script", "select", "style", "svg",
        "template", "textarea", "title", "video", "xmp",
    ]

    /// Unwrapped without counting as dropped: every HTML mail has them.
    static let documentStructure: Set<String> = ["html", "head", "body"]

    private static let globalAttributes: [String: HTMLAttributeRule] = [
        "dir": .keyword, "lang": .language, "title": .text, "align": .keyword, "valign": .keyword,
        "width": .number, "height": .number, "colspan": .number, "rowspan": .number, "border": .number,
        "cellpadding": .number, "cellspacing": .number, "bgcolor": .color, "color": .color, "face": .fontFace,
        "size": .fontSize, "style": .style, "alt": .text,
    ]

    private static let elementAttributes: [String: [String: HTMLAttributeRule]] = [
        "a": ["href": .link],
        "img": ["src": .imageSource],
        "ol": ["start": .number, "type": .keyword, "reversed": .flag],
        "ul": ["type": .keyword],
        "li": ["value": .number, "type": .keyword],
        "td": ["nowrap": .flag, "scope": .keyword],
        "th": ["nowrap": .flag, "scope": .keyword],
        "col": ["span": .number],
        "colgroup": ["span": .number],
        "details": ["open": .flag],
        "table": ["frame": .keyword, "rules": .keyword],
        "hr": ["noshade": .flag],
        "br": ["clear": .keyword],
    ]

    static func rule(element: String, attribute: String) -> HTMLAttributeRule? {
        elementAttributes[element]?[attribute] ?? globalAttributes[attribute]
    }

    /// The value as it may be written back, or nil when it does not have the rule's shape.
    /// `link`, `imageSource` and `style` are checked by their own policies.
    static func checkedValue(_ value: String, rule: HTMLAttributeRule) -> String? {
        let trimmed = value.trimmingASCIIWhitespace()
        let bytes = Array(trimmed.utf8)
        func all(_ allowed: (UInt8) -> Bool, maxLength: Int) -> Bool {
            !bytes.isEmpty && bytes.count <= maxLength && bytes.allSatisfy(allowed)
        }
        switch rule {
        case .text, .link, .imageSource, .style:
            return value
        case .flag:
            return ""
        case .number:
            var digits = bytes[...]
            if digits.first == UInt8(ascii: "-") { digits = digits.dropFirst() }
            if digits.last == UInt8(ascii: "%") {
                digits = digits.dropLast()
            } else if digits.count > 2, digits.suffix(2).map({ $0 | 0x20 }) == Array("px".utf8) {
                digits = digits.dropLast(2)
            }
            let shaped = !digits.isEmpty && digits.count <= 9 && digits.allSatisfy { isDigit($0) || $0 == UInt8(ascii: ".") }
                && isDigit(digits.first ?? 0)
            return shaped ? trimmed : nil
        case .color:
            let body = bytes.first == UInt8(ascii: "#") ? Array(bytes.dropFirst()) : bytes
            return !body.isEmpty && body.count <= 20 && body.allSatisfy(isAlphanumeric) ? trimmed : nil
        case .keyword:
            return all({ isAlphanumeric($0) || $0 == UInt8(ascii: "-") }, maxLength: 20) ? trimmed : nil
        case .language:
            return all({ isAlphanumeric($0) || $0 == UInt8(ascii: "-") }, maxLength: 35) ? trimmed : nil
        case .fontSize:
            let body = bytes.first == UInt8(ascii: "+") || bytes.first == UInt8(ascii: "-") ? Array(bytes.dropFirst()) : bytes
            return !body.isEmpty && body.count <= 2 && body.allSatisfy(isDigit) ? trimmed : nil
        case .fontFace:
            let allowed: (UInt8) -> Bool = {
                isAlphanumeric($0) || [UInt8(ascii: " "), UInt8(ascii: ","), UInt8(ascii: "-"), UInt8(ascii: "_"),
                                       UInt8(ascii: "'"), UInt8(ascii: "\"")].contains($0) || $0 >= 0x80
            }
            return all(allowed, maxLength: 200) ? trimmed : nil
        }
    }

    private static func isDigit(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        isDigit(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte | 0x20)
    }
}
