// The results each sender-authentication method reaches, as RFC 8601 §2.7 names them. Every
// verifier in this plugin ends in one of these, and `AuthenticationResultsField` writes them.

/// SPF (RFC 7208 §2.6; RFC 8601 §2.7.2).
package enum SPFResult: String, Sendable, CaseIterable {
    case none, neutral, pass, fail, softfail, temperror, permerror
}

/// DKIM, per signature (RFC 6376 §6.1; RFC 8601 §2.7.1).
package enum DKIMResult: String, Sendable, CaseIterable {
    case none, pass, fail, policy, neutral, temperror, permerror
}

/// DMARC (RFC 7489 §11.2).
package enum DMARCResult: String, Sendable, CaseIterable {
    case none, pass, fail, temperror, permerror
}

/// ARC chain validation (RFC 8617 §5.2; `cv=` and `arc=`).
package enum ARCResult: String, Sendable, CaseIterable {
    case none, pass, fail
}

/// What one DKIM signature came to, with what `Authentication-Results` and DMARC need of it.
package struct DKIMSignatureOutcome: Sendable, Equatable {
    package var result: DKIMResult
    /// The signing domain (`d=`), lowercased; nil when the signature did not parse that far.
    package var domain: String?
    package var selector: String?
    /// The agent or user identifier (`i=`), when present.
    package var identity: String?
    /// The signature algorithm (`a=`), e.g. `rsa-sha256`, `ed25519-sha256`.
    package var algorithm: String?
    /// The first characters of `b=` (RFC 6008 `header.b`), to tell signatures of one domain apart.
    package var signaturePrefix: String?
    /// Why, for results other than pass (a short phrase for the `reason` of RFC 8601).
    package var reason: String?

    package init(result: DKIMResult, domain: String? = nil, selector: String? = nil, identity: String? = nil,
                 algorithm: String? = nil, signaturePrefix: String? = nil, reason: String? = nil) {
        self.result = result
        self.domain = domain
        self.selector = selector
        self.identity = identity
        self.algorithm = algorithm
        self.signaturePrefix = signaturePrefix
        self.reason = reason
    }
}
