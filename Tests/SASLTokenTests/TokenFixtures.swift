import Foundation
import PluginAPI
import PluginCredentials
@testable import PosternSASLOAuthCore
import PosternHost
import PosternTestSupport
import XCTest

/// An issuer for the tests: a fresh P-256 key, its JWKS, and tokens signed with it (jwt-kit, the
/// library the plugin verifies with), plus hand-made forgeries.
struct TestIssuer {
    static let issuer = "https://issuer.test"
    static let audience = "postern-mail"

    let key = ES256PrivateKey()
    let kid: String

    init(kid: String = "test-key-1") { self.kid = kid }

    var jwksJSON: String {
        let p = key.parameters!
        return #"{"keys":[{"kty":"EC","crv":"P-256","alg":"ES256","use":"sig","kid":"\#(kid)","x":"\#(p.x)","y":"\#(p.y)"}]}"#
    }

    /// Claims of a good token for `email`, valid for ten minutes; `changes` overrides or (with
    /// `.other`) removes claims.
    static func claims(email: String, _ changes: [String: ClaimValue] = [:]) -> [String: ClaimValue] {
        let now = Date().timeIntervalSince1970
        var c: [String: ClaimValue] = ["iss": .string(issuer), "aud": .strings([audience, "other"]), "sub": .string("id-1234"),
                                       "email": .string(email), "iat": .number(now.rounded()), "exp": .number((now + 600).rounded()),
                                       "scope": .string("openid email mail")]
        for (k, v) in changes { c[k] = v == .other ? nil : v }
        return c
    }

    func token(_ claims: [String: ClaimValue]) async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(ecdsa: key, kid: JWKIdentifier(string: kid))
        return try await keys.sign(TokenClaims(claims: claims), kid: JWKIdentifier(string: kid))
    }

    /// `alg: none` with an empty signature (RFC 7519 §6), claiming this issuer's key id.
    func unsignedToken(_ claims: [String: ClaimValue]) throws -> String {
        let header = Self.base64URL(Array(#"{"alg":"none","typ":"JWT","kid":"\#(kid)"}"#.utf8))
        let payload = Self.base64URL(Array(try JSONEncoder().encode(TokenClaims(claims: claims))))
        return header + "." + payload + "."
    }

    static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}

/// A small RFC 7662 authorization server: Python's http.server on a free port of 127.0.0.1. It
/// checks the client's Basic credentials, answers from a table of tokens, and counts requests
/// (GET /count) so the tests can see the cache work.
final class IntrospectionServer {
    static let script = #"""
        import base64, json, sys, time
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import parse_qs, unquote_plus
        port, client_id, client_secret = int(sys.argv[1]), sys.argv[2], sys.argv[3]
        now = int(time.time())
        tokens = {
            "opaque-alice": {"active": True, "username": "alice", "email": "alice@example.org", "scope": "mail",
                              "iss": "https://issuer.test", "aud": "postern-mail", "exp": now + 600},
            "opaque-expired": {"active": True, "email": "alice@example.org", "aud": "postern-mail", "exp": now - 3600},
            "opaque-wrong-aud": {"active": True, "email": "alice@example.org", "aud": "someone-else", "exp": now + 600},
            "opaque-carol": {"active": True, "email": "carol@example.org", "aud": "postern-mail", "exp": now + 600},
            "opaque-nobody": {"active": True, "email": "nobody@example.org", "aud": "postern-mail", "exp": now + 600},
        }
        count = 0
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args): pass
            def reply(self, code, obj):
                body = json.dumps(obj).encode() + b"\r\n"
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            def do_GET(self):
                self.reply(200, {"count": count})
            def do_POST(self):
                global count
                count += 1
                body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                # RFC 6749 2.3.1: id and secret are form-encoded before Basic's base64.
                auth = self.headers.get("Authorization", "")
                try:
                    pair = base64.b64decode(auth[6:]).decode() if auth.startswith("Basic ") else ""
                    given_id, given_secret = (unquote_plus(p) for p in pair.split(":", 1))
                except ValueError:
                    given_id, given_secret = None, None
                if (given_id, given_secret) != (client_id, client_secret):
                    return self.reply(401, {"error": "invalid_client"})
                if self.headers.get("Content-Type") != "application/x-www-form-urlencoded":
                    return self.reply(400, {"error": "invalid_request"})
                form = parse_qs(body)
                token = form.get("token", [""])[0]
                self.reply(200, tokens.get(token, {"active": False}))
        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        print("ready", flush=True)
        server.serve_forever()
        """#

    let port = freePort()
    let process = Process()
    let clientID = "postern", clientSecret = "s3cret:&="

    init(_ dir: TempDir) throws {
        let file = dir.write("introspection.py", Self.script)
        process.executableURL = URL(fileURLWithPath: try Build.tool("python3"))
        process.arguments = [file, "\(port)", clientID, clientSecret]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.standardError
        try process.run()
        // Ready once it printed: the socket is bound then.
        let line = out.fileHandleForReading.availableData
        guard String(decoding: line, as: UTF8.self).contains("ready") else { throw SystemError.message("introspection server did not start") }
    }

    var url: String { "http://127.0.0.1:\(port)/oauth2/introspect" }

    var requestCount: Int {
        get throws {
            let body = try httpGet(port: port, path: "/count")
            guard let start = body.range(of: "{") else { throw SystemError.message("bad /count answer: \(body)") }
            let json = try JSONSerialization.jsonObject(with: Data(body[start.lowerBound...].utf8)) as? [String: Int]
            return json?["count"] ?? -1
        }
    }

    func stop() { stopChild(process) }
}
