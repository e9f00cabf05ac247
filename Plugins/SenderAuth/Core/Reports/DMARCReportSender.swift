import Foundation
import Logging
import PluginAPI

/// Sends yesterday's DMARC aggregate reports (RFC 7489 §7.2) through the queue, once a day per
/// site: every worker runs one, and a lock file plus a marker per day make sure only one sends
/// each day's reports, once, even across restarts.
package final class DMARCReportSender: Sendable {
    let store: DMARCReportStore
    let settings: DMARCReportSettings
    let resolver: @Sendable () -> (any DNSResolver)?
    let queue: @Sendable () -> (any MailQueue)?
    let publicSuffixes: PublicSuffixList?
    let logger: Logger
    private let task = NIOLockedValueBox<Task<Void, Never>?>(nil)

    package init(store: DMARCReportStore, settings: DMARCReportSettings, resolver: @escaping @Sendable () -> (any DNSResolver)?,
                 queue: @escaping @Sendable () -> (any MailQueue)?, publicSuffixes: PublicSuffixList?, logger: Logger) {
        self.store = store
        self.settings = settings
        self.resolver = resolver
        self.queue = queue
        self.publicSuffixes = publicSuffixes
        self.logger = logger
    }

    /// Checks every `interval` seconds whether yesterday's reports are due.
    package func start(interval: Double = 3600) {
        let loop = Task { [self] in
            while !Task.isCancelled {
                _ = await sendDue(now: Date())
                try? await Task.sleep(nanoseconds: UInt64(interval * 1e9))
            }
        }
        task.withLockedValue { $0 = loop }
    }

    package func stop() {
        task.withLockedValue { $0?.cancel() }
    }

    /// Sends the reports of the UTC day before `now` unless they were sent; the number of
    /// messages queued (nil: another worker holds the lock, or they were sent already).
    @discardableResult
    package func sendDue(now: Date) async -> Int? {
        let yesterday = now.addingTimeInterval(-86_400)
        let (begin, _) = DMARCReportStore.dayRange(of: yesterday)
        let marker = settings.directory + "/sent-\(begin)"
        let lockPath = settings.directory + "/send.lock"
        let fd = open(lockPath, O_RDWR | O_CREAT, 0o600)
        guard fd >= 0 else {
            logger.error("DMARC reports: cannot open the lock file", metadata: ["path": "\(lockPath)"])
            return nil
        }
        defer { close(fd) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else { return nil }
        defer { flock(fd, LOCK_UN) }
        guard !FileManager.default.fileExists(atPath: marker) else { return nil }
        guard let queue = queue() else { return nil }
        let reporterDomain = settings.address.split(separator: "@").last.map(String.init) ?? settings.address
        let reporter = DMARCReporterInfo(orgName: settings.organization, email: settings.address, domain: reporterDomain)
        var queued = 0
        do {
            for report in try store.reports(for: yesterday, reporter: reporter) {
                let recipients = await authorisedDestinations(report.rua, policyDomain: report.policyDomain)
                guard !recipients.isEmpty else { continue }
                let file = settings.directory + "/report-\(report.begin)-\(UUID().uuidString).eml"
                guard FileManager.default.createFile(atPath: file, contents: Data(report.reportMessage(from: reporter, date: now))) else {
                    logger.error("DMARC reports: cannot write a report", metadata: ["path": "\(file)"])
                    continue
                }
                let envelope = Envelope(sender: settings.address, recipients: recipients.map { EnvelopeRecipient(address: $0) })
                let id = try await queue.enqueue(envelope: envelope, messagePath: file)
                queued += 1
                logger.info("DMARC aggregate report queued", metadata: ["domain": "\(report.policyDomain)", "to": "\(recipients)", "id": "\(id)"])
            }
            FileManager.default.createFile(atPath: marker, contents: nil)
            // The reported day is done with; today's evaluations stay for tomorrow's reports.
            try store.removeEvaluations(before: Date(timeIntervalSince1970: TimeInterval(begin + 86_400)))
        } catch {
            logger.error("DMARC reports: not sent, retried within the hour", metadata: ["error": "\(error)"])
            return nil
        }
        return queued
    }

    /// The `rua` addresses that may receive reports on `policyDomain` (RFC 7489 §7.1): those in
    /// the policy domain's own organisational domain, and others only when their domain
    /// publishes `POLICYDOMAIN._report._dmarc.THEIRDOMAIN` with `v=DMARC1`.
    func authorisedDestinations(_ addresses: [String], policyDomain: String) async -> [String] {
        var out: [String] = []
        let organisation = publicSuffixes?.organizationalDomain(of: policyDomain) ?? policyDomain
        for address in addresses {
            guard let at = address.lastIndex(of: "@") else { continue }
            let domain = address[address.index(after: at)...].lowercased()
            if (publicSuffixes?.organizationalDomain(of: domain) ?? domain) == organisation {
                out.append(address)
                continue
            }
            guard let resolver = resolver(),
                  case .found(let records)? = try? await resolver.records("\(policyDomain)._report._dmarc.\(domain)", .txt),
                  records.contains(where: { $0.hasPrefix("v=DMARC1") }) else {
                logger.info("DMARC reports: destination not authorised by its domain", metadata: ["domain": "\(policyDomain)", "rua": "\(address)"])
                continue
            }
            out.append(address)
        }
        return out
    }
}
