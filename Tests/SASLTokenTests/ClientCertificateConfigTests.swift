import Foundation
import PluginAPI
import PosternHost
import PosternTestSupport
import XCTest

/// The listener keys for client certificates (`client_certificates`, `client_ca_file`): what
/// `check-config` refuses, and the TLS context built from a good configuration.
final class ClientCertificateConfigTests: XCTestCase {
    func listener(_ extra: String, tls: String = "implicit") -> String {
        """
        [[listener]]
        name = "imaps"
        address = "127.0.0.1"
        port = 9993
        protocol = "imap"
        tls = "\(tls)"
        \(extra)
        """
    }

    func issues(_ text: String) -> [String] {
        switch HostConfig.parse(source: text, file: "test.toml") {
        case .success: return []
        case .failure(let d): return d.all.map(\.description)
        }
    }

    func testOptionalNeedsACAFileAndTLS() {
        let missing = issues(listener("client_certificates = \"optional\""))
        XCTAssertEqual(missing.count, 1, "\(missing)")
        XCTAssertTrue(missing.first?.hasSuffix("listener[0].client_ca_file: client_certificates needs client_ca_file (the CAs that client certificates must chain to)") == true, "\(missing)")
        let noTLS = issues(listener("client_certificates = \"optional\"\nclient_ca_file = \"/nonexistent/ca.pem\"", tls: "none"))
        XCTAssertTrue(noTLS.contains { $0.contains("client certificates need tls = \"starttls\" or \"implicit\"") }, "\(noTLS)")
        XCTAssertTrue(noTLS.contains { $0.contains("cannot read certificate file /nonexistent/ca.pem") }, "\(noTLS)")
        XCTAssertTrue(issues(listener("client_certificates = \"required\"")).contains { $0.contains("needs client_ca_file") })
        XCTAssertFalse(issues(listener("client_certificates = \"always\"")).isEmpty, "only none, optional and required exist")
    }

    func testGoodConfigurationBuildsAContextThatAsksForCertificates() throws {
        let dir = TempDir("client-cert-config")
        let certs = try TestCertificates(dir)
        let server = try TestCertificates.issueServer(dir, ca: certs)
        let text = listener("certificate = \"\(server.cert)\"\nkey = \"\(server.key)\"\nclient_certificates = \"optional\"\nclient_ca_file = \"\(certs.caCert)\"")
        let config = try HostConfig.parse(source: text, file: dir.path + "/postern.toml").get()
        XCTAssertEqual(config.listeners.first?.requestsClientCertificate, true)
        XCTAssertEqual(config.listeners.first?.clientCAFile, certs.caCert)
        XCTAssertNotNil(try HostTLS(listeners: config.listeners).serverContext(listener: "imaps"))
        let plain = try HostConfig.parse(source: listener("certificate = \"\(server.cert)\"\nkey = \"\(server.key)\""),
                                         file: dir.path + "/postern.toml").get()
        XCTAssertEqual(plain.listeners.first?.requestsClientCertificate, false, "none by default")
        XCTAssertEqual(config.listeners.first?.requiresClientCertificate, false, "optional is not required")
        let required = try HostConfig.parse(source: text.replacingOccurrences(of: "\"optional\"", with: "\"required\""),
                                            file: dir.path + "/postern.toml").get()
        XCTAssertEqual(required.listeners.first?.requestsClientCertificate, true)
        XCTAssertEqual(required.listeners.first?.requiresClientCertificate, true)
        XCTAssertNotNil(try HostTLS(listeners: required.listeners).serverContext(listener: "imaps"))
    }
}
