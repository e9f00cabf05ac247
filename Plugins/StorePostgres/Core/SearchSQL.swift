import PluginAPI
import PluginPostgres

/// A SEARCH that needs no content (flags, UIDs, sizes, internal dates, MODSEQ) as one SQL
/// condition over `message`, with the matcher's semantics exactly: flags compared without ASCII
/// case (`COLLATE "C"`, whatever the database's locale), days as UTC days rounded down.
struct SearchSQL {
    private(set) var bindings = PostgresBindings()
    private var count = 0

    /// The condition for `query`, its values bound as `$first`, `$first+1`, ...
    init(first: Int) { count = first - 1 }

    mutating func bind<Value: PostgresThrowingDynamicTypeEncodable>(_ value: Value) throws -> String {
        try bindings.append(value)
        count += 1
        return "$\(count)"
    }

    /// Nil when the query needs content (the caller then runs the matcher).
    mutating func condition(_ query: SearchQuery) throws -> String? {
        switch query {
        case .all: return "TRUE"
        case .and(let parts):
            guard !parts.isEmpty else { return "TRUE" }
            var out: [String] = []
            for part in parts { guard let c = try condition(part) else { return nil }; out.append(c) }
            return "(" + out.joined(separator: " AND ") + ")"
        case .or(let a, let b):
            guard let x = try condition(a), let y = try condition(b) else { return nil }
            return "(\(x) OR \(y))"
        case .not(let q):
            guard let c = try condition(q) else { return nil }
            return "NOT \(c)"
        case .uids(let ranges):
            guard !ranges.isEmpty else { return "FALSE" }
            var out: [String] = []
            for r in ranges { out.append("uid BETWEEN \(try bind(Int64(r.lowerBound))) AND \(try bind(Int64(r.upperBound)))") }
            return "(" + out.joined(separator: " OR ") + ")"
        case .flag(let flag):
            let folded = String(decoding: flag.utf8.map { ($0 >= 0x41 && $0 <= 0x5A) ? $0 | 0x20 : $0 }, as: UTF8.self)
            return "strpos(' ' || lower(flags COLLATE \"C\") || ' ', \(try bind(" \(folded) "))) > 0"
        case .larger(let n): return "size > \(try bind(Int64(n)))"
        case .smaller(let n): return "size < \(try bind(Int64(n)))"
        case .modseqAtLeast(let m): return "modseq >= \(try bind(Int64(clamping: m)))"
        case .internalDate(let cmp, let day):
            let utcDay = "((internal_date - ((internal_date % 86400 + 86400) % 86400)) / 86400)"
            let op = cmp == .before ? "<" : cmp == .on ? "=" : ">="
            return "\(utcDay) \(op) \(try bind(day))"
        case .header, .body, .text, .sentDate:
            return nil
        }
    }
}
