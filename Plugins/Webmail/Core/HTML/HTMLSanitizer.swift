/// Turns the HTML of a mail into HTML that is safe to put inside the webmail's own page: only
/// allow-listed elements and attributes, checked URLs and CSS, every string escaped, every element
/// closed. The output is built from tokens, never copied from the input, so whatever the input's
/// markup tricks, the browser reads the output exactly as it was written here.
package struct HTMLSanitizer {
    package struct Options: Sendable {
        /// Whether http(s) images keep their `src`; when false they are counted and the URL is
        /// kept in `remoteImageAttribute` for a "show images" action.
        package var allowRemoteImages: Bool
        /// Maps a `cid:` Content-ID to a same-origin URL for that part; nil drops the image.
        package var resolveContentID: @Sendable (String) -> String?
        /// Elements nested deeper than this are unwrapped (their text is kept).
        package var maximumDepth: Int

        package init(allowRemoteImages: Bool = false,
                     resolveContentID: @escaping @Sendable (String) -> String? = { _ in nil },
                     maximumDepth: Int = 100) {
            self.allowRemoteImages = allowRemoteImages
            self.resolveContentID = resolveContentID
            self.maximumDepth = maximumDepth
        }
    }

    package struct Result: Equatable, Sendable {
        package var html: String
        /// Images whose remote `src` was withheld.
        package var blockedRemoteImages: Int
        /// Start tags that did not make it to the output (html, head and body aside).
        package var droppedElements: Int
    }

    /// Where a withheld remote image URL is kept. Never read back from mail: a mail's own
    /// attribute of that name is dropped like any other `data-*`.
    package static let remoteImageAttribute = "data-postern-remote-src"
    /// Every link opens outside the webmail and tells the target nothing about it.
    package static let linkRel = "noopener noreferrer nofollow"

    package static func sanitize(_ html: [UInt8], options: Options = Options()) -> Result {
        var writer = SanitizingWriter(options: options)
        var tokenizer = HTMLTokenizer(html)
        while let token = tokenizer.next() { writer.consume(token) }
        return writer.finish()
    }

    package static func sanitize(_ html: String, options: Options = Options()) -> Result {
        sanitize(Array(html.utf8), options: options)
    }
}

/// The token-by-token state of one sanitisation: the open allowed elements, and whether the
/// tokens are inside something dropped with its content or inside the head.
private struct SanitizingWriter {
    let options: HTMLSanitizer.Options
    var output: [UInt8] = []
    var openElements: [String] = []
    /// The element being dropped with its content, and how many of that name are open inside it.
    var skippedElement: String?
    var skippedDepth = 0
    var inHead = false
    var blockedRemoteImages = 0
    var droppedElements = 0

    init(options: HTMLSanitizer.Options) {
        self.options = options
    }

    mutating func consume(_ token: HTMLToken) {
        switch token {
        case let .startTag(name, attributes, selfClosing): startTag(name, attributes: attributes, selfClosing: selfClosing)
        case let .endTag(name): endTag(name)
        case let .text(text): self.text(text)
        case .comment, .doctype: break  // conditional comments and declarations carry nothing to show
        }
    }

    mutating func finish() -> HTMLSanitizer.Result {
        closeElements(downTo: 0)
        return HTMLSanitizer.Result(html: String(decoding: output, as: UTF8.self),
                                    blockedRemoteImages: blockedRemoteImages, droppedElements: droppedElements)
    }

    // MARK: - Tokens

    private mutating func text(_ text: String) {
        if skippedElement != nil { return }
        if inHead {
            // Text that is not whitespace starts the body, as in a browser.
            if text.trimmingASCIIWhitespace().isEmpty { return }
            inHead = false
        }
        HTMLEscaping.appendEscaped(text, to: &output)
    }

    private static let headContent: Set<String> = [
        "base", "basefont", "bgsound", "link", "meta", "noframes", "noscript", "script", "style", "template", "title",
    ]

    private mutating func startTag(_ name: String, attributes: [HTMLAttribute], selfClosing: Bool) {
        if let skipped = skippedElement {
            if name == skipped, !(selfClosing && Self.isForeignRoot(name)) { skippedDepth += 1 }
            droppedElements += 1
            return
        }
        if inHead {
            if name == "head" || name == "html" { return }
            if name == "body" {
                inHead = false
                return
            }
            if Self.headContent.contains(name) {
                drop(name, selfClosing: selfClosing)
                return
            }
            inHead = false  // anything else starts the body, as in a browser
        }
        if HTMLAllowList.documentStructure.contains(name) {
            if name == "head" { inHead = true }
            return
        }
        if HTMLAllowList.droppedWithContent.contains(name) {
            drop(name, selfClosing: selfClosing)
            return
        }
        guard HTMLAllowList.elements.contains(name) else {
            droppedElements += 1  // unknown: unwrapped, its text stays
            return
        }
        closeImpliedElements(before: name)
        let isVoid = HTMLAllowList.voidElements.contains(name)
        guard isVoid || openElements.count < options.maximumDepth,
              let kept = keptAttributes(of: name, attributes) else {
            droppedElements += 1
            return
        }
        output.append(UInt8(ascii: "<"))
        output += Array(name.utf8)
        for (attributeName, value) in kept {
            output += Array(" \(attributeName)=\"".utf8)
            HTMLEscaping.appendEscaped(value, to: &output)
            output.append(UInt8(ascii: "\""))
        }
        output.append(UInt8(ascii: ">"))
        if !isVoid { openElements.append(name) }
    }

    private static func isForeignRoot(_ name: String) -> Bool { name == "svg" || name == "math" }

    /// Drops an element with its content. Void elements have none, and `<svg/>` is complete in
    /// itself; other self-closing flags mean nothing in HTML, so `<object/>` still has content.
    private mutating func drop(_ name: String, selfClosing: Bool) {
        droppedElements += 1
        if HTMLAllowList.voidElements.contains(name) || (selfClosing && Self.isForeignRoot(name)) { return }
        skippedElement = name
        skippedDepth = 1
    }

    private mutating func endTag(_ name: String) {
        if let skipped = skippedElement {
            if name == skipped {
                skippedDepth -= 1
                if skippedDepth == 0 { skippedElement = nil }
            }
            return
        }
        if inHead {
            if name == "head" || name == "body" || name == "html" { inHead = false }
            return
        }
        guard HTMLAllowList.elements.contains(name), !HTMLAllowList.voidElements.contains(name) else { return }
        // Nothing closes past a table except the table's own parts, as in a browser.
        for index in openElements.indices.reversed() {
            let open = openElements[index]
            if open == name {
                closeElements(downTo: index)
                return
            }
            if open == "table" || (Self.tableCells.contains(open) && !Self.tableParts.contains(name)) { return }
        }
    }

    private mutating func closeElements(downTo count: Int) {
        while openElements.count > count {
            output += Array("</\(openElements.removeLast())>".utf8)
        }
    }

    // MARK: - Implied end tags

    private static let tableCells: Set<String> = ["td", "th", "caption"]
    private static let tableParts: Set<String> = ["table", "caption", "colgroup", "thead", "tbody", "tfoot", "tr", "td", "th"]
    private static let headings: Set<String> = ["h1", "h2", "h3", "h4", "h5", "h6"]

    /// Start tags that end an open paragraph.
    private static let paragraphClosers: Set<String> = [
        "address", "article", "aside", "blockquote", "center", "details", "div", "dl", "figcaption", "figure",
        "footer", "header", "hgroup", "main", "nav", "ol", "p", "section", "summary", "ul", "h1", "h2", "h3", "h4",
        "h5", "h6", "pre", "table", "hr", "li", "dd", "dt",
    ]

    /// The spec's "special" elements that stop the search for an open `li`, `dd` or `dt`.
    private static let listItemBoundaries: Set<String> = [
        "article", "aside", "blockquote", "caption", "center", "col", "colgroup", "details", "dl", "figcaption",
        "figure", "footer", "header", "hgroup", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "main", "nav", "ol", "pre",
        "section", "summary", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
    ]

    /// Mail HTML leaves `p`, `li` and `td` unclosed all the time; closing them where a browser
    /// would keeps the output's structure the browser's, and keeps such mail under the depth cap.
    private mutating func closeImpliedElements(before name: String) {
        if Self.paragraphClosers.contains(name) {
            closeNearest(["p"], stoppingAt: Self.tableCells.union(["table"]))
        }
        switch name {
        case "li":
            closeNearest(["li"], stoppingAt: Self.listItemBoundaries)
        case "dd", "dt":
            closeNearest(["dd", "dt"], stoppingAt: Self.listItemBoundaries)
        case "tr":
            closeNearest(["tr"], stoppingAt: ["table", "thead", "tbody", "tfoot"])
        case "td", "th":
            closeNearest(["td", "th"], stoppingAt: ["tr", "table", "thead", "tbody", "tfoot"])
        case "thead", "tbody", "tfoot":
            closeNearest(["thead", "tbody", "tfoot"], stoppingAt: ["table"])
        case "a":
            closeNearest(["a"], stoppingAt: Self.tableParts)
        case _ where Self.headings.contains(name):
            if let current = openElements.last, Self.headings.contains(current) { closeElements(downTo: openElements.count - 1) }
        default:
            break
        }
    }

    private mutating func closeNearest(_ targets: Set<String>, stoppingAt boundaries: Set<String>) {
        for index in openElements.indices.reversed() {
            if targets.contains(openElements[index]) {
                closeElements(downTo: index)
                return
            }
            if boundaries.contains(openElements[index]) { return }
        }
    }

    // MARK: - Attributes

    /// The attributes to write, in the mail's order, or nil when the element must go (an image
    /// with no usable source).
    private mutating func keptAttributes(of element: String, _ attributes: [HTMLAttribute]) -> [(String, String)]? {
        var kept: [(String, String)] = []
        var hasLink = false
        var hasImageSource = false
        var withholdsRemoteImage = false
        for attribute in attributes {
            guard let rule = HTMLAllowList.rule(element: element, attribute: attribute.name) else { continue }
            switch rule {
            case .link:
                if let url = MailURLPolicy.link(attribute.value) {
                    kept.append(("href", url))
                    hasLink = true
                }
            case .imageSource:
                guard let source = MailURLPolicy.imageSource(attribute.value) else { continue }
                switch source {
                case let .contentID(contentID):
                    guard let resolved = options.resolveContentID(contentID) else { continue }
                    kept.append(("src", resolved))
                case let .remote(url) where !options.allowRemoteImages:
                    kept.append((HTMLSanitizer.remoteImageAttribute, url))
                    withholdsRemoteImage = true
                case let .remote(url), let .inlineData(url):
                    kept.append(("src", url))
                }
                hasImageSource = true
            case .style:
                let style = CSSSanitizer.sanitizedDeclarations(attribute.value)
                if !style.isEmpty { kept.append(("style", style)) }
            default:
                if let value = HTMLAllowList.checkedValue(attribute.value, rule: rule) { kept.append((attribute.name, value)) }
            }
        }
        if element == "img" {
            guard hasImageSource else { return nil }
            if withholdsRemoteImage { blockedRemoteImages += 1 }
        }
        if hasLink {
            kept.append(("rel", HTMLSanitizer.linkRel))
            kept.append(("target", "_blank"))
        }
        return kept
    }
}
