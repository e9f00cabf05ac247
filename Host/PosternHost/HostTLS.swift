import Foundation
import PluginAPI

/// The TLS contexts of one process, built from the listeners' certificates: one server context per
/// listener, switching certificate by SNI when the listener lists `[[listener.sni]]` entries.
// @unchecked Sendable: the only stored property is a let dictionary of NIOSSLContexts, immutable and thread-safe once built
public final class HostTLS: TLSProvider, @unchecked Sendable {
    private let contexts: [String: NIOSSLContext]
    /// tls-server-end-point per listener, for SCRAM-*-PLUS; none where SNI may pick another certificate.
    private let bindings: [String: [String: [UInt8]]]

    public init(listeners: [ListenerConfig]) throws {
        var contexts: [String: NIOSSLContext] = [:]
        var bindings: [String: [String: [UInt8]]] = [:]
        for l in listeners {
            guard let certPath = l.certificate, let keyPath = l.key else { continue }
            let certificates = try NIOSSLCertificate.fromPEMFile(certPath)
            let chain = certificates.map { NIOSSLCertificateSource.certificate($0) }
            if l.sni.isEmpty, let leaf = certificates.first { bindings[l.name] = TLSChannelBinding.bindings(serverCertificate: leaf) }
            let key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
            var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
            if l.requestsClientCertificate, let ca = l.clientCAFile {
                // "optional": asked for, verified when sent (a bad one fails the handshake); a
                // client without one still gets the other SASL mechanisms. "required" (the admin
                // node API): no valid certificate, no connection. A server checks a client
                // certificate's chain only: it has no host name to match.
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca))
                configuration.certificateVerification = l.requiresClientCertificate ? .noHostnameVerification : .optionalVerification
                configuration.sendCANameList = true
            }
            if !l.sni.isEmpty {
                var byName: [String: ([NIOSSLCertificateSource], NIOSSLPrivateKeySource)] = [:]
                for entry in l.sni {
                    let c = try NIOSSLCertificate.fromPEMFile(entry.certificate).map { NIOSSLCertificateSource.certificate($0) }
                    let k = try NIOSSLPrivateKey(file: entry.key, format: .pem)
                    byName[entry.domain.lowercased()] = (c, .privateKey(k))
                }
                let table = byName
                configuration.sslContextCallback = { values, promise in
                    guard let name = values.serverHostname?.lowercased(), let (c, k) = table[name] else {
                        promise.succeed(.noChanges)
                        return
                    }
                    var change = NIOSSLContextConfigurationOverride()
                    change.certificateChain = c
                    change.privateKey = k
                    promise.succeed(change)
                }
            }
            contexts[l.name] = try NIOSSLContext(configuration: configuration)
        }
        self.contexts = contexts
        self.bindings = bindings
    }

    public func channelBindings(listener: String) -> [String: [UInt8]] { bindings[listener] ?? [:] }

    public func serverContext(listener: String) -> NIOSSLContext? { contexts[listener] }

    public func clientContext() throws -> NIOSSLContext {
        try NIOSSLContext(configuration: .makeClientConfiguration())
    }
}
