import Foundation
import Glibc
import PosternHost
import PosternTestSupport
import XCTest

/// A throw-away OpenLDAP `slapd` (the Debian package): its own slapd.conf, an mdb database in a
/// temporary directory loaded with `slapadd`, a test CA and a server certificate for StartTLS and
/// ldaps, on free ports of 127.0.0.1. Started once per test class; `stop()`/`start()` keep the
/// data, so a test can take the directory away and bring it back.
///
/// The directory (`dc=example,dc=org`): users under `ou=people` (inetOrgPerson +
/// inetLocalMailRecipient + a small test schema for quota and suspension), groups under
/// `ou=groups`, and a service account `cn=postern,ou=services` that may read but not write.
final class SlapdFixture {
    static let baseDN = "dc=example,dc=org"
    static let serviceDN = "cn=postern,ou=services,dc=example,dc=org"
    static let servicePassword = "service-secret"

    let dir: TempDir
    let port = freePort()
    let tlsPort = freePort()
    private(set) var process: Process?
    let caFile: String
    var uri: String { "ldap://127.0.0.1:\(port)" }
    var ldapsURI: String { "ldaps://127.0.0.1:\(tlsPort)" }
    var log: String { (try? String(contentsOfFile: dir.path + "/slapd.log", encoding: .utf8)) ?? "" }

    /// The users: login -> password. Alice's password is stored salted-SHA (`{SSHA}`), the rest
    /// in the clear, as directories have both.
    static let passwords = ["alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw", "dave": "dave-pw", "erin": "erin-pw"]

    init(_ name: String) throws {
        dir = TempDir(name)
        let root = dir.path
        try FileManager.default.createDirectory(atPath: root + "/db", withIntermediateDirectories: true)
        caFile = root + "/ca.crt"
        try Self.makeCertificates(root)
        _ = dir.write("postern-test.schema", Self.schema)
        _ = dir.write("slapd.conf", """
            include /etc/ldap/schema/core.schema
            include /etc/ldap/schema/cosine.schema
            include /etc/ldap/schema/inetorgperson.schema
            include /etc/ldap/schema/nis.schema
            include /etc/ldap/schema/misc.schema
            include \(root)/postern-test.schema
            pidfile \(root)/slapd.pid
            argsfile \(root)/slapd.args
            modulepath /usr/lib/ldap
            moduleload back_mdb
            TLSCACertificateFile \(root)/ca.crt
            TLSCertificateFile \(root)/server.crt
            TLSCertificateKeyFile \(root)/server.key
            database mdb
            maxsize 10485760
            suffix "\(Self.baseDN)"
            rootdn "cn=admin,\(Self.baseDN)"
            rootpw admin-secret
            directory \(root)/db
            access to attrs=userPassword
                by dn.exact="\(Self.serviceDN)" read
                by anonymous auth
                by self read
                by * none
            access to *
                by dn.exact="\(Self.serviceDN)" read
                by self read
                by anonymous auth
                by * none

            """)
        let alicePassword = try Self.ssha("alice-pw")
        _ = dir.write("data.ldif", Self.data(alicePassword: alicePassword))
        let (code, output) = Build.run("/usr/sbin/slapadd", ["-f", root + "/slapd.conf", "-l", root + "/data.ldif"])
        guard code == 0 else { throw SystemError.message("slapadd failed (is the slapd package installed?): \(output)") }
        try start()
    }

    deinit { stop() }

    /// Starts slapd (in the foreground with `-d 0`, so it stays our child) and waits until it
    /// accepts connections on both ports.
    func start() throws {
        guard process == nil else { return }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/sbin/slapd")
        p.arguments = ["-f", dir.path + "/slapd.conf", "-h", "ldap://127.0.0.1:\(port)/ ldaps://127.0.0.1:\(tlsPort)/", "-d", "0"]
        let logHandle = FileHandle(forWritingAtPath: dir.path + "/slapd.log") ?? {
            FileManager.default.createFile(atPath: dir.path + "/slapd.log", contents: nil)
            return FileHandle(forWritingAtPath: dir.path + "/slapd.log")!
        }()
        logHandle.seekToEndOfFile()
        p.standardOutput = logHandle
        p.standardError = logHandle
        try p.run()
        process = p
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if case .success(let fd) = connectLoopback(port: port, timeout: 1) {
                close(fd)
                if case .success(let fd2) = connectLoopback(port: tlsPort, timeout: 1) { close(fd2); return }
            }
            if !p.isRunning { break }
            usleep(50_000)
        }
        throw SystemError.message("slapd did not start:\n\(log)")
    }

    /// Kills slapd at once (SIGKILL: a crash, no goodbye to its clients) and waits for it.
    func kill() {
        guard let p = process else { return }
        Glibc.kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        process = nil
    }

    /// SIGTERM, then SIGKILL after a grace (`stopChild`: a slapd started from an async test
    /// inherits a blocked SIGTERM).
    func stop() {
        guard let p = process else { return }
        stopChild(p)
        process = nil
    }

    /// Stops answering without closing connections (SIGSTOP): a hung server.
    func pause() { if let p = process { Glibc.kill(p.processIdentifier, SIGSTOP) } }
    func resume() { if let p = process { Glibc.kill(p.processIdentifier, SIGCONT) } }

    /// `ldapsearch` as the service account, for checks from outside the plugin.
    func search(_ filter: String, _ attributes: [String] = []) -> String {
        Build.run("/usr/bin/ldapsearch", ["-x", "-LLL", "-H", uri, "-D", Self.serviceDN, "-w", Self.servicePassword,
                                          "-b", Self.baseDN, filter] + attributes).output
    }

    private static func ssha(_ password: String) throws -> String {
        let (code, output) = Build.run("/usr/sbin/slappasswd", ["-h", "{SSHA}", "-s", password])
        guard code == 0 else { throw SystemError.message("slappasswd: \(output)") }
        return output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A CA, and a server certificate it signed for 127.0.0.1 and localhost (openssl CLI).
    private static func makeCertificates(_ root: String) throws {
        let openssl = try Build.tool("openssl")
        try String("subjectAltName=IP:127.0.0.1,DNS:localhost\n").write(toFile: root + "/san.ext", atomically: true, encoding: .utf8)
        for arguments in [
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", root + "/ca.key", "-out", root + "/ca.crt",
             "-days", "2", "-subj", "/CN=Postern LDAP Test CA"],
            ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", root + "/server.key", "-out", root + "/server.csr",
             "-subj", "/CN=127.0.0.1"],
            ["x509", "-req", "-in", root + "/server.csr", "-CA", root + "/ca.crt", "-CAkey", root + "/ca.key",
             "-CAcreateserial", "-out", root + "/server.crt", "-days", "2", "-extfile", root + "/san.ext"],
            // A second CA that signed nothing here: a client trusting only it must refuse the server.
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", root + "/other-ca.key", "-out", root + "/other-ca.crt",
             "-days", "2", "-subj", "/CN=Some Other CA"],
        ] {
            let (code, output) = Build.run(openssl, arguments)
            guard code == 0 else { throw SystemError.message("openssl \(arguments[0]): \(output)") }
        }
        chmod(root + "/server.key", 0o644)
    }

    /// Quota and suspension are not in any standard schema; these use RFC 5612's example
    /// enterprise number, as a site would use its own.
    static let schema = """
        attributetype ( 1.3.6.1.4.1.32473.1.1 NAME 'posternMailQuota'
            DESC 'mail quota in bytes' EQUALITY integerMatch
            SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
        attributetype ( 1.3.6.1.4.1.32473.1.2 NAME 'posternAccountStatus'
            DESC 'active or suspended' EQUALITY caseIgnoreMatch
            SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
        objectclass ( 1.3.6.1.4.1.32473.2.1 NAME 'posternMailAccount' SUP top AUXILIARY
            MAY ( posternMailQuota $ posternAccountStatus ) )

        """

    static func data(alicePassword: String) -> String {
        func person(_ uid: String, _ cn: String, _ extra: String) -> String {
            """
            dn: uid=\(uid),ou=people,\(baseDN)
            objectClass: inetOrgPerson
            objectClass: inetLocalMailRecipient
            objectClass: posternMailAccount
            uid: \(uid)
            cn: \(cn)
            sn: \(cn.split(separator: " ").last!)
            \(extra)
            """ + "\n\n"  // a blank line ends the entry (the literal drops its own last newline)
        }
        return """
            dn: \(baseDN)
            objectClass: dcObject
            objectClass: organization
            o: Example
            dc: example

            dn: ou=people,\(baseDN)
            objectClass: organizationalUnit
            ou: people

            dn: ou=groups,\(baseDN)
            objectClass: organizationalUnit
            ou: groups

            dn: ou=services,\(baseDN)
            objectClass: organizationalUnit
            ou: services

            dn: \(serviceDN)
            objectClass: organizationalRole
            objectClass: simpleSecurityObject
            cn: postern
            userPassword: \(servicePassword)


            """
            + person("alice", "Alice Liddell", """
                mail: alice@example.org
                mailLocalAddress: ali@example.org
                displayName: Alice L.
                preferredLanguage: de-DE
                telephoneNumber: +1 555 0100
                posternMailQuota: 5000000
                userPassword: \(alicePassword)
                """)
            + person("bob", "Bob Builder", """
                mail: bob@example.org
                mailHost: mail2.example.net
                telephoneNumber: +1 555 0101
                userPassword: bob-pw
                """)
            + person("carol", "Carol Routed", """
                mail: carol@example.org
                mailRoutingAddress: carol@elsewhere.example
                userPassword: carol-pw
                """)
            + person("dave", "Dave Suspended", """
                mail: dave@example.org
                posternAccountStatus: suspended
                userPassword: dave-pw
                """)
            + person("erin", "Erin Smith", """
                mail: erin@example.org
                telephoneNumber: +1 555 0104
                userPassword: erin-pw
                """)
            + """
            dn: cn=staff,ou=groups,\(baseDN)
            objectClass: groupOfNames
            objectClass: inetLocalMailRecipient
            cn: staff
            mailLocalAddress: staff@example.org
            member: uid=alice,ou=people,\(baseDN)
            member: uid=erin,ou=people,\(baseDN)
            member: cn=admins,ou=groups,\(baseDN)

            dn: cn=admins,ou=groups,\(baseDN)
            objectClass: groupOfUniqueNames
            objectClass: inetLocalMailRecipient
            cn: admins
            mailLocalAddress: admins@example.org
            uniqueMember: uid=dave,ou=people,\(baseDN)
            uniqueMember: uid=bob,ou=people,\(baseDN)#'0101'B
            uniqueMember: cn=staff,ou=groups,\(baseDN)

            """
    }
}
