// swift-tools-version:6.0
import PackageDescription

// Linux with glibc only: the code calls Glibc (O_NOFOLLOW, flock, getpwuid, mkdtemp) and the tests use
// GNU find, stat and tar. SwiftPM has no way to name Linux as the only platform, so no Apple platform
// is declared.
let package = Package(
  name: "confvault",
  products: [
    .executable(name: "confvault", targets: ["confvault"]),
    .library(name: "ConfvaultCore", targets: ["ConfvaultCore"]),
    .library(name: "ConfvaultSQLite", targets: ["ConfvaultSQLite"]),
    .library(name: "ConfvaultPostgres", targets: ["ConfvaultPostgres"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
    .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
    .package(url: "https://github.com/jpsim/Yams", from: "5.0.0"),
    .package(url: "https://github.com/apple/swift-async-algorithms", from: "1.0.0"),
    .package(url: "https://github.com/apple/swift-http-types", from: "1.0.0"),
    .package(url: "https://github.com/swift-server/async-http-client", from: "1.21.0"),
    .package(url: "https://github.com/apple/swift-nio", from: "2.70.0"),
    .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.20.0"),
    .package(url: "https://github.com/hummingbird-project/hummingbird-auth", from: "2.0.0"),
    .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.0.0"),
    .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
    .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
    .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.0"),
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
    // zlib, liblzma and libbz2 (Debian's zlib1g-dev, liblzma-dev, libbz2-dev): the reader undoes an
    // archive's one compression layer itself, so that every checksum is verified.
    .systemLibrary(
      name: "CCompression",
      providers: [.apt(["zlib1g-dev", "liblzma-dev", "libbz2-dev"])]
    ),
    // glibc's malloc.h (2.33 or later, for mallinfo2): the executable limits malloc's arenas (see
    // Confvault.main), and the library gives back what a large scan freed (FreedMemory).
    .systemLibrary(name: "CMalloc"),
    // One entry point of SQLite's C API that Swift cannot call, being variadic (see SQLiteLibrary);
    // SQLite itself is linked through GRDB.
    .systemLibrary(name: "CSQLiteConfig"),
    // SHA-256's compression function with the processor's SHA extensions: `check` hashes two
    // versions' lines at once on each core and keeps the states it resumes from, which swift-crypto's
    // one-message hasher cannot (see SHA256Blocks; without the extensions, swift-crypto hashes them).
    // The only C of our own.
    .target(name: "CSHA256"),
    .target(
      name: "ConfvaultCore",
      dependencies: [
        "CMalloc",
        "CArchive",
        "CCompression",
        "CZstd",
        "CSHA256",
        .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "Yams", package: "Yams"),
      ]
    ),
    // The embedded store; the only importer of GRDB.
    .target(
      name: "ConfvaultSQLite",
      dependencies: [
        "ConfvaultCore",
        .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "GRDB", package: "GRDB.swift"),
        // SQLite's C API, for what GRDB does not wrap (keeping the WAL files for read-only readers).
        .product(name: "GRDBSQLite", package: "GRDB.swift"),
        "CSQLiteConfig",
        .product(name: "Logging", package: "swift-log"),
      ]
    ),
    // The shared store; the only importer of PostgresNIO.
    .target(
      name: "ConfvaultPostgres",
      dependencies: [
        "ConfvaultCore",
        .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "PostgresNIO", package: "postgres-nio"),
        .product(name: "Logging", package: "swift-log"),
      ]
    ),
    // The web page and the HTTP API; the only importer of Hummingbird.
    .target(
      name: "ConfvaultServer",
      dependencies: [
        "ConfvaultCore",
        .product(name: "AsyncAlgorithms", package: "swift-async-algorithms"),
        .product(name: "HTTPTypes", package: "swift-http-types"),
        .product(name: "Hummingbird", package: "hummingbird"),
        .product(name: "HummingbirdCore", package: "hummingbird"),
        .product(name: "HummingbirdTLS", package: "hummingbird"),
        .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
        .product(name: "Mustache", package: "swift-mustache"),
        .product(name: "Prometheus", package: "swift-prometheus"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "Logging", package: "swift-log"),
      ],
      // Built into the binary: the page needs no files beside it.
      resources: [
        "app.css", "app.js", "openapi.yaml", "header.mustache", "footer.mustache", "sign-in.mustache",
        "apps.mustache", "app.mustache", "version.mustache", "changes.mustache", "preview.mustache",
        "audit.mustache", "error.mustache",
      ].map { .embedInCode("Resources/" + $0) }
    ),
    // The use cases over a server's HTTP API, for `--server`.
    .target(
      name: "ConfvaultClient",
      dependencies: [
        "ConfvaultCore",
        .product(name: "AsyncHTTPClient", package: "async-http-client"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOFoundationCompat", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "Logging", package: "swift-log"),
      ]
    ),
    .executableTarget(
      name: "confvault",
      dependencies: [
        "CMalloc",
        "ConfvaultCore",
        "ConfvaultSQLite",
        "ConfvaultPostgres",
        "ConfvaultServer",
        "ConfvaultClient",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Logging", package: "swift-log"),
      ],
      // Its symbols are not exported: exported (the toolchain's default), all 53,700 of them were
      // searched one by one by the `dladdr` the Swift runtime makes as it starts, 0.8 ms of every
      // command (a one-file push takes about 70).
      //
      // Linked by the toolchain's lld, whose packed relative relocations (RELR, read by glibc since
      // 2.36) take 50 KB where gold's 150,000 relocations took 3.6 MB: the loader reads them all
      // as it starts, so every command held 3.4 MiB more (`confvault --version`: 15.7 -> 12.3 MiB).
      linkerSettings: [
        .unsafeFlags(["-Xlinker", "--no-export-dynamic"]),
        .unsafeFlags(
          ["-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs"], .when(platforms: [.linux])),
      ]
    ),
    // What several test targets share, and no product ships: the throwaway PostgreSQL cluster.
    .target(
      name: "ConfvaultTestSupport",
      path: "Tests/ConfvaultTestSupport"
    ),
    .testTarget(
      name: "ConfvaultCoreTests",
      dependencies: ["ConfvaultCore"]
    ),
    // The store conformance suite, run over every store, and the use cases in process.
    .testTarget(
      name: "ConfvaultStoreTests",
      dependencies: [
        "ConfvaultCore", "ConfvaultSQLite", "ConfvaultPostgres", "ConfvaultTestSupport",
        // SQLite's C API, to ask the library itself what it counts.
        .product(name: "GRDBSQLite", package: "GRDB.swift"),
        .product(name: "Logging", package: "swift-log"),
      ]
    ),
    .testTarget(
      name: "ConfvaultServerTests",
      dependencies: [
        "ConfvaultCore", "ConfvaultSQLite", "ConfvaultServer",
        .product(name: "HummingbirdTesting", package: "hummingbird"),
        .product(name: "Logging", package: "swift-log"),
      ]
    ),
    .testTarget(
      name: "ConfvaultCLITests",
      // ConfvaultSQLite and Logging only to make a large store in process fast (`StoreCopyTests`);
      // every command under test runs the built binary.
      dependencies: [
        "ConfvaultCore", "ConfvaultSQLite", "ConfvaultTestSupport", .product(name: "Logging", package: "swift-log"),
      ],
      exclude: ["Fixtures"]
    ),
  ]
)
