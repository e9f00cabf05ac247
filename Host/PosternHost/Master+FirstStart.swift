import Foundation
import PluginAPI

// What the master does before its first generation starts: the data directory for the worker
// user, the self-signed certificate, and the first account (ARCHITECTURE.md, "Configuration").
extension Master {
    /// A store without any domain gets one and its postmaster (FirstRun), made by a
    /// `postern admin init` child: the master maps no plugin itself.
    func createFirstAccount(_ report: ProbeReport) throws {
        guard config.firstAccount, report.plugins.contains(where: { $0.kinds.contains(PluginKind.storage.rawValue) }) else { return }
        let (status, output) = try Spawner.run(arguments: ["admin", "init", "--json", "--config", config.file])
        let created: FirstRun.Account?
        do {
            guard status == 0 else { throw SystemError.message("postern admin init \(Spawner.describe(status: status))") }
            created = try JSONDecoder().decode(FirstRun.Account?.self, from: output)
        } catch {
            logger.warning("first run: could not check for or create a first account (\(error)); create one with `postern admin user add`")
            return
        }
        if let created { FirstRun.announcement(created).forEach { logger.notice("\($0)") } }
    }

    func prepareDirectories() throws {
        if config.workerUserIsDefault, let user = config.workerUser {
            logger.notice("started as root without `user`: workers run as \(user)\(user == "nobody" ? " (create a system user 'postern', as make install does, or set user = in the config)" : "")")
        }
        if let why = Privileges.unreachable(config.dataDirectory, user: config.workerUser, group: config.workerGroup) {
            throw SystemError.message(why)
        }
        try Privileges.prepareDataDirectory(config.dataDirectory, user: config.workerUser, group: config.workerGroup,
                                            keep: [runDirectory], logger: logger)
        try FileManager.default.createDirectory(atPath: runDirectory, withIntermediateDirectories: true)
        try makeSelfSignedCertificate(config)
    }

    /// TLS out of the box, as Debian's ssl-cert gives Dovecot and Postfix: a TLS listener that
    /// names no certificate gets the installation's self-signed one, made here on first start.
    func makeSelfSignedCertificate(_ config: HostConfig) throws {
        guard let first = config.selfSignedListeners.first, let certificate = first.certificate, let key = first.key,
              !FileManager.default.fileExists(atPath: certificate) else { return }
        let directory = (certificate as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let host = ProcessInfo.processInfo.hostName
        let pair = try SelfSignedCertificate.make(hostName: host)
        // The key first, then the certificate: a certificate file never exists without its key.
        // The key stays root's alone (0600): workers read their keys before they drop privileges.
        try Self.writeFile(key, pair.key)
        let tmp = certificate + ".tmp"
        guard FileManager.default.createFile(atPath: tmp, contents: Data(pair.certificate.utf8), attributes: [.posixPermissions: 0o644]),
              rename(tmp, certificate) == 0 else { throw SystemError.call("write \(certificate)", errno) }
        logger.notice("TLS: made a self-signed certificate for \(host), localhost and 127.0.0.1", metadata: [
            "certificate": "\(certificate)", "key": "\(key)",
            "listeners": "\(config.selfSignedListeners.map(\.name))",
            "replace": "set certificate = and key = in each [[listener]] to a real certificate (e.g. Let's Encrypt's fullchain.pem and privkey.pem), then postern ctl reload"])
    }
}
