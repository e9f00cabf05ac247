import Foundation
import PluginAPI
import PosternHost

// `postern admin init`: the first domain and account, made in a tool process (the master runs
// it as a child on first start; FirstRun in the host describes what it made).
extension FirstRun {
    /// The first domain: the host's name when it is a domain name (has a dot), else
    /// `localhost.localdomain` with the short name in front (`box.localdomain`).
    public static func defaultDomain(hostName: String = ProcessInfo.processInfo.hostName) -> String {
        let name = hostName.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "."))
        if name.contains("."), name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" }) { return name }
        let short = name.split(separator: ".").first.map(String.init) ?? ""
        let usable = !short.isEmpty && short.allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "-" }
        return (usable ? short : "localhost") + ".localdomain"
    }

    /// 20 characters from a 56-letter alphabet without look-alikes (about 116 bits).
    public static func generatePassword() -> String {
        let alphabet = Array("abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        var generator = SystemRandomNumberGenerator()
        return String((0..<20).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] })
    }

    /// Creates the first domain and account when the store has no domain; nil when it has one
    /// (or the config keeps no accounts). The password file is written (0600, fsynced) before
    /// the account exists, so an account is never created whose password nobody can read.
    public static func prepare(_ context: AdminContext, domain: String? = nil) async throws -> Account? {
        guard let accounts = context.services.accounts else { return nil }
        guard try await accounts.domains().isEmpty else { return nil }
        let domain = (domain ?? defaultDomain()).lowercased()
        let login = "postmaster@\(domain)"
        let password = generatePassword()
        let file = passwordFile(context.config)
        try writeSecret(file, "\(login)\n\(password)\n")
        try await accounts.createDomain(domain)
        _ = try await accounts.createAccount(NewAccount(name: login, password: password, adminLevel: .siteAdmin,
                                                        quotaBytes: nil, quotaMessages: nil))
        return Account(domain: domain, login: login, passwordFile: file)
    }

    static func writeSecret(_ path: String, _ text: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SystemError.call("create \(path)", errno) }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count, fsync(fd) == 0 else { throw SystemError.call("write \(path)", errno) }
    }
}
