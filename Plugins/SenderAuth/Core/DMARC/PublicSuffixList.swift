import Foundation
import PluginAPI
import Synchronization

// The public suffix list (https://publicsuffix.org/list/), which DMARC uses to find a domain's
// Organizational Domain (RFC 7489 §3.2). Debian ships it in the `publicsuffix` package; the
// plugin reads the file at run time, so updating the package updates the rules.

/// The rules of one public suffix list file: normal rules, wildcards (`*.ck`) and exceptions
/// (`!www.ck`), from the ICANN section, the private section, or both.
///
/// Every name is compared as lowercase ASCII: rules written in Unicode (`公司.cn`) are kept in
/// their A-label form (`xn--55qx5d.cn`), and domains are taken as given, Punycode included
/// (`asciiDomain` turns Unicode labels into A-labels, without IDNA2008's mapping tables).
package struct PublicSuffixList: Sendable {
    /// The list's two parts: suffixes ICANN delegates, and suffixes private registries
    /// (`blogspot.com`, `github.io`) asked to be treated alike.
    package enum Section: String, Sendable, CaseIterable {
        case icann, `private`
    }

    package static let defaultPath = "/usr/share/publicsuffix/public_suffix_list.dat"

    package enum LoadError: Error, Equatable, CustomStringConvertible {
        case unreadable(path: String, reason: String)
        case noRules(path: String)

        package var description: String {
            switch self {
            case .unreadable(let path, let reason):
                "cannot read the public suffix list \(path): \(reason) (Debian package publicsuffix)"
            case .noRules(let path): "the public suffix list \(path) holds no rules"
            }
        }
    }

    /// Suffixes that are public as written (`co.uk`).
    private var exact: Set<String> = []
    /// The parent of each wildcard (`ck` for `*.ck`): any one label under it is public.
    private var wildcardParents: Set<String> = []
    /// Exceptions to wildcards (`www.ck`): these are not public, their parent is.
    private var exceptions: Set<String> = []

    package private(set) var ruleCount = 0

    /// Parses the list's text. Rules outside both section markers count as ICANN rules (a list
    /// without markers is all ICANN). Lines that are not rules (comments, blank) are skipped; a
    /// rule a domain could never match (empty labels, bad Punycode) is skipped too.
    package init(text: String, sections: Set<Section> = Set(Section.allCases)) {
        var section = Section.icann
        for rawLine in text.split(omittingEmptySubsequences: true, whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("//") {
                if line.contains("===BEGIN PRIVATE DOMAINS===") { section = .private }
                if line.contains("===BEGIN ICANN DOMAINS===") { section = .icann }
                continue
            }
            // A rule is the line's first white-space separated word.
            guard sections.contains(section), let word = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).first else { continue }
            var rule = Substring(word)
            let isException = rule.hasPrefix("!")
            if isException { rule = rule.dropFirst() }
            let isWildcard = rule.hasPrefix("*.")
            if isWildcard { rule = rule.dropFirst(2) }
            guard let name = Self.asciiDomain(String(rule)), !name.contains("*") else { continue }
            if isException { exceptions.insert(name) }
            else if isWildcard { wildcardParents.insert(name) }
            else { exact.insert(name) }
            ruleCount += 1
        }
    }

    /// Reads a list file.
    package init(contentsOf path: String = defaultPath, sections: Set<Section> = Set(Section.allCases)) throws(LoadError) {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw .unreadable(path: path, reason: (error as NSError).localizedDescription)
        }
        self.init(text: text, sections: sections)
        if ruleCount == 0 { throw .noRules(path: path) }
    }

    // MARK: Shared lists

    private static let cache = Mutex<[String: PublicSuffixList]>([:])

    /// The list at `path` with both sections, read once per process and shared: the file holds
    /// some ten thousand rules and every message needs it.
    package static func shared(path: String = defaultPath) throws(LoadError) -> PublicSuffixList {
        if let list = cache.withLock({ $0[path] }) { return list }
        let list = try PublicSuffixList(contentsOf: path)
        return cache.withLock { cached in
            if let first = cached[path] { return first }
            cached[path] = list
            return list
        }
    }

    // MARK: Lookups

    /// The public suffix of `domain` (`co.uk` for `www.example.co.uk`), by the list's algorithm:
    /// an exception wins, else the matching rule with the most labels, else the top-level label
    /// (the implicit `*` rule, which covers TLDs the list does not know). Nil for a name that is
    /// not a domain.
    package func publicSuffix(of domain: String) -> String? {
        guard let name = Self.asciiDomain(domain) else { return nil }
        let labels = name.split(separator: ".").map(String.init)
        var longest = 1
        for count in 1...labels.count {
            let suffix = labels[(labels.count - count)...].joined(separator: ".")
            if exceptions.contains(suffix) {
                // The exception's own parent is the public suffix.
                return labels[(labels.count - count + 1)...].joined(separator: ".")
            }
            if exact.contains(suffix) { longest = max(longest, count) }
            if count >= 2, wildcardParents.contains(labels[(labels.count - count + 1)...].joined(separator: ".")) {
                longest = max(longest, count)
            }
        }
        return labels[(labels.count - longest)...].joined(separator: ".")
    }

    /// The Organizational Domain (RFC 7489 §3.2): the public suffix and one more label of the
    /// domain. A domain that is itself a public suffix (`co.uk`) has no label to add: it is its
    /// own Organizational Domain, as other DMARC implementations treat it. The result is
    /// lowercase ASCII; a name that is not a domain comes back lowercased as it was.
    package func organizationalDomain(of domain: String) -> String {
        guard let name = Self.asciiDomain(domain), let suffix = publicSuffix(of: name) else { return domain.lowercased() }
        let labels = name.split(separator: ".")
        let suffixCount = suffix.split(separator: ".").count
        guard labels.count > suffixCount else { return name }
        return labels[(labels.count - suffixCount - 1)...].joined(separator: ".")
    }

    /// Outside ASCII, only letters, digits and combining marks may be in a label: a rough cut of
    /// IDNA2008's PVALID that keeps U+FFFD (undecodable bytes), symbols and spaces out.
    private static func isLabelScalar(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.isASCII { return true }
        switch scalar.properties.generalCategory {
        case .lowercaseLetter, .uppercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
             .decimalNumber, .nonspacingMark, .spacingMark: return true
        default: return false
        }
    }

    /// `domain` as DMARC compares it: lowercase, without a trailing dot, Unicode labels as
    /// A-labels. Nil when it is empty, has an empty label, a label of more than 63 bytes, or a
    /// non-ASCII character that is no letter, digit or mark.
    package static func asciiDomain(_ domain: String) -> String? {
        var text = Substring(domain)
        if text.hasSuffix(".") { text = text.dropLast() }
        guard !text.isEmpty, text.utf8.count <= 253 * 4 else { return nil }
        var labels: [String] = []
        for label in text.split(separator: ".", omittingEmptySubsequences: false) {
            guard !label.isEmpty, label.unicodeScalars.allSatisfy(isLabelScalar) else { return nil }
            let lower = label.lowercased()
            // The A-label (RFC 5891 §4.4): the label itself when ASCII, else `xn--` and its Punycode.
            let aLabel = lower.unicodeScalars.allSatisfy(\.isASCII) ? lower : Punycode.encode(lower).map { "xn--" + $0 }
            guard let ascii = aLabel, ascii.utf8.count <= 63 else { return nil }
            labels.append(ascii)
        }
        return labels.joined(separator: ".")
    }
}
