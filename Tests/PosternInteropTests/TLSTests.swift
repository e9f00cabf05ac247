import Foundation
import PosternTestSupport
import PosternHost
import XCTest

/// The host's TLS for protocol plugins: implicit TLS, STARTTLS through `Session.startTLS`, and SNI
/// certificates per domain, checked with Python's ssl module as the client.
final class TLSInteropTests: XCTestCase {
    func testImplicitTLSWithSNIAndStartTLSDiscardingPipelinedPlaintext() throws {
        let dir = TempDir("tls")
        let a = try makeCertificate(dir, "a.example")
        let b = try makeCertificate(dir, "b.example")
        let implicitPort = freePort(), startPort = freePort()
        let server = try ServerProcess(dir: dir, config: """
            data_dir = "./var"
            [[listener]]
            name = "greet-tls"
            address = "127.0.0.1"
            port = \(implicitPort)
            protocol = "greeter"
            tls = "implicit"
            certificate = "\(a.cert)"
            key = "\(a.key)"
            [[listener.sni]]
            domain = "b.example"
            certificate = "\(b.cert)"
            key = "\(b.key)"
            [[listener]]
            name = "greet-starttls"
            address = "127.0.0.1"
            port = \(startPort)
            protocol = "greeter"
            tls = "starttls"
            certificate = "\(a.cert)"
            key = "\(a.key)"
            """)
        defer { server.stop() }
        XCTAssertTrue(server.waitStarted(), server.log)
        let script = dir.write("client.py", """
            import socket, ssl, sys
            implicit, start, a_pem, b_pem = int(sys.argv[1]), int(sys.argv[2]), open(sys.argv[3]).read(), open(sys.argv[4]).read()
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            def which(der):
                pem = ssl.DER_cert_to_PEM_cert(der).split()
                return "a" if pem == a_pem.split() else "b" if pem == b_pem.split() else "other"
            for name in ["a.example", "b.example", "unknown.example"]:
                s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", implicit)), server_hostname=name)
                f = s.makefile("rwb")
                greeting = f.readline().strip().decode()
                f.write(b"TLS\\r\\n"); f.flush()
                print(name, which(s.getpeercert(binary_form=True)), greeting, f.readline().strip().decode())
                s.close()
            s = socket.create_connection(("127.0.0.1", start))
            f = s.makefile("rwb")
            print("plain", f.readline().strip().decode())
            f.write(b"TLS\\r\\n"); f.flush()
            print("before", f.readline().strip().decode())
            # PING is pipelined in plaintext after STARTTLS: the server must discard it.
            s.sendall(b"STARTTLS\\r\\nPING\\r\\n")
            print("starttls", f.readline().strip().decode())
            t = ctx.wrap_socket(s, server_hostname="a.example")
            g = t.makefile("rwb")
            g.write(b"TLS\\r\\n"); g.flush()
            print("after", g.readline().strip().decode())
            g.write(b"QUIT\\r\\n"); g.flush()
            print("quit", g.readline().strip().decode())
            """)
        let (code, output) = Build.run(try Build.tool("python3"), [script, String(implicitPort), String(startPort), a.cert, b.cert])
        XCTAssertEqual(code, 0, output)
        XCTAssertEqual(output.split(separator: "\n").map(String.init), [
            "a.example a 220 postern greeter build 0 250 secure=true",
            "b.example b 220 postern greeter build 0 250 secure=true",
            "unknown.example a 220 postern greeter build 0 250 secure=true",
            "plain 220 postern greeter build 0",
            "before 250 secure=false",
            "starttls 220 go ahead",
            "after 250 secure=true",
            "quit 221 bye",
        ])
    }
}
