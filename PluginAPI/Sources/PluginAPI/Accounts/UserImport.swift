import Foundation

/// Accounts in bulk (`postern admin user import FILE.csv`, the admin API's `POST /api/v1/users/import`) from an HR-style export. The file is a
/// CSV (see `CSV`) whose header names the columns `email` and `password` (or `hash`: a legacy
/// hash such as `{SSHA}...` or `$6$...`, kept until the first login; see `LegacyPasswordHash`),
/// and optionally `quota` (a size such as `500M`) and `admin` (`user`, `domain-admin` or
/// `site-admin`), in any order. A Dovecot passwd-file (`user@domain:{SCHEME}hash:...`) is read
/// too (`PasswdFileImport`): it is told apart by its first line, where a `:` comes before any `,`.
/// Every row is checked on its own: a bad one is refused with its line number and the others are
/// still imported.
public enum UserImport {
    /// The columns a header may name.
    public static let columns = ["email", "password", "quota", "admin", "hash"]

    /// A row that was not imported, and why: printed as `line N: reason`.
    public struct Refusal: Sendable, Equatable, CustomStringConvertible {
        /// The row's line in the file (1 is the header).
        public var line: Int
        public var reason: String

        public init(line: Int, reason: String) {
            self.line = line
            self.reason = reason
        }

        public var description: String { "line \(line): \(reason)" }
    }

    /// A row that passed the file's own checks, to be created by the store.
    public struct Row: Sendable, Equatable {
        public var line: Int
        public var account: NewAccount

        public init(line: Int, account: NewAccount) {
            self.line = line
            self.account = account
        }
    }

    /// What a file asks for, before the store is consulted.
    public struct Plan: Sendable, Equatable {
        public var rows: [Row]
        public var refused: [Refusal]
        /// The domains of `rows`, lower-cased, in first-seen order.
        public var domains: [String]

        public init(rows: [Row], refused: [Refusal], domains: [String]) {
            self.rows = rows
            self.refused = refused
            self.domains = domains
        }
    }

    /// Why a whole file was refused (nothing imported).
    public enum FileError: Error, Sendable, Equatable, CustomStringConvertible {
        case noHeader
        case header(String)

        public var description: String {
            switch self {
            case .noHeader: return "the file is empty: expected a header row such as email,password,quota,admin"
            case .header(let why): return "header row: \(why)"
            }
        }
    }

    /// The outcome of an import.
    public struct Report: Sendable, Equatable {
        public var imported: Int
        /// Refused rows in line order.
        public var refused: [Refusal]

        /// `imported X, refused Y`, the command's last line.
        public var summary: String { "imported \(imported), refused \(refused.count)" }
    }

    /// Reads and checks a file: its header, then each row's fields (count, address, duplicates
    /// within the file, password, quota, admin level). Pure: the store is not asked anything.
    public static func plan(_ bytes: [UInt8]) throws -> Plan {
        if PasswdFileImport.looksLikePasswdFile(bytes) { return PasswdFileImport.plan(bytes) }
        let records = CSV.parse(bytes)
        guard let header = records.first else { throw FileError.noHeader }
        let names: [String]
        switch header.fields {
        case .failure(let problem): throw FileError.header(problem.description)
        case .success(let fields): names = fields.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        }
        var column: [String: Int] = [:]
        for (i, name) in names.enumerated() {
            guard columns.contains(name) else {
                throw FileError.header("unknown column '\(name)' (columns: \(columns.joined(separator: ", ")))")
            }
            guard column[name] == nil else { throw FileError.header("column '\(name)' appears twice") }
            column[name] = i
        }
        // A row sets its password in clear or as an imported hash (LegacyPasswordHash).
        for (required, named) in [("email", "'email'"), ("password", "'password' or 'hash'")]
        where column[required] == nil && !(required == "password" && column["hash"] != nil) {
            throw FileError.header("no \(named) column (columns: \(columns.joined(separator: ", ")); quota and admin are optional)")
        }

        var plan = Plan(rows: [], refused: [], domains: [])
        var firstLine: [String: Int] = [:]   // lower-cased address -> the line that has it
        var domains = Set<String>()
        for record in records.dropFirst() {
            func refuse(_ reason: String) { plan.refused.append(Refusal(line: record.line, reason: reason)) }
            let fields: [String]
            switch record.fields {
            case .failure(let problem): refuse(problem.description); continue
            case .success(let f): fields = f
            }
            guard fields.count == names.count else {
                refuse("\(fields.count) field\(fields.count == 1 ? "" : "s"), the header has \(names.count)")
                continue
            }
            func value(_ name: String) -> String? { column[name].map { fields[$0] } }
            let email = value("email")!.trimmingCharacters(in: .whitespaces)
            guard !email.isEmpty else { refuse("no email address"); continue }
            guard let domain = domainOf(email) else { refuse("'\(email)' is not an email address"); continue }
            if let first = firstLine[email.lowercased()] {
                refuse("\(email) is also on line \(first)")
                continue
            }
            firstLine[email.lowercased()] = record.line
            // The password exactly as given: spaces may be part of it. A row may give a legacy
            // hash instead (or both columns, one of them empty).
            let password = value("password") ?? ""
            let hash = value("hash")?.trimmingCharacters(in: .whitespaces) ?? ""
            if !hash.isEmpty && !password.isEmpty { refuse("both a password and a hash"); continue }
            guard !password.isEmpty || !hash.isEmpty else { refuse(column["hash"] == nil ? "no password" : "no password or hash"); continue }
            if !hash.isEmpty {
                do { _ = try LegacyPasswordHash(parsing: hash) } catch { refuse("\(error)"); continue }
            }
            var quota: Int?
            if let text = value("quota")?.trimmingCharacters(in: .whitespaces), !text.isEmpty {
                guard let n = ConfigSection.parseSize(text) else { refuse("quota '\(text)' is not a size (e.g. 500M, 2G)"); continue }
                quota = n
            }
            var level = UserRecord.AdminLevel.user
            if let text = value("admin")?.trimmingCharacters(in: .whitespaces), !text.isEmpty {
                guard let l = UserRecord.AdminLevel(rawValue: text.lowercased()) else {
                    refuse("admin '\(text)' is not user, domain-admin or site-admin")
                    continue
                }
                level = l
            }
            plan.rows.append(Row(line: record.line, account: NewAccount(name: email, password: password, adminLevel: level, quotaBytes: quota,
                                                                        legacyPasswordHash: hash.isEmpty ? nil : hash)))
            if domains.insert(domain).inserted { plan.domains.append(domain) }
        }
        return plan
    }

    /// The lower-cased domain of `local@domain`, or nil when `text` is not of that form (exactly
    /// one `@`, both sides non-empty, no spaces or control characters).
    static func domainOf(_ text: String) -> String? {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty,
              !text.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.value < 0x20 || $0.value == 0x7F }) else { return nil }
        return parts[1].lowercased()
    }

    /// Creates the planned accounts through the store's batch method. With `createDomains`, the
    /// file's domains that do not exist yet are created first; without, their rows are refused.
    public static func run(_ plan: Plan, on store: any AccountStore, createDomains: Bool) async throws -> Report {
        try await run(plan, on: store, createDomains: createDomains, batchSize: Int.max, progress: nil)
    }

    /// As `run(_:on:createDomains:)`, creating `batchSize` accounts per store call and telling
    /// `progress` the rows done and the rows in all after each batch (a console's progress bar,
    /// the command line's counter).
    public static func run(_ plan: Plan, on store: any AccountStore, createDomains: Bool, batchSize: Int,
                           progress: (@Sendable (_ done: Int, _ total: Int) async -> Void)?) async throws -> Report {
        var refused = plan.refused
        var rows = plan.rows
        if createDomains {
            let existing = Set(try await store.domains())
            var failed: [String: AccountError] = [:]
            for domain in plan.domains where !existing.contains(domain) {
                do { try await store.createDomain(domain) } catch let error as AccountError {
                    // Created meanwhile by someone else: as good as created here.
                    if case .domainExists = error { continue }
                    failed[domain] = error
                }
            }
            rows = rows.filter { row in
                guard let domain = domainOf(row.account.name), let error = failed[domain] else { return true }
                refused.append(Refusal(line: row.line, reason: error.description))
                return false
            }
        }
        var results: [Result<AccountInfo, AccountError>] = []
        results.reserveCapacity(rows.count)
        var start = 0
        repeat {
            let end = start + min(max(1, batchSize), rows.count - start)
            results += try await store.createAccounts(rows[start..<end].map(\.account))
            start = end
            await progress?(start, rows.count)
        } while start < rows.count
        var imported = 0
        for (row, result) in zip(rows, results) {
            switch result {
            case .success: imported += 1
            case .failure(let error): refused.append(Refusal(line: row.line, reason: error.description))
            }
        }
        return Report(imported: imported, refused: refused.sorted { $0.line < $1.line })
    }
}
