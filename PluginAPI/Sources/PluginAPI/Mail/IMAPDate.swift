// IMAP's dates (RFC 3501 `date`, `date-time`): read by the imap plugin's parser and by the IMAP
// client (`postern admin user move` reads INTERNALDATE), written by both.

/// Month names as IMAP writes them (RFC 3501 date-month).
let imapMonthNames = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

/// A calendar day as SEARCH takes it (`1-Feb-1994`, RFC 3501 `date`), checked against the
/// month's length (leap years included).
public struct IMAPDate: Sendable, Hashable, CustomStringConvertible {
    public let year: Int
    public let month: Int
    public let day: Int

    /// Nil unless the day exists.
    public init?(year: Int, month: Int, day: Int) {
        guard (1...9999).contains(year), (1...12).contains(month), day >= 1,
              day <= IMAPDate.daysIn(month: month, year: year) else { return nil }
        self.year = year
        self.month = month
        self.day = day
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// `d-Mon-yyyy` as written in a SEARCH key.
    public var description: String { "\(day)-\(imapMonthNames[month - 1])-\(year)" }

    /// Days since 1970-01-01 (negative before), for comparing with stored times.
    public var daysSince1970: Int {
        // Days from the civil calendar (proleptic Gregorian), after H. Hinnant's algorithm.
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    /// The day `days` after 1970-01-01.
    public init(daysSince1970 days: Int) {
        let z = days + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        year = yoe + era * 400 + (m <= 2 ? 1 : 0)
        month = m
        day = d
    }

    /// Parses `d-Mon-yyyy` (day of one or two digits, month in any case, four-digit year).
    public static func parse<Bytes: Collection>(_ text: Bytes) -> IMAPDate? where Bytes.Element == UInt8 {
        let parts = Array(text).split(separator: UInt8(ascii: "-"), omittingEmptySubsequences: false)
        guard parts.count == 3, (1...2).contains(parts[0].count), parts[0].allSatisfy(isDecimalDigit),
              parts[2].count == 4, parts[2].allSatisfy(isDecimalDigit),
              let month = monthNumber(parts[1]) else { return nil }
        return IMAPDate(year: decimal(parts[2]), month: month, day: decimal(parts[0]))
    }

    static func monthNumber<Bytes: Collection>(_ bytes: Bytes) -> Int? where Bytes.Element == UInt8 {
        imapMonthNames.firstIndex { name in
            bytes.count == 3 && zip(bytes, name.utf8).allSatisfy { ($0 | 0x20) == ($1 | 0x20) }
        }.map { $0 + 1 }
    }
}

@inline(__always) private func decimal<Bytes: Sequence>(_ digits: Bytes) -> Int where Bytes.Element == UInt8 {
    digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
}

@inline(__always) private func isDecimalDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

/// A date and time with its zone, as APPEND and INTERNALDATE carry it
/// (`"17-Jul-1996 02:44:25 -0700"`, RFC 3501 `date-time`).
public struct IMAPDateTime: Sendable, Hashable, CustomStringConvertible {
    public let date: IMAPDate
    public let hour: Int
    public let minute: Int
    public let second: Int
    /// The zone's offset east of UTC in minutes (`-0700` is -420).
    public let zoneMinutes: Int

    public init?(date: IMAPDate, hour: Int, minute: Int, second: Int, zoneMinutes: Int) {
        // Seconds up to 60 for a leap second; zones as the four-digit form can write them.
        guard (0...23).contains(hour), (0...59).contains(minute), (0...60).contains(second),
              (-(23 * 60 + 59)...(23 * 60 + 59)).contains(zoneMinutes) else { return nil }
        self.date = date
        self.hour = hour
        self.minute = minute
        self.second = second
        self.zoneMinutes = zoneMinutes
    }

    /// The moment `seconds` after the epoch, written in the zone `zoneMinutes` east of UTC.
    public init(secondsSince1970 seconds: Int64, zoneMinutes: Int = 0) {
        let local = seconds + Int64(zoneMinutes) * 60
        var days = local / 86400
        var rest = local % 86400
        if rest < 0 { rest += 86400; days -= 1 }
        date = IMAPDate(daysSince1970: Int(days))
        hour = Int(rest / 3600)
        minute = Int(rest % 3600 / 60)
        second = Int(rest % 60)
        self.zoneMinutes = max(-(23 * 60 + 59), min(23 * 60 + 59, zoneMinutes))
    }

    /// Seconds since 1970-01-01T00:00:00Z.
    public var secondsSince1970: Int64 {
        Int64(date.daysSince1970) * 86400 + Int64(hour * 3600 + minute * 60 + second) - Int64(zoneMinutes) * 60
    }

    /// The quoted wire form's content: `dd-Mon-yyyy hh:mm:ss +zzzz`, the day padded with a space.
    public var description: String {
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let day = date.day < 10 ? " \(date.day)" : "\(date.day)"
        let zone = abs(zoneMinutes)
        return "\(day)-\(imapMonthNames[date.month - 1])-\(date.year) \(two(hour)):\(two(minute)):\(two(second)) "
            + "\(zoneMinutes < 0 ? "-" : "+")\(two(zone / 60))\(two(zone % 60))"
    }

    /// Parses the content of the quoted `date-time` (without the quotes). The day is two
    /// characters, a leading space or zero allowed; a one-digit day without padding is accepted
    /// too (Dovecot does; some clients send it).
    public static func parse(_ text: [UInt8]) -> IMAPDateTime? {
        var t = text[...]
        if t.first == UInt8(ascii: " ") { t = t.dropFirst() }
        let fields = t.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard fields.count == 3, let date = IMAPDate.parse(fields[0]) else { return nil }
        let time = fields[1].split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
        guard time.count == 3, time.allSatisfy({ $0.count == 2 && $0.allSatisfy(isDecimalDigit) }) else { return nil }
        let zone = fields[2]
        guard zone.count == 5, zone.first == UInt8(ascii: "+") || zone.first == UInt8(ascii: "-"),
              zone.dropFirst().allSatisfy(isDecimalDigit) else { return nil }
        let digits = Array(zone.dropFirst())
        let zh = decimal(digits[0..<2]), zm = decimal(digits[2..<4])
        guard zm < 60 else { return nil }
        let offset = (zh * 60 + zm) * (zone.first == UInt8(ascii: "-") ? -1 : 1)
        return IMAPDateTime(date: date, hour: decimal(time[0]), minute: decimal(time[1]), second: decimal(time[2]), zoneMinutes: offset)
    }
}
