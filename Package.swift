// swift-tools-version:6.0
import PackageDescription

let package = Package(
  name: "confvault",
  platforms: [.macOS(.v13)],
  products: [
    .executable(name: "confvault", targets: ["confvault"]),
    .library(name: "ConfvaultCore", targets: ["ConfvaultCore"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
    .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
    .package(url: "https://github.com/jpsim/Yams", from: "5.0.0"),
  ],
  targets: [
    // libarchive, from Debian's libarchive-dev; only ConfvaultCore/Archive imports it.
    .systemLibrary(
      name: "CArchive",
      pkgConfig: "libarchive",
      providers: [.apt(["libarchive-dev"])]
    ),
    // libzstd, from Debian's libzstd-dev: compresses stored blobs chunk by chunk.
    .systemLibrary(
      name: "CZstd",
      pkgConfig: "libzstd",
      providers: [.apt(["libzstd-dev"])]
    ),
    .target(
      name: "ConfvaultCore",
      dependencies: [
        "CArchive",
        "CZstd",
        .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "GRDB", package: "GRDB.swift"),
        .product(name: "Yams", package: "Yams"),
      ]
    ),
    .executableTarget(
      name: "confvault",
      dependencies: [
        "ConfvaultCore",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Logging", package: "swift-log"),
      ]
    ),
    .testTarget(
      name: "ConfvaultCoreTests",
      dependencies: ["ConfvaultCore"]
    ),
    .testTarget(
      name: "ConfvaultCLITests",
      dependencies: ["ConfvaultCore"],
      exclude: ["Fixtures"]
    ),
  ]
)
