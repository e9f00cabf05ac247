import Foundation
import PluginAPI

/// The plugin's settings, read from `[plugin.filter-attachments]` (Plugin.swift).
struct AttachmentSettings: Sendable, Equatable {
    var rules: [AttachmentRule] = AttachmentRule.defaults
    /// What an archive that cannot be listed fully (broken, encrypted, nested too deep or too big) gets.
    var unreadableArchiveAction: AttachmentAction = .quarantine
    var archiveLimits = ArchiveLimits()
    /// The most of a message inspected; a bigger one is judged on its head and never cleansed.
    var maxScanSize = 64 << 20
    /// The field added to a cleansed message, one per removed file; "" for none.
    var headerName = "X-Postern-Attachments"
    /// The text standing where a file was removed: `{file}`, `{reason}` and `{rule}` are replaced.
    var notice = "The attachment {file} was removed from this message by the mail system: {reason} (rule {rule})."
}

/// What the rules decided about one file.
struct Finding: Sendable, Equatable {
    var file: InspectedFile
    var rule: String
    var action: AttachmentAction
    var reason: String
}

/// The filter: every file of the message against the rules, then the message's verdict, and for
/// `remove` the changes that cleanse it.
struct AttachmentInspector: MessageInspector {
    let settings: AttachmentSettings
    let logger: Logger
    let counter: @Sendable (AttachmentAction) -> Void

    init(settings: AttachmentSettings, logger: Logger = Logger(label: "filter-attachments"),
         counter: @escaping @Sendable (AttachmentAction) -> Void = { _ in }) {
        self.settings = settings
        self.logger = logger
        self.counter = counter
    }

    var maxBufferedBytes: Int { settings.maxScanSize }

    func inspect(_ message: FilterMessage) async -> (FilterVerdict, [FilterModification]) {
        let mime = message.mime()
        let files = MessageScan.files(in: message.bytes, mime: mime, complete: !message.isTruncated, archiveLimits: settings.archiveLimits)
        let findings = judge(files, sender: message.sender, recipients: message.recipients, direction: message.connection.direction)
        guard let worst = findings.max(by: { $0.action < $1.action }) else { return (.continue, []) }
        for f in findings {
            logger.info("attachment \(f.action.pastTense)", metadata: [
                "file": "\(f.file.name?.printable ?? f.file.mimeType ?? "-")", "rule": "\(f.rule)", "reason": "\(f.reason)",
                "sender": "\(message.sender)", "transaction": "\(message.connection.transactionID ?? "-")",
            ])
        }
        counter(worst.action == .remove && message.isTruncated ? .quarantine : worst.action)
        switch worst.action {
        case .reject:
            return (.reject(MailReply(554, "5.7.1", "attachment \(worst.file.displayName) refused: \(worst.reason)")), [])
        case .quarantine:
            return (.quarantine(reason: quarantineReason(worst)), [])
        case .remove where message.isTruncated:
            // Cleansing rewrites the whole body, which a truncated buffer no longer has.
            return (.quarantine(reason: quarantineReason(worst) + " (message too big to cleanse)"), [])
        case .remove:
            return (.continue, cleanse(message.bytes, mime: mime, removing: findings))
        case .allow:
            return (.continue, [])
        }
    }

    func quarantineReason(_ f: Finding) -> String { "attachment \(f.file.displayName) (rule \(f.rule)): \(f.reason)" }

    /// Each file's first matching rule in scope, and the unreadable-archive action for an archive
    /// that could not be listed (unless a rule allowed the file). Files no rule concerns are left out.
    func judge(_ files: [InspectedFile], sender: String, recipients: [String], direction: FilterDirection) -> [Finding] {
        let rules = settings.rules.filter { $0.scope.applies(sender: sender, recipients: recipients, direction: direction) }
        var findings: [Finding] = []
        for file in files {
            var finding: Finding?
            for rule in rules {
                if let why = rule.match(file) {
                    finding = Finding(file: file, rule: rule.name, action: rule.action, reason: why)
                    break
                }
            }
            if finding?.action == .allow { continue }
            if let why = file.zip?.unreadable, settings.unreadableArchiveAction != .allow,
               settings.unreadableArchiveAction > (finding?.action ?? .allow) {
                finding = Finding(file: file, rule: "unreadable-archive", action: settings.unreadableArchiveAction,
                                  reason: "archive cannot be checked: \(why)")
            }
            if let finding { findings.append(finding) }
        }
        return findings
    }

    /// The changes that replace every removed file by a notice: a removed part by a text/plain
    /// part (the message itself when it is one), a uuencoded block by the notice's lines in its
    /// text part; and one header field per removed file.
    func cleanse(_ bytes: [UInt8], mime: MIMEMessage, removing findings: [Finding]) -> [FilterModification] {
        let removed = findings.filter { $0.action == .remove }
        var changes: [MIMERewrite.Change] = []
        var removedParts: Set<Int> = []
        for f in removed {
            if case .part(let index) = f.file.location {
                removedParts.insert(index)
                changes.append(.replacePart(index: index, bytes: MIMERewrite.textPart(noticeText(f))))
            }
        }
        // The uuencoded blocks of one text part, rewritten together (unless the part itself goes).
        var blocks: [Int: [(range: Range<Int>, finding: Finding)]] = [:]
        for f in removed {
            if case .uuencoded(let part, let range) = f.file.location, !removedParts.contains(part) {
                blocks[part, default: []].append((range, f))
            }
        }
        let parts = mime.root.allParts
        for (index, list) in blocks.sorted(by: { $0.key < $1.key }) {
            guard let part = parts.first(where: { $0.index == index }) else { continue }
            var text = part.decodedBody(in: bytes)
            for block in list.sorted(by: { $0.range.lowerBound > $1.range.lowerBound }) {
                // ASCII only: the notice lands in a text of whatever charset the part declares.
                let line = AttachmentName.ascii(noticeText(block.finding)) + "\r\n"
                text.replaceSubrange(block.range.clamped(to: 0..<text.count), with: Array(line.utf8))
            }
            let encoded: [UInt8]
            switch part.contentTransferEncoding?.lowercased() {
            case "base64": encoded = Base64Encoder.encode(text)
            case "quoted-printable": encoded = QuotedPrintableEncoder.encode(text)
            default: encoded = text
            }
            changes.append(.replaceBody(index: index, bytes: encoded))
        }
        var modifications = MIMERewrite.modifications(changes, message: bytes, mime: mime)
        if !settings.headerName.isEmpty {
            for f in removed {
                modifications.append(.addHeader(name: settings.headerName,
                                                value: "removed \(f.file.displayName): \(AttachmentName.printable(f.reason))"))
            }
        }
        return modifications
    }

    func noticeText(_ f: Finding) -> String {
        let file = f.file.name.map { "\"\($0.original)\"" } ?? f.file.displayName
        return settings.notice.replacingOccurrences(of: "{file}", with: file)
            .replacingOccurrences(of: "{reason}", with: f.reason)
            .replacingOccurrences(of: "{rule}", with: f.rule)
    }
}
