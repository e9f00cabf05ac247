import Foundation
import PluginAPI

// Sender authentication: SPF (RFC 7208), DKIM signing and verification (RFC 6376, RFC 8463),
// DMARC (RFC 7489), ARC (RFC 8617) and the Authentication-Results field (RFC 8601) that records
// them. See README.md in this folder.

/// What `postern_plugin_entry` (Entry/Entry.swift) hands the host: the manifest and how to
/// activate the plugin. Here rather than in the entry so that tests can read it.
package enum SenderAuthRegistration {
    /// The name listeners put in `filters`.
    package static let filterName = "sender-auth"

    package static var registration: PluginRegistration {
        PluginRegistration(
            manifest: PluginManifest(
                name: "sender-auth", version: "1.0.0", summary: "SPF, DKIM, DMARC and ARC: verification, signing, Authentication-Results",
                kinds: [.filter, .hostService], config: SenderAuthSettings.schema),
            activate: { context in try SenderAuthPlugin(context: context) },
            check: { config, dataDirectory in _ = try SenderAuthPlugin.checked(config, dataDirectory: dataDirectory) })
    }
}

final class SenderAuthPlugin: Plugin {
    let filter: InspectingFilter<SenderAuthInspector>
    let signer: SenderAuthSigner?
    let reports: DMARCReportSender?

    init(context: PluginContext) throws {
        let (settings, signers, sealer) = try Self.checked(context.config, dataDirectory: context.dataDirectory)
        let services = context.services
        let publicSuffixes: PublicSuffixList?
        do {
            publicSuffixes = try PublicSuffixList.shared(path: settings.publicSuffixList)
        } catch {
            // Without the list there are no organisational domains: DMARC is not evaluated (and
            // says so in the log), SPF and DKIM still are.
            context.logger.error("DMARC off: cannot read the Public Suffix List", metadata: ["path": "\(settings.publicSuffixList)", "error": "\(error)"])
            publicSuffixes = nil
        }
        var store: DMARCReportStore?
        if let reporting = settings.reports {
            let opened = try DMARCReportStore(directory: reporting.directory)
            store = opened
            reports = DMARCReportSender(store: opened, settings: reporting, resolver: { services.dns }, queue: { services.queue },
                                        publicSuffixes: publicSuffixes, logger: context.logger)
        } else {
            reports = nil
        }
        filter = InspectingFilter(SenderAuthInspector(settings: settings, resolver: { services.dns }, publicSuffixes: publicSuffixes,
                                                      observations: store, logger: context.logger))
        if signers.isEmpty && sealer == nil {
            signer = nil
        } else {
            signer = SenderAuthSigner(dkim: signers, arc: sealer, authservID: settings.authservID ?? ProcessInfo.processInfo.hostName,
                                      logger: context.logger)
        }
        for key in settings.dkimKeys {
            context.logger.info("DKIM signing key loaded", metadata: ["domain": "\(key.domain)", "selector": "\(key.selector)"])
        }
    }

    func start() throws { reports?.start() }

    func shutdown() { reports?.stop() }

    var services: [ProvidedService] {
        [.filter(name: SenderAuthRegistration.filterName, filter)] + (signer.map { [.outgoingSigner($0)] } ?? [])
    }

    /// The settings of a validated section, with every configured key read: a key that is
    /// missing or not a private key stops the start (and `postern check`), not the first message.
    static func checked(_ config: ConfigSection, dataDirectory: String) throws -> (SenderAuthSettings, [DKIMSigner], ARCSealer?) {
        let settings = try SenderAuthSettings(config, dataDirectory: dataDirectory)
        func load(_ key: SigningKeySetting, _ origin: String) throws -> DKIMSigningKey {
            do {
                return try DKIMSigningKey.load(path: key.keyFile)
            } catch {
                throw SenderAuthConfigError("\(origin) \(key.domain): cannot use \(key.keyFile): \(error); make one with `postern admin dkim keygen \(key.domain) \(key.selector)`")
            }
        }
        let signers = try settings.dkimKeys.map { DKIMSigner(domain: $0.domain, selector: $0.selector, key: try load($0, "[[plugin.sender-auth.dkim]]")) }
        let sealer = try settings.arcKey.map { ARCSealer(domain: $0.domain, selector: $0.selector, key: try load($0, "[plugin.sender-auth.arc]")) }
        return (settings, signers, sealer)
    }
}
