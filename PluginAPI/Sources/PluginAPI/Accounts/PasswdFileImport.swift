import Foundation

/// Dovecot's passwd-file (`user:password:uid:gid:gecos:home:shell:extra`) for `postern admin user
/// import`: each line's user must be `local@domain`, its password field a legacy hash
/// (`{SHA512-CRYPT}$6$...`, `{PLAIN}...`, or a bare crypt(3) string, Dovecot's default scheme),
/// which the account keeps until its first login (`LegacyPasswordHash`). The other fields (uid,
/// home, userdb extras) belong to Dovecot's userdb and are ignored. Empty lines and `#` comments
/// are skipped; a bad line is refused with its number and the others are still imported.
public enum PasswdFileImport {
    /// Whether `bytes` read as a passwd-file rather than a CSV: on the first line that is neither
    /// empty nor a comment, a `:` comes before any `,` (a CSV header is `email,password,...`).
    public static func looksLikePasswdFile(_ bytes: [UInt8]) -> Bool {
        for line in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
            let trimmed = line.drop { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }
            if trimmed.isEmpty || trimmed.first == UInt8(ascii: "#") { continue }
            guard let colon = trimmed.firstIndex(of: UInt8(ascii: ":")) else { return false }
            return trimmed.firstIndex(of: UInt8(ascii: ",")).map { colon < $0 } ?? true
        }
        return false
    }

    /// Reads and checks every line. Pure: the store is not asked anything.
    public static func plan(_ bytes: [UInt8]) -> UserImport.Plan {
        var plan = UserImport.Plan(rows: [], refused: [], domains: [])
        var firstLine: [String: Int] = [:]
        var domains = Set<String>()
        for (index, raw) in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            func refuse(_ reason: String) { plan.refused.append(UserImport.Refusal(line: number, reason: reason)) }
            var line = raw
            if line.last == 0x0D { line = line.dropLast() }
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) || line.first == UInt8(ascii: "#") { continue }
            guard let text = String(validating: line, as: UTF8.self) else { refuse("not UTF-8"); continue }
            let fields = text.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count >= 2 else { refuse("expected user:password[:...]"); continue }
            let user = String(fields[0]).trimmingCharacters(in: .whitespaces)
            guard let domain = UserImport.domainOf(user) else { refuse("'\(user)' is not user@domain"); continue }
            if let first = firstLine[user.lowercased()] { refuse("\(user) is also on line \(first)"); continue }
            firstLine[user.lowercased()] = number
            let hash = String(fields[1])
            guard !hash.isEmpty else { refuse("no password hash"); continue }
            do { _ = try LegacyPasswordHash(parsing: hash) } catch { refuse("\(error)"); continue }
            plan.rows.append(UserImport.Row(line: number, account: NewAccount(name: user, password: "", legacyPasswordHash: hash)))
            if domains.insert(domain).inserted { plan.domains.append(domain) }
        }
        return plan
    }
}
