import Foundation
import PosternHost

/// Which config file a `postern` command uses, found the same way by every subcommand:
///
/// 1. `-c FILE` / `--config FILE`;
/// 2. `$POSTERN_CONFIG`;
/// 3. `./postern.toml`;
/// 4. `/etc/postern/postern.toml` (what `make install` writes);
/// 5. the built-in default: the all-in-one role with its data in `/var/lib/postern` (root) or
///    `~/.local/share/postern`, written there as `postern.toml` on first use so that it can be
///    read, edited and reloaded like any other.
///
/// The result is an absolute path; relative paths inside the file are relative to its directory
/// (HostConfig), so a command gives the same answer from any working directory.
public enum ConfigLocator {
    public enum Origin: String, Sendable, Codable {
        case option = "-c"
        case environment = "$POSTERN_CONFIG"
        case workingDirectory = "./postern.toml"
        case system = "/etc/postern/postern.toml"
        case builtIn = "the built-in default"
    }

    public struct Found: Sendable, Equatable {
        public var path: String
        public var origin: Origin
        public var description: String { "\(path) (from \(origin.rawValue))" }
    }

    public static let systemFile = "/etc/postern/postern.toml"

    public static func locate(explicit: String?, environment: [String: String] = ProcessInfo.processInfo.environment,
                              workingDirectory: String = FileManager.default.currentDirectoryPath,
                              isRoot: Bool = geteuid() == 0, systemFile: String = systemFile) throws -> Found {
        if let explicit, !explicit.isEmpty {
            return Found(path: HostConfig.absolute(explicit, base: workingDirectory), origin: .option)
        }
        if let env = environment["POSTERN_CONFIG"], !env.isEmpty {
            return Found(path: HostConfig.absolute(env, base: workingDirectory), origin: .environment)
        }
        let local = HostConfig.absolute("postern.toml", base: workingDirectory)
        if FileManager.default.fileExists(atPath: local) { return Found(path: local, origin: .workingDirectory) }
        if FileManager.default.fileExists(atPath: systemFile) { return Found(path: systemFile, origin: .system) }
        let data = defaultDataDirectory(environment: environment, isRoot: isRoot)
        let file = data + "/postern.toml"
        if !FileManager.default.fileExists(atPath: file) {
            try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
            try builtInDefault(dataDirectory: data).write(toFile: file, atomically: true, encoding: .utf8)
        }
        return Found(path: file, origin: .builtIn)
    }

    /// `/var/lib/postern` for root, else `$XDG_DATA_HOME/postern` or `~/.local/share/postern`.
    public static func defaultDataDirectory(environment: [String: String], isRoot: Bool) -> String {
        if isRoot { return "/var/lib/postern" }
        if let xdg = environment["XDG_DATA_HOME"], xdg.hasPrefix("/") { return xdg + "/postern" }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return home + "/.local/share/postern"
    }

    /// The all-in-one role on loopback and high ports, as `Config/all-in-one.toml` has it (that
    /// file documents every key).
    public static func builtInDefault(dataDirectory: String) -> String {
        """
        # Written by postern as its built-in default (no -c, no $POSTERN_CONFIG, no ./postern.toml,
        # no /etc/postern/postern.toml). Edit it, then `postern ctl reload`. Every key is documented
        # in Config/all-in-one.toml of the source tree.
        role = "all-in-one"
        data_dir = "\(dataDirectory)"
        workers = 2
        first_account = true

        [plugins]
        load = ["sasl-plain", "sasl-login"]

        [plugin.store-sqlite]
        [plugin.queue]
        [plugin.dns]
        [plugin.smtp-client]
        tls = "may"
        [plugin.sasl-plain]
        [plugin.sasl-login]
        [plugin.smtp]
        [plugin.pop3]
        [plugin.imap]

        [[listener]]
        name = "mx"
        address = "127.0.0.1"
        port = 2525
        protocol = "smtp"
        tls = "starttls"
        [listener.options]
        mode = "mx"

        [[listener]]
        name = "submission"
        address = "127.0.0.1"
        port = 2587
        protocol = "smtp"
        tls = "starttls"
        [listener.options]
        mode = "submission"
        allow_plaintext_auth_on_loopback = true

        [[listener]]
        name = "imap"
        address = "127.0.0.1"
        port = 2143
        protocol = "imap"
        tls = "starttls"
        [listener.options]
        allow_plaintext_on_loopback = true

        [[listener]]
        name = "pop3"
        address = "127.0.0.1"
        port = 2110
        protocol = "pop3"
        tls = "starttls"
        [listener.options]
        allow_plaintext_on_loopback = true

        """
    }
}
