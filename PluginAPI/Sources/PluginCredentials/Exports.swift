// jwt-kit and swift-certificates, re-exported from libPluginAPI.so: a plugin that verifies JWTs
// (sasl-oauth) or reads client certificates (sasl-external) imports PluginCredentials and so uses
// the one copy of swift-crypto. A plugin linking jwt-kit itself would carry its own Crypto, which
// the loader refuses.
@_exported import JWTKit
@_exported import X509
@_exported import SwiftASN1
