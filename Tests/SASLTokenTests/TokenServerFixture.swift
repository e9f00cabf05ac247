import Foundation
import PluginAPI
import PosternHost
@testable import PosternSASLOAuthCore
import PosternTestSupport
import XCTest

/// `postern serve` with the store, queue, IMAP, POP3 and SMTP submission, PLAIN, and the three
/// plugins under test: sasl-oauth (JWTs against a JWKS written here, and introspection at a
/// Python endpoint), sasl-anonymous (guest@example.org) and sasl-external (client certificates
/// against a CA made with openssl). Each protocol has a loopback listener that allows plaintext
/// mechanisms and an implicit-TLS listener that asks for client certificates.
final class TokenServerFixture {
    let dir: TempDir
    let issuer = TestIssuer()
    let introspection: IntrospectionServer
    let certificates: TestCertificates
    let server: ServerProcess
    let imap = freePort(), imaps = freePort(), pop3 = freePort(), pop3s = freePort()
    let submission = freePort(), submissions = freePort(), lmtp = freePort()
    /// IMAP with STARTTLS and client certificates: Cyrus imtest's -t always asks for STARTTLS.
    let imapStartTLS = freePort()

    init(_ name: String) throws {
        dir = TempDir(name)
        introspection = try IntrospectionServer(dir)
        certificates = try TestCertificates(dir)
        let serverCert = try TestCertificates.issueServer(dir, ca: certificates)
        let jwks = dir.write("issuer-jwks.json", issuer.jwksJSON)
        let caCert = certificates.caCert
        let (imap, imaps, pop3, pop3s, submission, submissions, lmtp) = (self.imap, self.imaps, self.pop3, self.pop3s, self.submission, self.submissions, self.lmtp)
        let imapStartTLS = self.imapStartTLS
        func tlsListener(_ name: String, _ port: Int, _ proto: String, _ options: String = "", tls: String = "implicit") -> String {
            """
            [[listener]]
            name = "\(name)"
            address = "127.0.0.1"
            port = \(port)
            protocol = "\(proto)"
            tls = "\(tls)"
            certificate = "\(serverCert.cert)"
            key = "\(serverCert.key)"
            client_certificates = "optional"
            client_ca_file = "\(caCert)"
            [listener.options]
            \(options)
            """
        }
        let config = """
            data_dir = "./var"
            workers = 1
            [plugins]
            load = ["sasl-plain"]
            [plugin.store-sqlite]
            password_iterations = 4096
            [plugin.queue]
            hostname = "mail.example.org"
            [plugin.smtp]
            hostname = "mail.example.org"
            [plugin.imap]
            login_failure_delay = "100ms"
            max_login_failures_per_ip = 1000
            max_login_failures_per_session = 50
            [plugin.pop3]
            hostname = "pop.example.org"
            login_failure_delay = "100ms"
            max_login_failures = 50
            [plugin.sasl-oauth]
            jwks_file = "\(jwks)"
            issuer = "\(TestIssuer.issuer)"
            audience = ["\(TestIssuer.audience)"]
            user_claim = "email"
            introspection_url = "\(introspection.url)"
            introspection_client_id = "\(introspection.clientID)"
            introspection_client_secret = "\(introspection.clientSecret)"
            error_scope = "mail"
            openid_configuration = "https://issuer.test/.well-known/openid-configuration"
            [plugin.sasl-anonymous]
            account = "guest@example.org"
            [plugin.sasl-external]
            map = ["san-email", "subject-email", "subject-cn"]
            cn_domain = "example.org"
            [[listener]]
            name = "imap"
            address = "127.0.0.1"
            port = \(imap)
            protocol = "imap"
            [listener.options]
            allow_plaintext_on_loopback = true
            \(tlsListener("imaps", imaps, "imap"))
            \(tlsListener("imap-starttls", imapStartTLS, "imap", tls: "starttls"))
            [[listener]]
            name = "pop3"
            address = "127.0.0.1"
            port = \(pop3)
            protocol = "pop3"
            [listener.options]
            allow_plaintext_on_loopback = true
            \(tlsListener("pop3s", pop3s, "pop3"))
            [[listener]]
            name = "submission"
            address = "127.0.0.1"
            port = \(submission)
            protocol = "smtp"
            [listener.options]
            mode = "submission"
            allow_plaintext_auth_on_loopback = true
            \(tlsListener("submissions", submissions, "smtp", "mode = \"submissions\""))
            [[listener]]
            name = "lmtp"
            address = "127.0.0.1"
            port = \(lmtp)
            protocol = "lmtp"

            """
        let file = dir.write("postern.toml", config)
        for args in [["domain", "add", "example.org"],
                     ["user", "add", "alice@example.org", "--password", "alice-pw"],
                     ["user", "add", "bob@example.org", "--password", "bob-pw"],
                     ["user", "add", "carol@example.org", "--password", "carol-pw"],
                     ["user", "suspend", "carol@example.org"],
                     ["user", "add", "guest@example.org", "--password", "guest-unused-\(UUID().uuidString)"]] {
            let (code, output) = Build.run(Build.postern, ["admin"] + args + ["-c", file], cwd: dir.path)
            guard code == 0 else { throw SystemError.message("postern admin \(args.joined(separator: " ")): \(output)") }
        }
        server = try ServerProcess.start(dir, config)
    }

    func stop() {
        server.stop()
        introspection.stop()
    }

    func token(_ email: String, _ changes: [String: ClaimValue] = [:]) async throws -> String {
        try await issuer.token(TestIssuer.claims(email: email, changes))
    }

    /// Runs a program with `input` on its standard input; status and everything it printed.
    static func run(_ executable: String, _ arguments: [String], input: String = "", timeout: Double = 30) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let out = Pipe(), inPipe = Pipe()
        process.standardOutput = out
        process.standardError = out
        process.standardInput = inPipe
        try process.run()
        inPipe.fileHandleForWriting.write(Data(input.utf8))
        try? inPipe.fileHandleForWriting.close()
        // SIGKILL: a child of an async test may have SIGTERM blocked (see stopChild).
        let killer = DispatchWorkItem { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: killer)
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        killer.cancel()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

extension TestCertificates {
    /// The server's own certificate, from the same test CA, for 127.0.0.1.
    static func issueServer(_ dir: TempDir, ca: TestCertificates) throws -> Client {
        let caKey = (ca.caCert as NSString).deletingPathExtension + ".key"
        let cert = dir.path + "/server.crt", key = dir.path + "/server.key", csr = dir.path + "/server.csr"
        try openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"])
        let ext = dir.write("server.ext", "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n")
        try openssl(["x509", "-req", "-in", csr, "-CA", ca.caCert, "-CAkey", caKey, "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext])
        return Client(cert: cert, key: key)
    }
}
