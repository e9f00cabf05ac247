import Foundation
import PluginAPI

/// One `[[plugin.filter-disclaimer.profiles]]`: which messages get which disclaimer.
package struct DisclaimerProfile: Sendable, Equatable {
    /// What to do with a signed or encrypted message (multipart/signed, S/MIME, PGP): its
    /// signature covers the bytes, so adding text inside would break it.
    package enum SignedHandling: String, Sendable, CaseIterable {
        /// Leave the message as it is.
        case skip
        /// A new multipart/mixed around the untouched signed entity, the disclaimer as a second part.
        case wrap
    }

    package var name: String
    /// Envelope sender domains (lower case) the profile is for, subdomains included; empty: any sender.
    package var senderDomains: [String]
    package var directions: Set<FilterDirection>
    /// Only when at least one recipient is outside `internalDomains`.
    package var onlyExternalRecipients: Bool
    /// The organisation's domains (lower case, subdomains included); empty: `senderDomains`.
    package var internalDomains: [String]
    /// The disclaimer for text/plain parts.
    package var text: String
    /// The disclaimer for text/html parts (HTML, inserted as is).
    package var html: String
    package var signed: SignedHandling

    package init(name: String, senderDomains: [String] = [], directions: Set<FilterDirection> = [.outbound],
                 onlyExternalRecipients: Bool = false, internalDomains: [String] = [], text: String, html: String? = nil,
                 signed: SignedHandling = .skip) {
        self.name = name
        self.senderDomains = senderDomains.map { $0.lowercased() }
        self.directions = directions
        self.onlyExternalRecipients = onlyExternalRecipients
        self.internalDomains = internalDomains.map { $0.lowercased() }
        self.text = text
        self.html = html ?? Self.defaultHTML(for: text)
        self.signed = signed
    }

    /// Whether a message from `sender` to `recipients`, going `direction`, gets this disclaimer.
    package func applies(sender: String, recipients: [String], direction: FilterDirection) -> Bool {
        guard directions.contains(direction) else { return false }
        if !senderDomains.isEmpty {
            guard let domain = Self.domain(of: sender), Self.domain(domain, isIn: senderDomains) else { return false }
        }
        if onlyExternalRecipients {
            let ours = internalDomains.isEmpty ? senderDomains : internalDomains
            return recipients.contains { r in Self.domain(of: r).map { !Self.domain($0, isIn: ours) } ?? true }
        }
        return true
    }

    /// The domain of an address (lower case), or nil for the null sender and bare local parts.
    static func domain(of address: String) -> String? {
        var a = Substring(address)
        if a.hasPrefix("<") && a.hasSuffix(">") { a = a.dropFirst().dropLast() }
        guard let at = a.lastIndex(of: "@") else { return nil }
        let d = a[a.index(after: at)...]
        return d.isEmpty ? nil : d.lowercased()
    }

    static func domain(_ domain: String, isIn list: [String]) -> Bool {
        list.contains { domain == $0 || domain.hasSuffix("." + $0) }
    }

    /// The plain text HTML-escaped, line breaks as `<br>`, in a `<div><p>`.
    static func defaultHTML(for text: String) -> String {
        var out = ""
        for c in text.replacingOccurrences(of: "\r\n", with: "\n").trimming("\n") {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "\n": out += "<br>\n"
            default: out.append(c)
            }
        }
        return "<div class=\"disclaimer\"><p>" + out + "</p></div>"
    }
}

extension String {
    /// The string without leading and trailing characters of `set`.
    func trimming(_ set: Character) -> String {
        var s = Substring(self)
        while s.first == set { s.removeFirst() }
        while s.last == set { s.removeLast() }
        return String(s)
    }
}
