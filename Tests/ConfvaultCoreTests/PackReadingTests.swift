import Foundation
import Testing

@testable import ConfvaultCore

/// `pack` reads each file once for its digest and checks, by its status, that it is unchanged when
/// it reads it again to write it.
@Suite struct PackReadingTests {
  @Test("small files are kept from the hashing read within the budget, large ones not, and hashed as read")
  func keptBytes() throws {
    let folder = try ArchiveReaderTests.makeFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let found = try ConfigurationFolder.scan(folder)
    let kept = try FolderReading.read(found, keepingUpTo: 4 << 20)
    #expect(kept.count == found.count)
    #expect(found.contains { $0.size > FolderReading.largestKeptFile }, "a file too large to keep")
    for (index, file) in found.enumerated() {
      let bytes = try Data(contentsOf: URL(fileURLWithPath: file.absolutePath))
      #expect(kept.keeps(index) == (bytes.count <= FolderReading.largestKeptFile), "\(file.path)")
      if kept.keeps(index) { #expect(kept.withKeptBytes(index) { Data($0) } == bytes, "\(file.path)") }
      let read = kept[index]
      #expect(read.entry.sha256 == SHA256Hex.of(bytes) && read.entry.size == Int64(bytes.count))
    }
    let none = try FolderReading.read(found, keepingUpTo: 0)
    #expect(none.indices.allSatisfy { !none.keeps($0) })
  }

  @Test("with room for some files only, each worker keeps what fits in its share, each file at its own place")
  func keptWithinShares() throws {
    let folder = NSTemporaryDirectory() + "confvault-kept-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    for index in 0..<40 {
      let size = index % 3 == 0 ? 30_000 : 5_000 + index
      let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ index) }
      try Data(bytes).write(to: URL(fileURLWithPath: folder + "/f\(index < 10 ? "0" : "")\(index).bin"))
    }
    let found = try ConfigurationFolder.scan(folder)
    let workers = FolderReading.readingWorkers
    let read = try FolderReading.read(found, keepingUpTo: workers * 100_000)
    var keptPerWorker = [Int](repeating: 0, count: workers)
    for index in read.indices {
      let bytes = try Data(contentsOf: URL(fileURLWithPath: found[index].absolutePath))
      #expect(read[index].entry.sha256 == SHA256Hex.of(bytes))
      guard read.keeps(index) else { continue }
      keptPerWorker[FolderReading.worker(reading: index, of: workers)] += bytes.count
      #expect(read.withKeptBytes(index) { Data($0) } == bytes, "\(found[index].path)")
    }
    #expect((1..<read.count).contains(read.indices.count { read.keeps($0) }), "some kept, not all")
    #expect(keptPerWorker.allSatisfy { $0 <= 100_000 && $0 > 60_000 }, "\(keptPerWorker)")
  }

  @Test("a file changed after its hashing read is refused when it is read again")
  func changedAfterReading() throws {
    let folder = try ArchiveReaderTests.makeFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let found = try ConfigurationFolder.scan(folder)
    let read = try FolderReading.read(found, keepingUpTo: 0)
    let index = try #require(found.firstIndex { $0.path == "settings.yaml" })
    // Past a clock tick, so the ctime differs; the size stays the same.
    Thread.sleep(forTimeInterval: 0.05)
    try Data("level: warn\n".utf8).write(to: URL(fileURLWithPath: found[index].absolutePath))
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
    defer { buffer.deallocate() }
    #expect {
      try FolderReading.stream(found[index].absolutePath, as: read[index], buffer: buffer) { _ in }
    } throws: { error in
      (error as? OperationError)?.kind == .conflict && "\(error)".contains("settings.yaml")
    }
    let other = try #require(found.firstIndex { $0.path == "run.sh" })
    var streamed = Data()
    try FolderReading.stream(found[other].absolutePath, as: read[other], buffer: buffer) {
      streamed.append(contentsOf: $0)
    }
    #expect(streamed == Data("#!/bin/sh\n".utf8), "an unchanged file streams as it was hashed")
  }

  @Test("a file whose status changes during its hashing read is refused: what was read may be half old, half new")
  func changedDuringHashingRead() throws {
    // A named pipe: each write to it changes its times, and its reader sees the bytes of both.
    let folder = NSTemporaryDirectory() + "confvault-fifo-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let fifo = folder + "/settings.yaml"
    #expect(mkfifo(fifo, 0o600) == 0)
    Thread.sleep(forTimeInterval: 0.05)  // past a clock tick, so that the writes' times are new
    let writer = Thread {
      let fd = open(fifo, O_WRONLY)
      defer { close(fd) }
      _ = write(fd, "old: 1\n", 7)
      Thread.sleep(forTimeInterval: 0.05)
      _ = write(fd, "new: 2\n", 7)
    }
    writer.start()
    let file = FolderFile(path: "settings.yaml", absolutePath: fifo, mode: .regular, size: 14, modificationTime: 0)
    #expect {
      try FolderReading.read([file], keepingUpTo: 1 << 20)
    } throws: { error in
      (error as? OperationError)?.kind == .conflict
        && "\(error)".contains("`settings.yaml` changed while it was being read; nothing was written")
    }
  }

  @Test("a file changed moments before it was read is racy: its status may not show the next change")
  func racy() throws {
    let folder = try ArchiveReaderTests.makeFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let found = try ConfigurationFolder.scan(folder)
    #expect(try FolderReading.read(found, keepingUpTo: 0).allSatisfy(\.isRacy))
  }

  @Test("a racy file changed within its timestamp stops the pack, as it is hashed again as it is written")
  func racyChangeStopsPack() throws {
    let folder = try ArchiveReaderTests.makeFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let found = try ConfigurationFolder.scan(folder)
    let read = try FolderReading.read(found, keepingUpTo: 0)
    let index = try #require(found.firstIndex { $0.path == "settings.yaml" })
    #expect(read[index].isRacy)
    let path = found[index].absolutePath
    try Data("level: warn\n".utf8).write(to: URL(fileURLWithPath: path))
    // The status as it was hashed, as if the change had come within the same timestamp.
    var info = stat()
    #expect(stat(path, &info) == 0)
    var same = read[index]
    same.identity = FileIdentity(info)
    let manifest = Manifest(app: nil, environment: nil, version: nil, files: read.entries)
    let writer = try ConfigurationArchiveWriter(
      manifest: manifest, modificationTime: 0, compression: .none, sink: MemorySink(), destination: "memory",
      hashingOutput: false)
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
    defer { buffer.deallocate() }
    for position in 0..<index {
      try writer.writeVouchedFile { write in
        try FolderReading.stream(found[position].absolutePath, as: read[position], buffer: buffer, write)
      }
    }
    #expect {
      try writer.writeFile { write in try FolderReading.stream(path, as: same, buffer: buffer, write) }
    } throws: { error in
      (error as? OperationError)?.kind == .conflict && "\(error)".contains("settings.yaml")
    }
  }
}
