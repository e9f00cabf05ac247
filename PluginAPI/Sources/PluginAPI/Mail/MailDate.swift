import Foundation

/// An RFC 5322 date-time (`Date:` headers, `Received:` stamps), kept as written: the calendar
/// day and time in the writer's own zone plus that zone's offset. IMAP's SENTBEFORE/SENTON/
/// SENTSINCE compare the day as written (RFC 3501 §6.4.4: "disregarding time and timezone"),
/// sorting and INTERNALDATE need the instant; both are here.
public struct MailDate: Sendable, Equatable {
    public var year: Int
    public var month: Int
    public var day: Int
    public var hour: Int
    public var minute: Int
    public var second: Int
    /// Minutes east of UTC (`+0200` is 120). `-0000` and unknown zones are 0 (RFC 5322 §3.3).
    public var offsetMinutes: Int

    public init(year: Int, month: Int, day: Int, hour: Int = 0, minute: Int = 0, second: Int = 0, offsetMinutes: Int = 0) {
        self.year = year
        self.month = month
        self.day = day
        self.hour = hour
        self.minute = minute
        self.second = second
        self.offsetMinutes = offsetMinutes
    }

    /// The calendar day as written, as days since 1970-01-01 (for day comparisons).
    public var dayNumber: Int64 { Self.daysFromCivil(year: year, month: month, day: day) }

    /// Seconds since 1970 (UTC).
    public var secondsSince1970: Int64 {
        dayNumber * 86_400 + Int64(hour * 3600 + minute * 60 + second) - Int64(offsetMinutes * 60)
    }

    /// The UTC date-time of an instant.
    public init(secondsSince1970 t: Int64, offsetMinutes: Int = 0) {
        let local = t + Int64(offsetMinutes * 60)
        let days = local >= 0 ? local / 86_400 : (local - 86_399) / 86_400
        let rest = Int(local - days * 86_400)
        let (y, m, d) = Self.civil(fromDays: days)
        self.init(year: y, month: m, day: d, hour: rest / 3600, minute: rest % 3600 / 60, second: rest % 60, offsetMinutes: offsetMinutes)
    }

    static let monthNames = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    static let dayNames = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]   // 1970-01-01 was a Thursday

    /// `Mon, 2 Jan 2006 15:04:05 +0000` (RFC 5322 §3.3).
    public var rfc5322: String {
        let weekday = Self.dayNames[Int(((dayNumber % 7) + 7) % 7)]
        return "\(weekday), \(day) \(Self.monthNames[month - 1]) \(year) \(Self.two(hour)):\(Self.two(minute)):\(Self.two(second)) \(zone)"
    }

    /// `02-Jan-2006 15:04:05 +0000` (IMAP date-time, RFC 3501 §9).
    public var imap: String {
        let d = day < 10 ? " \(day)" : "\(day)"
        return "\(d)-\(Self.monthNames[month - 1])-\(year) \(Self.two(hour)):\(Self.two(minute)):\(Self.two(second)) \(zone)"
    }

    var zone: String {
        let sign = offsetMinutes < 0 ? "-" : "+", a = abs(offsetMinutes)
        return "\(sign)\(Self.two(a / 60))\(Self.two(a % 60))"
    }

    static func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }

    /// Parses an RFC 5322 date-time, accepting the obsolete forms still seen in mail (§4.3):
    /// missing day of week, two- and three-digit years, missing seconds, named zones (UT, GMT,
    /// EST ... PDT, military letters count as 0), comments and extra whitespace. Nil when the
    /// text is not a date.
    public init?(rfc5322 text: String) {
        // Comments out, commas to spaces: "Tue, 1 Jul 2003 10:52:37 +0200 (CEST)".
        var cleaned = ""
        var depth = 0
        for c in text {
            if c == "(" { depth += 1; continue }
            if c == ")" { depth = max(0, depth - 1); continue }
            if depth == 0 { cleaned.append(c == "," ? " " : c) }
        }
        var tokens = cleaned.split(whereSeparator: { $0.isWhitespace }).map(String.init)
        if let first = tokens.first, first.count >= 3, Self.dayNames.contains(where: { first.prefix(3).caseInsensitiveCompare($0) == .orderedSame }),
           Int(first) == nil {
            tokens.removeFirst()
        }
        guard tokens.count >= 4, let day = Int(tokens[0]), (1...31).contains(day),
              let month = Self.monthNames.firstIndex(where: { tokens[1].prefix(3).caseInsensitiveCompare($0) == .orderedSame }),
              tokens[1].count >= 3, var year = Int(tokens[2]), year >= 0 else { return nil }
        // RFC 5322 §4.3: two digits are 1950–2049, three digits add 1900.
        if tokens[2].count == 2 { year += year < 50 ? 2000 : 1900 } else if tokens[2].count == 3 { year += 1900 }
        let time = tokens[3].split(separator: ":", omittingEmptySubsequences: false).map { Int($0) }
        guard time.count == 2 || time.count == 3, time.allSatisfy({ $0 != nil }),
              let hour = time[0], let minute = time[1], (0...23).contains(hour), (0...59).contains(minute) else { return nil }
        let second = time.count == 3 ? time[2]! : 0
        guard (0...60).contains(second) else { return nil }
        var offset = 0
        if tokens.count >= 5 {
            let z = tokens[4]
            if (z.hasPrefix("+") || z.hasPrefix("-")), z.count == 5, let n = Int(z.dropFirst()) {
                offset = (n / 100 * 60 + n % 100) * (z.hasPrefix("-") ? -1 : 1)
            } else if let named = Self.namedZones[z.uppercased()] {
                offset = named * 60
            }
        }
        self.init(year: year, month: month + 1, day: day, hour: hour, minute: minute, second: second == 60 ? 59 : second, offsetMinutes: offset)
    }

    static let namedZones: [String: Int] = ["UT": 0, "UTC": 0, "GMT": 0, "Z": 0, "EST": -5, "EDT": -4, "CST": -6, "CDT": -5,
                                            "MST": -7, "MDT": -6, "PST": -8, "PDT": -7]

    // Howard Hinnant's civil-calendar algorithms (proleptic Gregorian).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = Int64((month + 9) % 12)
        let doy = (153 * mp + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civil(fromDays z0: Int64) -> (Int, Int, Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (Int(yoe + era * 400 + (m <= 2 ? 1 : 0)), Int(m), Int(d))
    }
}
