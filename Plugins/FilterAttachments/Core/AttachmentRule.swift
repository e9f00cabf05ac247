import Glibc
import PluginAPI

/// What happens to a message with a file a rule matched. Ordered by severity: when several
/// files are matched, the most severe action decides the message (reject over quarantine over
/// remove); `allow` exempts the file from the rules after it.
enum AttachmentAction: String, Sendable, Equatable, CaseIterable, Comparable {
    case allow, remove, quarantine, reject

    var severity: Int {
        switch self {
        case .allow: return 0
        case .remove: return 1
        case .quarantine: return 2
        case .reject: return 3
        }
    }

    static func < (a: AttachmentAction, b: AttachmentAction) -> Bool { a.severity < b.severity }

    /// For log lines: "attachment removed".
    var pastTense: String {
        switch self {
        case .allow: return "allowed"
        case .remove: return "removed"
        case .quarantine: return "quarantined"
        case .reject: return "rejected"
        }
    }
}

/// Whom and which way a rule applies to. Within senders (`senders` or `sender_domains`) one
/// match is enough, likewise within recipients (any recipient of the message); every kind given
/// must match. Nothing given: the rule applies to all mail.
struct RuleScope: Sendable, Equatable {
    var senders: Set<String> = []
    var senderDomains: [String] = []
    var recipients: Set<String> = []
    var recipientDomains: [String] = []
    var directions: Set<FilterDirection> = []

    func applies(sender: String, recipients rcpts: [String], direction: FilterDirection) -> Bool {
        if !directions.isEmpty && !directions.contains(direction) { return false }
        if !(senders.isEmpty && senderDomains.isEmpty) && !Self.listed(sender, senders, senderDomains) { return false }
        if !(recipients.isEmpty && recipientDomains.isEmpty) && !rcpts.contains(where: { Self.listed($0, recipients, recipientDomains) }) {
            return false
        }
        return true
    }

    /// The address itself is listed, or its domain is a listed domain or below one
    /// (`example.org` covers `mail.example.org`).
    static func listed(_ address: String, _ addresses: Set<String>, _ domains: [String]) -> Bool {
        if addresses.contains(address.lowercased()) { return true }
        let domain = EnvelopeAddress.domain(of: address)
        guard !domain.isEmpty else { return false }
        return domains.contains { domain == $0 || domain.hasSuffix("." + $0) }
    }
}

/// One `[[plugin.filter-attachments.rules]]`: matchers (any one matching is enough), a scope
/// and an action. A file's first matching rule decides what happens to it.
struct AttachmentRule: Sendable, Equatable {
    var name: String
    /// Final extensions, lower-case, without the dot.
    var extensions: Set<String> = []
    /// `extensions` match only behind a second, harmless-looking extension (`invoice.pdf.exe`).
    var doubleExtension = false
    /// Globs (`*`, `?`, `[...]`) on the normalised file name, case ignored.
    var namePatterns: [String] = []
    /// `type/subtype` or `type/*`, lower-case, against the declared Content-Type.
    var mimeTypes: [String] = []
    /// Content whose first bytes contradict the type the part claims (MagicBytes.swift).
    var magicMismatch = false
    /// Final extensions of the members of a ZIP attachment (and of ZIPs inside it).
    var zipMemberExtensions: Set<String> = []
    var scope = RuleScope()
    var action: AttachmentAction = .reject
    /// The reason replies, notices and logs give; nil: the matcher's own explanation.
    var reason: String?

    var hasMatcher: Bool {
        !extensions.isEmpty || !namePatterns.isEmpty || !mimeTypes.isEmpty || magicMismatch || !zipMemberExtensions.isEmpty
    }

    /// Why this rule matches `file`, or nil.
    func match(_ file: InspectedFile) -> String? {
        let explained = explanation(file)
        guard let explained else { return nil }
        guard let reason else { return explained.text }
        return explained.detail.map { "\(reason) (\($0))" } ?? reason
    }

    /// The first matcher that matches: its own text (used when the rule gives no reason) and a
    /// detail worth adding to a given reason (which archive member, what the content is).
    private func explanation(_ file: InspectedFile) -> (text: String, detail: String?)? {
        if let name = file.name {
            if let ext = name.finalExtension, extensions.contains(ext) {
                if !doubleExtension { return ("file type .\(ext) not accepted", nil) }
                if let inner = name.innerExtension, Self.decoyExtensions.contains(inner) {
                    return ("file type .\(ext) disguised as .\(inner)", nil)
                }
            }
            if let pattern = namePatterns.first(where: { Self.glob($0, matches: name.normalized) }) {
                return ("file name matches \"\(pattern)\"", nil)
            }
        }
        if let type = file.mimeType, let pattern = mimeTypes.first(where: { Self.mimeType(type, matches: $0) }) {
            return ("type \(type) not accepted", pattern == type ? nil : "type \(type)")
        }
        if magicMismatch, let mismatch = file.magicMismatch {
            return (mismatch.description, mismatch.description)
        }
        if !zipMemberExtensions.isEmpty, let members = file.zip?.members {
            for member in members {
                if let ext = AttachmentName(member).finalExtension, zipMemberExtensions.contains(ext) {
                    let shown = AttachmentName.printable(member)
                    return ("archive member \"\(shown)\" is of type .\(ext)", "member \(shown)")
                }
            }
        }
        return nil
    }

    /// Inner extensions that make a double extension a disguise: what a person would open
    /// without a second thought (documents, images, media, text).
    static let decoyExtensions: Set<String> = [
        "pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "odt", "ods", "odp", "rtf", "txt", "csv",
        "jpg", "jpeg", "png", "gif", "bmp", "tif", "tiff", "mp3", "mp4", "wav", "avi", "mov", "zip", "htm", "html",
    ]

    static func mimeType(_ type: String, matches pattern: String) -> Bool {
        if pattern.hasSuffix("/*") { return type.hasPrefix(pattern.dropLast()) }
        return type == pattern
    }

    /// fnmatch(3) on lower-cased text: the shell's globs, `*` crossing every character.
    static func glob(_ pattern: String, matches name: String) -> Bool {
        fnmatch(pattern.lowercased(), name, 0) == 0
    }
}

extension AttachmentRule {
    /// The classic dangerous file types: programs, scripts, installers, shortcuts and the disk
    /// images used to smuggle them past Windows' download marks.
    static let executableExtensions: [String] = [
        "exe", "com", "scr", "pif", "bat", "cmd", "vbs", "vbe", "js", "jse", "wsf", "wsh", "wsc", "hta", "cpl",
        "msi", "msp", "mst", "msc", "lnk", "url", "iso", "img", "vhd", "vhdx", "jar", "jnlp", "ps1", "psm1",
        "reg", "scf", "sct", "inf", "dll", "sys", "gadget", "application", "appref-ms", "chm", "xll", "ace",
    ]

    /// The MIME types programs are sent as.
    static let executableMIMETypes: [String] = [
        "application/x-msdownload", "application/x-dosexec", "application/x-executable", "application/x-ms-installer",
        "application/x-msi", "application/hta", "application/x-ms-shortcut",
    ]

    /// What runs when the configuration gives no rules (README.md, "Default rules").
    static let defaults: [AttachmentRule] = [
        AttachmentRule(name: "executables", extensions: Set(executableExtensions), mimeTypes: executableMIMETypes,
                       action: .reject, reason: "executable file type"),
        AttachmentRule(name: "disguised-web-pages", extensions: ["htm", "html", "shtml", "xhtml", "svg"], doubleExtension: true,
                       action: .reject, reason: "disguised file type (double extension)"),
        AttachmentRule(name: "content-mismatch", magicMismatch: true, action: .reject, reason: "content does not match its declared type"),
        AttachmentRule(name: "archived-executables", zipMemberExtensions: Set(executableExtensions), action: .reject,
                       reason: "executable file type in archive"),
    ]
}
