// swift-tools-version:6.0
// A third-party Postern plugin, built out of tree against the SDK (PluginAPI) by path.
// Copy this folder anywhere, point the path below at your Postern checkout, `swift build -c release`,
// and add the folder holding libPosternHello.so to `[plugins] path` in your config.
import PackageDescription

let package = Package(
    name: "PosternHello",
    products: [
        // One plugin, one shared object named libPostern<Name>.so.
        .library(name: "PosternHello", type: .dynamic, targets: ["PosternHello"]),
    ],
    dependencies: [
        // The SDK. Depend on its PluginAPI product ONLY: listing swift-nio, swift-log or
        // swift-metrics here would give the plugin private copies, and the host refuses such a plugin.
        .package(name: "PluginAPI", path: "../../PluginAPI"),
    ],
    targets: [
        // All the logic: static, linked into this plugin alone; tests `@testable import` it.
        .target(name: "PosternHelloCore", dependencies: [.product(name: "PluginAPI", package: "PluginAPI")]),
        // Only the two exported C symbols.
        .target(name: "PosternHello", dependencies: ["PosternHelloCore", .product(name: "PluginAPI", package: "PluginAPI")]),
        .testTarget(name: "PosternHelloTests", dependencies: ["PosternHelloCore", .product(name: "PluginAPI", package: "PluginAPI")]),
    ],
    swiftLanguageModes: [.v5]
)
