/// One attribute as the tokenizer read it: name ASCII-lowercased, value with references decoded.
package struct HTMLAttribute: Equatable, Sendable {
    package var name: String
    package var value: String

    package init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// What the tokenizer yields. Adjacent text is always one `.text` token.
package enum HTMLToken: Equatable, Sendable {
    case startTag(name: String, attributes: [HTMLAttribute], selfClosing: Bool)
    case endTag(name: String)
    case text(String)
    case comment(String)
    case doctype(String)
}

/// An HTML5-style tokenizer over UTF-8 bytes, one byte per step of a state machine. It follows the
/// WHATWG states closely where a divergence could let markup hide from the sanitizer (comments,
/// raw text, attribute quoting, references); it has no tree builder, so it switches to raw text
/// itself after the start tag of a raw-text element, as a browser's tree builder would.
///
/// Invalid UTF-8 and NUL become U+FFFD. Every step consumes a byte or changes to a state that
/// will, and look-ahead is bounded, so any input ends in time linear in its length.
package struct HTMLTokenizer: Sequence, IteratorProtocol {
    private enum State {
        case data, rawText, plainText, tagOpen, endTagOpen, tagName
        case beforeAttributeName, attributeName, afterAttributeName, beforeAttributeValue
        case attributeValueDoubleQuoted, attributeValueSingleQuoted, attributeValueUnquoted
        case afterAttributeValueQuoted, selfClosingStartTag
        case commentStart, commentStartDash, comment, commentEndDash, commentEnd, commentEndBang
        case bogusComment, doctype
    }

    /// Elements whose content is text up to their own end tag, never markup.
    static let rawTextElements: Set<String> = ["script", "style", "xmp", "iframe", "noembed", "noframes", "noscript"]
    /// Raw text in which references are still decoded.
    static let escapableRawTextElements: Set<String> = ["textarea", "title"]

    private let input: [UInt8]
    private var position = 0
    private var state = State.data
    private var finished = false
    private var ready: [HTMLToken] = []
    private var readyIndex = 0

    private var text: [UInt8] = []
    private var commentData: [UInt8] = []
    private var tagIsEnd = false
    private var tagName: [UInt8] = []
    private var tagSelfClosing = false
    private var attributes: [HTMLAttribute] = []
    private var attributeNamesSeen: Set<[UInt8]> = []
    private var attributeName: [UInt8] = []
    private var attributeValue: [UInt8] = []
    private var attributeOpen = false
    /// The end tag that closes the current raw text (`script`, `title`, ...).
    private var rawTextEndTag: [UInt8] = []
    private var rawTextDecodesReferences = false

    package init(_ input: [UInt8]) {
        self.input = input
    }

    package static func tokenize(_ input: [UInt8]) -> [HTMLToken] {
        Array(HTMLTokenizer(input))
    }

    package mutating func next() -> HTMLToken? {
        while readyIndex == ready.count {
            ready.removeAll(keepingCapacity: true)
            readyIndex = 0
            if finished { return nil }
            if position < input.count {
                let byte = input[position]
                position += 1
                step(byte)
            } else {
                endOfInput()
                finished = true
            }
        }
        defer { readyIndex += 1 }
        return ready[readyIndex]
    }

    // MARK: - The states

    private mutating func step(_ byte: UInt8) {
        switch state {
        case .data: data(byte)
        case .rawText: rawText(byte)
        case .plainText: appendText(byte)
        case .tagOpen: tagOpen(byte)
        case .endTagOpen: endTagOpen(byte)
        case .tagName: tagNameByte(byte)
        case .beforeAttributeName: beforeAttributeName(byte)
        case .attributeName: attributeNameByte(byte)
        case .afterAttributeName: afterAttributeName(byte)
        case .beforeAttributeValue: beforeAttributeValue(byte)
        case .attributeValueDoubleQuoted: quotedAttributeValue(byte, quote: UInt8(ascii: "\""))
        case .attributeValueSingleQuoted: quotedAttributeValue(byte, quote: UInt8(ascii: "'"))
        case .attributeValueUnquoted: unquotedAttributeValue(byte)
        case .afterAttributeValueQuoted: afterAttributeValueQuoted(byte)
        case .selfClosingStartTag: selfClosingStartTag(byte)
        case .commentStart, .commentStartDash, .comment, .commentEndDash, .commentEnd, .commentEndBang: commentByte(byte)
        case .bogusComment: bogusComment(byte)
        case .doctype: doctypeByte(byte)
        }
    }

    private mutating func reconsume(in newState: State) {
        position -= 1
        state = newState
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool {
        // CR counts too: the spec turns it into LF before tokenizing.
        byte == 0x09 || byte == 0x0A || byte == 0x0C || byte == 0x0D || byte == 0x20
    }

    private static func isASCIILetter(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte | 0x20)
    }

    private static func lowercased(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 : byte
    }

    private static let replacementCharacter: [UInt8] = [0xEF, 0xBF, 0xBD]

    private mutating func appendText(_ byte: UInt8) {
        if byte == 0 { text += Self.replacementCharacter } else { text.append(byte) }
    }

    /// A `&` in text or in a value: the decoded reference, or the `&` itself.
    private mutating func characterReference(inAttribute: Bool) -> [UInt8] {
        guard let reference = HTMLCharacterReference.decode(input, at: position, inAttribute: inAttribute) else {
            return [UInt8(ascii: "&")]
        }
        position += reference.length
        return reference.utf8
    }

    private mutating func data(_ byte: UInt8) {
        switch byte {
        case UInt8(ascii: "<"): state = .tagOpen
        case UInt8(ascii: "&"):
            let decoded = characterReference(inAttribute: false)
            text += decoded
        default: appendText(byte)
        }
    }

    private mutating func rawText(_ byte: UInt8) {
        if byte == UInt8(ascii: "<"), closesRawText(at: position) {
            // `</` and the name are consumed; the tag name state reads the delimiter that follows.
            position += 1 + rawTextEndTag.count
            beginTag(isEnd: true)
            tagName = rawTextEndTag
            state = .tagName
        } else if byte == UInt8(ascii: "&"), rawTextDecodesReferences {
            let decoded = characterReference(inAttribute: false)
            text += decoded
        } else {
            appendText(byte)
        }
    }

    /// Whether `/name` followed by whitespace, `/` or `>` starts at `index`: only then does raw
    /// text end, so `</scriptx>` and `</script` at the end of input stay text.
    private func closesRawText(at index: Int) -> Bool {
        let delimiterIndex = index + 1 + rawTextEndTag.count
        guard delimiterIndex < input.count, input[index] == UInt8(ascii: "/") else { return false }
        for (offset, expected) in rawTextEndTag.enumerated() where Self.lowercased(input[index + 1 + offset]) != expected {
            return false
        }
        let delimiter = input[delimiterIndex]
        return Self.isWhitespace(delimiter) || delimiter == UInt8(ascii: "/") || delimiter == UInt8(ascii: ">")
    }

    private mutating func tagOpen(_ byte: UInt8) {
        if byte == UInt8(ascii: "!") {
            markupDeclarationOpen()
        } else if byte == UInt8(ascii: "/") {
            state = .endTagOpen
        } else if Self.isASCIILetter(byte) {
            beginTag(isEnd: false)
            reconsume(in: .tagName)
        } else if byte == UInt8(ascii: "?") {
            commentData.removeAll(keepingCapacity: true)
            reconsume(in: .bogusComment)
        } else {
            text.append(UInt8(ascii: "<"))
            reconsume(in: .data)
        }
    }

    private mutating func endTagOpen(_ byte: UInt8) {
        if Self.isASCIILetter(byte) {
            beginTag(isEnd: true)
            reconsume(in: .tagName)
        } else if byte == UInt8(ascii: ">") {
            state = .data  // `</>` is nothing at all
        } else {
            commentData.removeAll(keepingCapacity: true)
            reconsume(in: .bogusComment)
        }
    }

    /// After `<!`: a comment, a DOCTYPE, or else a bogus comment up to the next `>`. CDATA is
    /// only CDATA in SVG and MathML, which the sanitizer drops, so here it is a bogus comment
    /// too, as in a browser's HTML content.
    private mutating func markupDeclarationOpen() {
        commentData.removeAll(keepingCapacity: true)
        if matches("--", caseInsensitive: false) {
            position += 2
            state = .commentStart
        } else if matches("doctype", caseInsensitive: true) {
            position += 7
            state = .doctype
        } else {
            state = .bogusComment
        }
    }

    private func matches(_ word: String, caseInsensitive: Bool) -> Bool {
        let bytes = Array(word.utf8)
        guard position + bytes.count <= input.count else { return false }
        for (offset, expected) in bytes.enumerated() {
            let byte = input[position + offset]
            if (caseInsensitive ? Self.lowercased(byte) : byte) != expected { return false }
        }
        return true
    }

    // MARK: - Tags and attributes

    private mutating func beginTag(isEnd: Bool) {
        tagIsEnd = isEnd
        tagName.removeAll(keepingCapacity: true)
        tagSelfClosing = false
        attributes.removeAll()
        attributeNamesSeen.removeAll()
        attributeOpen = false
    }

    private static func appendNameByte(_ byte: UInt8, to name: inout [UInt8]) {
        if byte == 0 { name += replacementCharacter } else { name.append(lowercased(byte)) }
    }

    private mutating func tagNameByte(_ byte: UInt8) {
        if Self.isWhitespace(byte) {
            state = .beforeAttributeName
        } else if byte == UInt8(ascii: "/") {
            state = .selfClosingStartTag
        } else if byte == UInt8(ascii: ">") {
            emitTag()
        } else {
            Self.appendNameByte(byte, to: &tagName)
        }
    }

    private mutating func beginAttribute() {
        finishAttribute()
        attributeName.removeAll(keepingCapacity: true)
        attributeValue.removeAll(keepingCapacity: true)
        attributeOpen = true
    }

    /// The first of duplicated attributes wins, as in browsers; a later `href` cannot replace a
    /// checked one.
    private mutating func finishAttribute() {
        guard attributeOpen else { return }
        attributeOpen = false
        guard attributeNamesSeen.insert(attributeName).inserted else { return }
        attributes.append(HTMLAttribute(name: String(decoding: attributeName, as: UTF8.self),
                                        value: String(decoding: attributeValue, as: UTF8.self)))
    }

    private mutating func beforeAttributeName(_ byte: UInt8) {
        if Self.isWhitespace(byte) { return }
        if byte == UInt8(ascii: "/") || byte == UInt8(ascii: ">") {
            reconsume(in: .afterAttributeName)
        } else if byte == UInt8(ascii: "=") {
            beginAttribute()
            attributeName.append(byte)
            state = .attributeName
        } else {
            beginAttribute()
            reconsume(in: .attributeName)
        }
    }

    private mutating func attributeNameByte(_ byte: UInt8) {
        if Self.isWhitespace(byte) || byte == UInt8(ascii: "/") || byte == UInt8(ascii: ">") {
            reconsume(in: .afterAttributeName)
        } else if byte == UInt8(ascii: "=") {
            state = .beforeAttributeValue
        } else {
            Self.appendNameByte(byte, to: &attributeName)
        }
    }

    private mutating func afterAttributeName(_ byte: UInt8) {
        if Self.isWhitespace(byte) { return }
        if byte == UInt8(ascii: "/") {
            state = .selfClosingStartTag
        } else if byte == UInt8(ascii: "=") {
            state = .beforeAttributeValue
        } else if byte == UInt8(ascii: ">") {
            emitTag()
        } else {
            beginAttribute()
            reconsume(in: .attributeName)
        }
    }

    private mutating func beforeAttributeValue(_ byte: UInt8) {
        if Self.isWhitespace(byte) { return }
        switch byte {
        case UInt8(ascii: "\""): state = .attributeValueDoubleQuoted
        case UInt8(ascii: "'"): state = .attributeValueSingleQuoted
        case UInt8(ascii: ">"): emitTag()
        default: reconsume(in: .attributeValueUnquoted)
        }
    }

    private mutating func appendValueByte(_ byte: UInt8) {
        if byte == 0 { attributeValue += Self.replacementCharacter } else { attributeValue.append(byte) }
    }

    private mutating func quotedAttributeValue(_ byte: UInt8, quote: UInt8) {
        if byte == quote {
            state = .afterAttributeValueQuoted
        } else if byte == UInt8(ascii: "&") {
            let decoded = characterReference(inAttribute: true)
            attributeValue += decoded
        } else {
            appendValueByte(byte)
        }
    }

    private mutating func unquotedAttributeValue(_ byte: UInt8) {
        if Self.isWhitespace(byte) {
            state = .beforeAttributeName
        } else if byte == UInt8(ascii: ">") {
            emitTag()
        } else if byte == UInt8(ascii: "&") {
            let decoded = characterReference(inAttribute: true)
            attributeValue += decoded
        } else {
            appendValueByte(byte)  // quotes, `<`, `=` and backticks are part of the value
        }
    }

    private mutating func afterAttributeValueQuoted(_ byte: UInt8) {
        if Self.isWhitespace(byte) {
            state = .beforeAttributeName
        } else if byte == UInt8(ascii: "/") {
            state = .selfClosingStartTag
        } else if byte == UInt8(ascii: ">") {
            emitTag()
        } else {
            reconsume(in: .beforeAttributeName)
        }
    }

    private mutating func selfClosingStartTag(_ byte: UInt8) {
        if byte == UInt8(ascii: ">") {
            tagSelfClosing = true
            emitTag()
        } else {
            reconsume(in: .beforeAttributeName)
        }
    }

    private mutating func emitTag() {
        finishAttribute()
        let name = String(decoding: tagName, as: UTF8.self)
        if tagIsEnd {
            emit(.endTag(name: name))  // attributes on end tags mean nothing
            state = .data
            return
        }
        emit(.startTag(name: name, attributes: attributes, selfClosing: tagSelfClosing))
        if Self.rawTextElements.contains(name) || Self.escapableRawTextElements.contains(name) {
            rawTextEndTag = tagName
            rawTextDecodesReferences = Self.escapableRawTextElements.contains(name)
            state = .rawText
        } else if name == "plaintext" {
            state = .plainText
        } else {
            state = .data
        }
    }

    // MARK: - Comments and declarations

    /// The spec's comment states: `<!-->` and `<!--->` are whole (empty) comments, `--!>` ends
    /// one too, and an unterminated comment runs to the end of input.
    private mutating func commentByte(_ byte: UInt8) {
        let dash = UInt8(ascii: "-"), greaterThan = UInt8(ascii: ">")
        switch state {
        case .commentStart:
            if byte == dash { state = .commentStartDash } else if byte == greaterThan { emitComment() } else { reconsume(in: .comment) }
        case .commentStartDash:
            if byte == dash { state = .commentEnd } else if byte == greaterThan { emitComment() } else {
                commentData.append(dash)
                reconsume(in: .comment)
            }
        case .commentEndDash:
            if byte == dash { state = .commentEnd } else {
                commentData.append(dash)
                reconsume(in: .comment)
            }
        case .commentEnd:
            if byte == greaterThan { emitComment() } else if byte == UInt8(ascii: "!") { state = .commentEndBang } else if byte == dash {
                commentData.append(dash)
            } else {
                commentData += [dash, dash]
                reconsume(in: .comment)
            }
        case .commentEndBang:
            if byte == greaterThan { emitComment() } else {
                commentData += Array("--!".utf8)
                if byte == dash { state = .commentEndDash } else { reconsume(in: .comment) }
            }
        default:
            if byte == dash { state = .commentEndDash } else if byte == 0 { commentData += Self.replacementCharacter } else { commentData.append(byte) }
        }
    }

    private mutating func emitComment() {
        emit(.comment(String(decoding: commentData, as: UTF8.self)))
        state = .data
    }

    private mutating func bogusComment(_ byte: UInt8) {
        if byte == UInt8(ascii: ">") {
            emitComment()
        } else if byte == 0 {
            commentData += Self.replacementCharacter
        } else {
            commentData.append(byte)
        }
    }

    private mutating func doctypeByte(_ byte: UInt8) {
        if byte == UInt8(ascii: ">") {
            emitDoctype()
        } else {
            commentData.append(byte == 0 ? UInt8(ascii: "?") : byte)
        }
    }

    private mutating func emitDoctype() {
        let body = String(decoding: commentData, as: UTF8.self)
        emit(.doctype(body.trimmingASCIIWhitespace()))
        state = .data
    }

    // MARK: - Emitting

    private mutating func flushText() {
        guard !text.isEmpty else { return }
        ready.append(.text(String(decoding: text, as: UTF8.self)))
        text.removeAll(keepingCapacity: true)
    }

    private mutating func emit(_ token: HTMLToken) {
        flushText()
        ready.append(token)
    }

    /// What the spec does at end of input in each state: a half-read tag is dropped, a comment or
    /// declaration is emitted as far as it got, a lone `<` or `</` is text.
    private mutating func endOfInput() {
        switch state {
        case .tagOpen: text.append(UInt8(ascii: "<"))
        case .endTagOpen: text += Array("</".utf8)
        case .commentStart, .commentStartDash, .comment, .commentEndDash, .commentEnd, .commentEndBang, .bogusComment:
            emitComment()
        case .doctype: emitDoctype()
        default: break
        }
        flushText()
    }
}

extension String {
    /// Trims HTML's whitespace (space, tab, LF, FF, CR), scalar by scalar: as Characters a CR LF
    /// pair is one grapheme that equals neither.
    func trimmingASCIIWhitespace() -> String {
        let scalars = unicodeScalars
        let isSpace: (Unicode.Scalar) -> Bool = { [" ", "\t", "\n", "\r", "\u{0C}"].contains($0) }
        guard let first = scalars.firstIndex(where: { !isSpace($0) }),
              let last = scalars.lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(scalars[first...last])
    }
}
