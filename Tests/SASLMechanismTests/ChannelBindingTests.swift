import Foundation
import PluginAPI
import PosternHost
import PosternTestSupport
import XCTest

/// `tls-server-end-point` (RFC 5929 §4.1) of real certificates made by openssl and by Postern's
/// own self-signed generator, and what the host's TLS provider hands each listener.
final class ChannelBindingTests: XCTestCase {
    /// A certificate from openssl with the given key and digest options; DER and PEM path.
    func certificate(_ dir: TempDir, _ name: String, _ options: [String]) throws -> (der: [UInt8], pem: String) {
        let pem = dir.path + "/\(name).crt", key = dir.path + "/\(name).key"
        let openssl = try Build.tool("openssl")
        let made = Build.run(openssl, ["req", "-x509", "-nodes", "-keyout", key, "-out", pem, "-subj", "/CN=\(name)", "-days", "2"] + options)
        XCTAssertEqual(made.status, 0, made.output)
        let der = dir.path + "/\(name).der"
        XCTAssertEqual(Build.run(openssl, ["x509", "-in", pem, "-outform", "DER", "-out", der]).status, 0)
        return (Array(try Data(contentsOf: URL(fileURLWithPath: der))), pem)
    }

    func testHashFollowsTheSignatureAlgorithm() throws {
        let dir = TempDir("channel-binding")
        let rsa256 = try certificate(dir, "rsa256", ["-newkey", "rsa:2048", "-sha256"])
        XCTAssertEqual(TLSChannelBinding.serverEndPoint(certificateDER: rsa256.der), Array(SHA256.hash(data: rsa256.der)))
        // MD5 and SHA-1 signatures are hashed with SHA-256.
        let rsa1 = try certificate(dir, "rsa1", ["-newkey", "rsa:2048", "-sha1"])
        XCTAssertEqual(TLSChannelBinding.serverEndPoint(certificateDER: rsa1.der), Array(SHA256.hash(data: rsa1.der)))
        let ec384 = try certificate(dir, "ec384", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384", "-sha384"])
        XCTAssertEqual(TLSChannelBinding.serverEndPoint(certificateDER: ec384.der), Array(SHA384.hash(data: ec384.der)))
        let rsa512 = try certificate(dir, "rsa512", ["-newkey", "rsa:2048", "-sha512"])
        XCTAssertEqual(TLSChannelBinding.serverEndPoint(certificateDER: rsa512.der), Array(SHA512.hash(data: rsa512.der)))
        // Ed25519 has no separate hash: RFC 5929 leaves the binding undefined, so none.
        let ed = try certificate(dir, "ed", ["-newkey", "ed25519"])
        XCTAssertNil(TLSChannelBinding.serverEndPoint(certificateDER: ed.der))
        XCTAssertNil(TLSChannelBinding.serverEndPoint(certificateDER: [0x30, 0x03, 0x02, 0x01, 0x01]))
        XCTAssertNil(TLSChannelBinding.serverEndPoint(certificateDER: []))
        // Postern's own self-signed certificate (ECDSA with SHA-256).
        let own = try SelfSignedCertificate.make(hostName: "mail.example.org")
        let parsed = try NIOSSLCertificate(bytes: Array(own.certificate.utf8), format: .pem)
        let der = try parsed.toDERBytes()
        XCTAssertEqual(TLSChannelBinding.bindings(serverCertificate: parsed), ["tls-server-end-point": Array(SHA256.hash(data: der))])
    }

    func testTheHostGivesBindingsPerListenerAndNoneWithSNI() throws {
        let dir = TempDir("channel-binding-host")
        let a = try certificate(dir, "a", ["-newkey", "rsa:2048", "-sha256"])
        let b = try certificate(dir, "b", ["-newkey", "rsa:2048", "-sha256"])
        let source = """
            data_dir = "\(dir.path)/data"
            [[listener]]
            name = "plain-tls"
            address = "127.0.0.1"
            port = \(freePort())
            protocol = "imap"
            tls = "implicit"
            certificate = "\(a.pem)"
            key = "\(dir.path)/a.key"
            [[listener]]
            name = "sni"
            address = "127.0.0.1"
            port = \(freePort())
            protocol = "imap"
            tls = "implicit"
            certificate = "\(a.pem)"
            key = "\(dir.path)/a.key"
            [[listener.sni]]
            domain = "b.example"
            certificate = "\(b.pem)"
            key = "\(dir.path)/b.key"
            [[listener]]
            name = "clear"
            address = "127.0.0.1"
            port = \(freePort())
            protocol = "imap"
            [plugin.imap]
            """
        let config = try HostConfig.parse(source: source, file: dir.path + "/postern.toml").get()
        let tls = try HostTLS(listeners: config.listeners)
        XCTAssertEqual(tls.channelBindings(listener: "plain-tls"), ["tls-server-end-point": Array(SHA256.hash(data: a.der))])
        XCTAssertEqual(tls.channelBindings(listener: "sni"), [:])
        XCTAssertEqual(tls.channelBindings(listener: "clear"), [:])
        XCTAssertEqual(tls.channelBindings(listener: "nonexistent"), [:])
    }
}
