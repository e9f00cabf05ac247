/// A small RFC 4180 reader, as a pure function over the file's bytes (for `postern admin user
/// import`). Fields are separated by `,`; a field that holds `,`, `"` or a line break is quoted
/// and its quotes doubled. Accepted beyond the RFC, as spreadsheet exports write them: LF or bare
/// CR line ends as well as CRLF, a UTF-8 byte order mark, no line break after the last record.
/// Empty lines are skipped. A malformed record does not stop the reader: it is returned with the
/// reason, so the caller can refuse that one line and go on.
public enum CSV {
    /// One record: the 1-based line it starts on (a quoted line break makes it span several),
    /// and its fields, or why it could not be read.
    public struct Record: Sendable, Equatable {
        public var line: Int
        public var fields: Result<[String], Problem>

        public init(line: Int, fields: [String]) {
            self.line = line
            self.fields = .success(fields)
        }

        public init(line: Int, problem: Problem) {
            self.line = line
            self.fields = .failure(problem)
        }
    }

    /// Why a record was refused.
    public enum Problem: Error, Sendable, Equatable, CustomStringConvertible {
        /// `a"b`: quotes are allowed only around a whole field.
        case quoteInUnquotedField
        /// `"a"b`: something other than `,` or a line end after a closing quote.
        case textAfterClosingQuote
        /// The file ended inside a quoted field.
        case unterminatedQuote
        /// A field's bytes are not UTF-8.
        case notUTF8

        public var description: String {
            switch self {
            case .quoteInUnquotedField: return "a quote inside an unquoted field (quote the whole field and double the quote)"
            case .textAfterClosingQuote: return "text after the closing quote of a field"
            case .unterminatedQuote: return "a quoted field is not closed before the end of the file"
            case .notUTF8: return "not UTF-8"
            }
        }
    }

    /// Every record of `bytes`, in order.
    public static func parse(_ bytes: [UInt8]) -> [Record] {
        let quote: UInt8 = 0x22, comma: UInt8 = 0x2C, cr: UInt8 = 0x0D, lf: UInt8 = 0x0A
        var records: [Record] = []
        var fields: [[UInt8]] = []
        var field: [UInt8] = []
        var inQuotes = false, wasQuoted = false, afterClosingQuote = false
        var problem: Problem?
        var line = 1, recordLine = 1
        var i = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0

        func endField() {
            fields.append(field)
            field = []
            wasQuoted = false
            afterClosingQuote = false
        }
        func endRecord() {
            let quoted = wasQuoted
            endField()
            // An empty line is one unquoted empty field: skipped, not a record (`""` is one).
            let empty = fields.count == 1 && fields[0].isEmpty && !quoted && problem == nil
            if !empty {
                if let problem {
                    records.append(Record(line: recordLine, problem: problem))
                } else {
                    var texts: [String] = []
                    for f in fields {
                        guard let text = String(validating: f, as: UTF8.self) else {
                            problem = .notUTF8
                            break
                        }
                        texts.append(text)
                    }
                    records.append(problem.map { Record(line: recordLine, problem: $0) } ?? Record(line: recordLine, fields: texts))
                }
            }
            fields = []
            problem = nil
        }

        while i < bytes.count {
            let byte = bytes[i]
            i += 1
            if inQuotes {
                if byte == quote {
                    if i < bytes.count && bytes[i] == quote {
                        field.append(quote)
                        i += 1
                    } else {
                        inQuotes = false
                        afterClosingQuote = true
                    }
                } else {
                    if byte == lf || (byte == cr && (i == bytes.count || bytes[i] != lf)) { line += 1 }
                    field.append(byte)
                }
                continue
            }
            switch byte {
            case comma:
                endField()
            case cr, lf:
                if byte == cr && i < bytes.count && bytes[i] == lf { i += 1 }
                endRecord()
                line += 1
                recordLine = line
            case quote:
                if field.isEmpty && !wasQuoted && !afterClosingQuote {
                    inQuotes = true
                    wasQuoted = true
                } else if problem == nil {
                    problem = afterClosingQuote ? .textAfterClosingQuote : .quoteInUnquotedField
                }
            default:
                if afterClosingQuote && problem == nil { problem = .textAfterClosingQuote }
                field.append(byte)
            }
        }
        if inQuotes {
            problem = problem ?? .unterminatedQuote
            endRecord()
        } else if !field.isEmpty || !fields.isEmpty || wasQuoted || problem != nil {
            // The last record had no line break after it.
            endRecord()
        }
        return records
    }
}
