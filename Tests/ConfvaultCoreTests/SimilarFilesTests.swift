import Foundation
import Testing

@testable import ConfvaultCore

/// The content a new file is guessed to resemble, which a compact store may keep it as a delta against.
@Suite struct SimilarFilesTests {
  private func file(_ path: String) -> ManifestFile {
    ManifestFile(path: path, size: 10, mode: .regular, sha256: .of(Data(path.utf8)))
  }

  @Test("with no head, a new file resembles the first of its name; past the most that lead, a new name leads none")
  func leaders() {
    var similar = SimilarFiles(head: [])
    let first = file("a/deployment.yaml")
    #expect(similar.blob(resembling: first) == nil)
    #expect(similar.blob(resembling: file("b/deployment.yaml")) == first.sha256)
    for index in 1..<SimilarFiles.mostLeaders { _ = similar.blob(resembling: file("c/name-\(index).yaml")) }
    #expect(similar.blob(resembling: file("d/late.yaml")) == nil)
    // Stored whole, as the first of its name was.
    #expect(similar.blob(resembling: file("e/late.yaml")) == nil)
    // The names that lead still do.
    #expect(similar.blob(resembling: file("e/deployment.yaml")) == first.sha256)
    #expect(similar.blob(resembling: file("e/name-1.yaml")) == file("c/name-1.yaml").sha256)
  }
}
