import GRDB
import PluginAPI

/// A `SearchQuery` as SQL over `message m` (and, for content criteria, `search_text t`, the
/// text `SearchableText` keeps of each blob), so that SEARCH reads only the rows that can match.
///
/// Each criterion becomes two conditions: `sure`, true only for rows that certainly match, and
/// `maybe`, true for every row that might (a superset). Index criteria (flags, UIDs, sizes,
/// dates, MODSEQ) and text criteria on ASCII text are exact, so both are the same. Where SQL
/// cannot decide exactly as `SearchMatcher` does (non-ASCII text, where Unicode case folding and
/// canonical equivalence come in; header fields other than the five IMAP names; a message whose
/// text was never indexed), `maybe` is a prefilter and the caller confirms those rows with the
/// matcher itself, on the message's content. NOT swaps the two: a row surely not matching `q`
/// is one that does not even maybe match it.
///
/// Every condition is 0 or 1, never NULL (SQL's NOT of NULL is NULL, which would lose rows).
struct SearchCondition {
    var sure: SearchClause
    var maybe: SearchClause

    init(sure: SearchClause, maybe: SearchClause) {
        self.sure = sure
        self.maybe = maybe
    }

    /// Exact: both the same.
    init(exact: SearchClause) { self.init(sure: exact, maybe: exact) }

    /// `query` as conditions. `topLevel`: the criterion is the query or one of the criteria its
    /// top-level AND requires, where an index can narrow the rows SQLite reads.
    init(_ query: SearchQuery, topLevel: Bool = true) {
        switch query {
        case .all: self.init(exact: .true)
        case .and(let qs):
            let parts = qs.map { SearchCondition($0, topLevel: topLevel) }
            self.init(sure: .joined(parts.map(\.sure), "AND", empty: .true), maybe: .joined(parts.map(\.maybe), "AND", empty: .true))
        case .or(let a, let b):
            let (x, y) = (SearchCondition(a, topLevel: false), SearchCondition(b, topLevel: false))
            self.init(sure: .joined([x.sure, y.sure], "OR", empty: .false), maybe: .joined([x.maybe, y.maybe], "OR", empty: .false))
        case .not(.flag(let flag)) where topLevel && Self.systemFlags.contains(flag.lowercased()):
            self.init(exact: Self.systemFlag(flag.lowercased(), set: false))
        case .not(let q):
            let inner = SearchCondition(q, topLevel: false)
            self.init(sure: inner.maybe.negated, maybe: inner.sure.negated)
        case .uids(let ranges):
            self.init(exact: .joined(ranges.map { SearchClause("m.uid BETWEEN \($0.lowerBound) AND \($0.upperBound)") }, "OR", empty: .false))
        case .flag(let flag):
            // As the matcher: the flag lowercased (Unicode), each stored flag folded in ASCII only,
            // which is what SQLite's own lower() does. Stored flags are separated by one space.
            let needle = flag.lowercased()
            guard !needle.isEmpty, !needle.contains(" ") else { self.init(exact: .false); return }
            if topLevel && Self.systemFlags.contains(needle) {
                self.init(exact: Self.systemFlag(needle, set: true))
            } else {
                self.init(exact: SearchClause(Self.hasFlag("?", in: "m.flags"), [needle]))
            }
        case .larger(let n): self.init(exact: SearchClause("m.size > \(n)"))
        case .smaller(let n): self.init(exact: SearchClause("m.size < \(n)"))
        case .modseqAtLeast(let modseq): self.init(exact: SearchClause("m.modseq >= \(Int64(clamping: modseq))"))
        case .internalDate(let cmp, let day):
            // MailDate's day of an instant: division rounding down, also before 1970.
            let dayOf = "(CASE WHEN m.internal_date >= 0 THEN m.internal_date / 86400 ELSE (m.internal_date - 86399) / 86400 END)"
            self.init(exact: SearchClause("\(dayOf) \(Self.comparison(cmp)) \(day)"))
        case .sentDate(let cmp, let day):
            self.init(indexed: SearchClause("t.sent_day IS NOT NULL AND t.sent_day \(Self.comparison(cmp)) \(day)"))
        case .header(let name, let value):
            let field = Self.asciiLowercased(name)
            if SearchableText.fieldNames.contains(field) {
                if value.isEmpty {
                    self.init(indexed: SearchClause("t.h_\(field) IS NOT NULL"))
                } else {
                    self.init(text: "t.h_\(field)", ascii: "t.header_ascii", value)
                }
            } else if value.isEmpty {
                // The header text holds `name: value` lines: a prefilter only (the name could
                // also appear inside a value).
                let runs = field.unicodeScalars.allSatisfy(\.isASCII) ? [field + ":"] : []
                self.init(sure: .false, maybe: Self.unindexedOr(Self.containsAll("t.header", runs)))
            } else {
                self.init(sure: .false, maybe: Self.unindexedOr(Self.containsAll("t.header", Self.asciiRuns(value.lowercased()))))
            }
        case .body(let text): self.init(text: "t.body", ascii: "t.body_ascii", text)
        case .text(let text):
            let header = SearchCondition(text: "t.header", ascii: "t.header_ascii", text)
            let body = SearchCondition(text: "t.body", ascii: "t.body_ascii", text)
            self.init(sure: .joined([header.sure, body.sure], "OR", empty: .false), maybe: .joined([header.maybe, body.maybe], "OR", empty: .false))
        }
    }

    /// The system flags, lowercased, in the order of their bits in `systemFlagBits`.
    static let systemFlags = ["\\seen", "\\answered", "\\flagged", "\\deleted", "\\draft"]

    /// Whether a system flag is set (or not), through the index on the system flags' bits
    /// (`systemFlagBits`): the bit values that have it so, which SQLite seeks one by one instead
    /// of reading every row. Computing the bits costs five comparisons per row where the index
    /// is not used, so only criteria at the top level take this form.
    static func systemFlag(_ flag: String, set: Bool) -> SearchClause {
        let bit = 1 << systemFlags.firstIndex(of: flag)!
        let values = (0..<(1 << systemFlags.count)).filter { ($0 & bit != 0) == set }.map(String.init)
        return SearchClause("\(systemFlagBits("m.flags")) IN (\(values.joined(separator: ",")))")
    }

    /// Whether the flags in `column` hold `flag` (an SQL expression giving the flag lowercased),
    /// as the matcher compares: the flag lowercased, each stored flag folded in ASCII only, which
    /// is what SQLite's own lower() does. Stored flags are separated by one space.
    static func hasFlag(_ flag: String, in column: String) -> String { "(instr(' ' || lower(\(column)) || ' ', ' ' || \(flag) || ' ') > 0)" }

    /// The system flags of the flags in `column` as bits: the expression of the index
    /// `message_system_flags`, which a query must spell the same for SQLite to use the index (a
    /// change here needs a migration that makes the index again).
    static func systemFlagBits(_ column: String) -> String {
        "(" + systemFlags.enumerated().map { "\(1 << $0.offset) * \(hasFlag("'\($0.element)'", in: column))" }.joined(separator: " + ") + ")"
    }

    /// A criterion on indexed values that is exact where the message's text is indexed, and must
    /// be confirmed where it is not.
    private init(indexed clause: SearchClause) {
        self.init(sure: SearchClause("t.blob_id IS NOT NULL AND (\(clause.sql))", clause.arguments).nonNull,
                  maybe: Self.unindexedOr(clause))
    }

    /// `column` (lowercased text, NULL where absent) contains `text` without case. Exact on
    /// ASCII text for an ASCII needle: the matcher's Unicode lowercasing and comparison are
    /// plain byte operations there. Otherwise a prefilter: every run of the needle's ASCII
    /// characters must appear in the text's bytes, since a character that compares equal to an
    /// ASCII one is that ASCII character (except `;` and `` ` ``, which U+037E and U+1FEF equal
    /// canonically, so runs break there).
    private init(text column: String, ascii flag: String, _ text: String) {
        let needle = text.lowercased()
        let exact = !needle.isEmpty && needle.unicodeScalars.allSatisfy { $0.value >= 0x01 && $0.value < 0x80 && $0 != "\r" && $0 != "\n" }
        let sure: SearchClause = exact
            ? SearchClause("t.blob_id IS NOT NULL AND \(flag) = 1 AND instr(\(column), ?) > 0", [needle]).nonNull
            : .false
        self.init(sure: sure, maybe: Self.unindexedOr(needle.isEmpty ? .true : Self.containsAll(column, Self.asciiRuns(needle))))
    }

    /// True where the message has no indexed text (it must be confirmed), else `clause`.
    private static func unindexedOr(_ clause: SearchClause) -> SearchClause {
        SearchClause("t.blob_id IS NULL OR (\(clause.sql))", clause.arguments).nonNull
    }

    /// Every string of `runs` occurs in `column`; true when there are none.
    private static func containsAll(_ column: String, _ runs: [String]) -> SearchClause {
        .joined(runs.map { SearchClause("instr(\(column), ?) > 0", [$0]) }, "AND", empty: .true)
    }

    /// The needle's longest stretches of characters that are each one ASCII scalar, other than
    /// the line ends, NUL and the two with non-ASCII canonical equivalents.
    static func asciiRuns(_ needle: String) -> [String] {
        var runs: [String] = [], current = ""
        for character in needle {
            let scalars = character.unicodeScalars
            if scalars.count == 1, let s = scalars.first, s.isASCII, s.value != 0, !"\r\n;`".unicodeScalars.contains(s) {
                current.unicodeScalars.append(s)
            } else if !current.isEmpty {
                runs.append(current)
                current = ""
            }
        }
        if !current.isEmpty { runs.append(current) }
        return runs
    }

    static func asciiLowercased(_ s: String) -> String {
        String(decoding: s.utf8.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }, as: UTF8.self)
    }

    private static func comparison(_ cmp: SearchQuery.DayComparison) -> String {
        switch cmp {
        case .before: return "<"
        case .on: return "="
        case .since: return ">="
        }
    }
}

/// A piece of SQL and its arguments, in order.
struct SearchClause {
    var sql: String
    var arguments: StatementArguments

    init(_ sql: String, _ arguments: StatementArguments = []) {
        self.sql = sql
        self.arguments = arguments
    }

    static let `true` = SearchClause("1")
    static let `false` = SearchClause("0")

    /// NULL (a NULL column somewhere inside) counted as false.
    var nonNull: SearchClause { SearchClause("COALESCE((\(sql)), 0)", arguments) }
    var negated: SearchClause { SearchClause("NOT (\(sql))", arguments) }

    /// The parts joined by `op`, nested as a balanced tree: SQLite limits an expression's depth
    /// (1,000), and a UID set after many expunges can have thousands of ranges.
    static func joined(_ parts: [SearchClause], _ op: String, empty: SearchClause) -> SearchClause {
        guard parts.count > 1 else { return parts.first ?? empty }
        let half = parts.count / 2
        let (a, b) = (joined(Array(parts[..<half]), op, empty: empty), joined(Array(parts[half...]), op, empty: empty))
        return SearchClause("(\(a.sql)) \(op) (\(b.sql))", a.arguments + b.arguments)
    }
}
