// Everything whose types or global state cross a plugin boundary is re-exported from here, so that
// a plugin that writes `import PluginAPI` sees the one copy that lives in libPluginAPI.so. A plugin
// that imports NIO through its own package dependency gets a private copy and is refused by the
// loader (see ARCHITECTURE.md, "Plugins").
@_exported import NIOCore
@_exported import NIOPosix
@_exported import NIOEmbedded
@_exported import NIOHTTP1
@_exported import NIOConcurrencyHelpers
@_exported import NIOSSL
@_exported import NIOTLS
@_exported import Logging
@_exported import Metrics
@_exported import Crypto
