import Foundation
import NIOConcurrencyHelpers
#if canImport(Glibc)
import Glibc
#endif

/// One thing the MTA did with a message, for reports: the SMTP server writes what it received,
/// quarantined and refused, the queue what it delivered, deferred and bounced, each into the
/// node's event log; the admin API reads them back.
public struct MailEvent: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// A message accepted (one event, every recipient in `recipients`).
        case received
        /// Accepted into the hold queue by a filter (`reason`: the filter's reason).
        case quarantined
        /// A command refused with a 4xx or 5xx (`stage`: MAIL, RCPT or DATA; `reason`: the reply).
        case rejected
        /// One recipient delivered (locally or to the next hop).
        case delivered
        /// One recipient's attempt failed for now (`reason`: the reply).
        case deferred
        /// One recipient failed for good: a bounce goes to the sender (`reason`: the reply).
        case bounced
    }

    /// Seconds since 1970.
    public var time: Int64
    public var kind: Kind
    /// The listener that received or refused it (received, quarantined, rejected).
    public var listener: String?
    public var queueID: String?
    public var sender: String?
    /// The recipient of a delivery, deferral or bounce, or the one refused at RCPT.
    public var recipient: String?
    /// Every recipient of a received or quarantined message.
    public var recipients: [String]?
    public var size: Int?
    /// The client's address (received, quarantined, rejected).
    public var client: String?
    /// MAIL, RCPT or DATA, for a rejection.
    public var stage: String?
    /// The reply or hold reason.
    public var reason: String?
    /// The filter that refused or quarantined the message (its name in the listener's `filters`),
    /// for the count of what each filter stopped (spam rules, anti-virus, DLP).
    public var filter: String?

    public init(time: Int64 = Int64(Date().timeIntervalSince1970), kind: Kind, listener: String? = nil, queueID: String? = nil,
                sender: String? = nil, recipient: String? = nil, recipients: [String]? = nil, size: Int? = nil,
                client: String? = nil, stage: String? = nil, reason: String? = nil, filter: String? = nil) {
        self.time = time
        self.kind = kind
        self.listener = listener
        self.queueID = queueID
        self.sender = sender
        self.recipient = recipient
        self.recipients = recipients
        self.size = size
        self.client = client
        self.stage = stage
        self.reason = reason
        self.filter = filter
    }
}

/// The node's event log: `DATA/events/YYYY-MM-DD.jsonl` (UTC days), one JSON line per event.
/// Each line is appended by one `write` on a descriptor opened with `O_APPEND`, so every process
/// of the node (workers of every generation, the tools) writes to it at once without a lock; a
/// line is cut to fit 4 KiB (long recipient lists first), below which Linux keeps appends whole.
/// Reports read the days they cover. Losing an event (a full disk) loses a line of a report,
/// never a message: recording never throws.
public final class MailEventLog: Sendable {
    public let directory: String
    private static let maxLine = 4000
    /// The day file open for appending: one descriptor per process and day, not an open and a
    /// close per event on the SMTP server's path.
    private let dayFile = NIOLockedValueBox<(day: String, fd: Int32)?>(nil)

    public init(dataDirectory: String) {
        directory = dataDirectory + "/events"
    }

    deinit {
        if let fd = dayFile.withLockedValue({ $0?.fd }) { close(fd) }
    }

    public func record(_ event: MailEvent) {
        var event = event
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard var line = try? encoder.encode(event) else { return }
        while line.count >= Self.maxLine {
            if let r = event.recipients, r.count > 1 {
                event.recipients = Array(r.prefix(r.count / 2))
            } else {
                event.reason = event.reason.map { String($0.prefix(200)) }
                event.recipients = event.recipients.map { $0.map { String($0.prefix(200)) } }
                event.sender = event.sender.map { String($0.prefix(200)) }
                event.recipient = event.recipient.map { String($0.prefix(200)) }
            }
            guard let shorter = try? encoder.encode(event), shorter.count < line.count else { return }
            line = shorter
        }
        line.append(0x0A)
        let day = Self.day(event.time)
        dayFile.withLockedValue { current in
            if current?.day != day {
                if let old = current?.fd { close(old) }
                current = nil
                let path = directory + "/" + day + ".jsonl"
                var fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
                if fd < 0 && errno == ENOENT {
                    mkdir(directory, 0o750)
                    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
                }
                guard fd >= 0 else { return }
                current = (day, fd)
            }
            // One write per line: O_APPEND places it whole at the end, whoever else appends.
            _ = line.withUnsafeBytes { write(current!.fd, $0.baseAddress, $0.count) }
        }
    }

    /// Deletes the day files of days that ended before `time` (a retention period); returns their
    /// names. Files that are not day files are left alone.
    @discardableResult
    public func removeDays(before time: Int64) -> [String] {
        let cutoff = Self.day(time)
        var removed: [String] = []
        for name in ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted() where name.hasSuffix(".jsonl") {
            let day = String(name.dropLast(6))
            // YYYY-MM-DD sorts as it counts.
            guard day.count == 10, day.allSatisfy({ $0.isNumber || $0 == "-" }), day < cutoff else { continue }
            if unlink(directory + "/" + name) == 0 { removed.append(name) }
        }
        return removed
    }

    /// The events from `start` (inclusive) to `end` (exclusive), oldest first. A line that does
    /// not parse (cut by a crash mid-write) is skipped.
    public func events(from start: Int64, to end: Int64) -> [MailEvent] {
        var result: [MailEvent] = []
        let decoder = JSONDecoder()
        var day = start - start % 86_400
        while day < end {
            if let data = FileManager.default.contents(atPath: directory + "/" + Self.day(day) + ".jsonl") {
                for line in data.split(separator: 0x0A) {
                    guard let event = try? decoder.decode(MailEvent.self, from: line), event.time >= start, event.time < end else { continue }
                    result.append(event)
                }
            }
            day += 86_400
        }
        return result.sorted { $0.time < $1.time }
    }

    /// `YYYY-MM-DD` of a time, in UTC.
    static func day(_ time: Int64) -> String {
        var t = time_t(time)
        var parts = tm()
        gmtime_r(&t, &parts)
        return String(format: "%04d-%02d-%02d", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday))
    }
}
