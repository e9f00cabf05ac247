/// The text of a message as `SearchMatcher` compares it, computed once so that a store can keep it
/// (the embedded store's search index) and answer header and body criteria without reading and
/// parsing the message again. Every string is exactly the one the matcher builds, so an index
/// built from them answers as the matcher does.
public struct SearchableText: Sendable, Equatable {
    /// Every header field as `name: value` (value decoded), one per line, lowercased: what TEXT
    /// searches in the header.
    public var header: String
    /// The decoded text of the body's text parts and enclosed messages, lowercased: what BODY
    /// searches.
    public var body: String
    /// The `Date:` field's day as written (days since 1970); nil without a parsable Date.
    public var sentDay: Int64?
    /// The decoded, lowercased values of the fields IMAP names in its own criteria (FROM, TO, CC,
    /// BCC, SUBJECT), by lowercased name; a name absent here has no such field.
    public var fields: [String: [String]]

    /// The fields kept one by one in `fields`.
    public static let fieldNames = ["from", "to", "cc", "bcc", "subject"]

    public init(header: String, body: String, sentDay: Int64?, fields: [String: [String]]) {
        self.header = header
        self.body = body
        self.sentDay = sentDay
        self.fields = fields
    }

    public init(message bytes: [UInt8]) {
        let header = MailHeaderBlock(parsing: bytes)
        self.header = Self.headerText(header)
        body = SearchMatcher.bodyText(of: MIMEMessage(parsing: bytes).root, in: bytes).lowercased()
        sentDay = Self.sentDay(header)
        var fields: [String: [String]] = [:]
        for name in Self.fieldNames {
            let values = header.all(name).map(Self.fieldText)
            if !values.isEmpty { fields[name] = values }
        }
        self.fields = fields
    }

    /// The header as TEXT searches it.
    static func headerText(_ header: MailHeaderBlock) -> String {
        header.fields.map { "\($0.name): \(EncodedWords.decode($0.value))" }.joined(separator: "\n").lowercased()
    }

    /// A field's value as a header criterion compares it.
    static func fieldText(_ field: MailHeaderField) -> String { EncodedWords.decode(field.value).lowercased() }

    /// The day of the `Date:` field as written, as SENTBEFORE/SENTON/SENTSINCE compare it.
    static func sentDay(_ header: MailHeaderBlock) -> Int64? {
        guard let field = header.first("Date"), let date = MailDate(rfc5322: field.text) else { return nil }
        return date.dayNumber
    }
}
