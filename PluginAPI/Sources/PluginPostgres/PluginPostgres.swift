// PostgreSQL for plugins that keep their data there (store-postgres). postgres-nio runs on NIO,
// so it lives in this image beside the one copy of NIO every plugin shares (ARCHITECTURE.md,
// "Plugins"); a plugin linking its own copy would be refused by the loader.
@_exported import PostgresNIO
import PluginAPI
