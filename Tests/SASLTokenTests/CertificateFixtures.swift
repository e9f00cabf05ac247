import Foundation
import PosternHost
import PosternTestSupport

/// A test CA and client certificates made with openssl: one naming its account in
/// subjectAltName (rfc822Name), one in the subject's emailAddress, one only by commonName, one
/// naming nobody, and one from a CA the server does not trust.
final class TestCertificates {
    struct Client {
        let cert: String
        let key: String
        var der: [UInt8] { (try? pemToDER(cert)) ?? [] }
    }

    let dir: TempDir
    let caCert: String
    let sanAlice: Client
    let subjectEmailBob: Client
    let cnOnlyCarol: Client
    let nameless: Client
    let untrusted: Client

    init(_ dir: TempDir) throws {
        self.dir = dir
        let ca = try Self.makeCA(dir, "ca")
        caCert = ca.cert
        sanAlice = try Self.issue(dir, "alice", subject: "/CN=Alice Example", san: "email:alice@example.org", ca: ca)
        subjectEmailBob = try Self.issue(dir, "bob", subject: "/CN=Bob/emailAddress=bob@example.org", san: nil, ca: ca)
        cnOnlyCarol = try Self.issue(dir, "carol", subject: "/CN=carol", san: nil, ca: ca)
        nameless = try Self.issue(dir, "nameless", subject: "/O=Nobody Inc", san: "DNS:host.example", ca: ca)
        let rogue = try Self.makeCA(dir, "rogue-ca")
        untrusted = try Self.issue(dir, "untrusted", subject: "/CN=Alice", san: "email:alice@example.org", ca: rogue)
    }

    static func openssl(_ args: [String]) throws {
        let (code, output) = Build.run(try Build.tool("openssl"), args)
        guard code == 0 else { throw SystemError.message("openssl \(args.joined(separator: " ")): \(output)") }
    }

    static func makeCA(_ dir: TempDir, _ name: String) throws -> Client {
        let cert = dir.path + "/\(name).crt", key = dir.path + "/\(name).key"
        try openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                     "-subj", "/CN=Postern Test \(name)", "-days", "2",
                     "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        return Client(cert: cert, key: key)
    }

    static func issue(_ dir: TempDir, _ name: String, subject: String, san: String?, ca: Client) throws -> Client {
        let cert = dir.path + "/\(name).crt", key = dir.path + "/\(name).key", csr = dir.path + "/\(name).csr"
        try openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", csr, "-subj", subject])
        var ext = "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n"
        if let san { ext += "subjectAltName=\(san)\n" }
        let extFile = dir.write("\(name).ext", ext)
        try openssl(["x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key, "-CAcreateserial", "-out", cert, "-days", "2",
                     "-extfile", extFile])
        return Client(cert: cert, key: key)
    }
}

/// The DER bytes of the first certificate in a PEM file.
func pemToDER(_ path: String) throws -> [UInt8] {
    let text = try String(contentsOfFile: path, encoding: .utf8)
    let body = text.components(separatedBy: "-----BEGIN CERTIFICATE-----")[1].components(separatedBy: "-----END CERTIFICATE-----")[0]
    guard let data = Data(base64Encoded: body.filter { !$0.isWhitespace }) else { throw SystemError.message("bad PEM in \(path)") }
    return [UInt8](data)
}
