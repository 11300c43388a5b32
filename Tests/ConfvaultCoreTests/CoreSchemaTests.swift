import Testing
import Yams

@testable import ConfvaultCore

/// The hand-written reading of plain YAML scalars answers as the core schema's patterns do.
@Suite struct CoreSchemaTests {
  static let samples = [
    "", "~", "null", "Null", "NULL", "nul", "true", "True", "TRUE", "tRue", "false", "yes", "no", "on", "0", "-0",
    "+12", "012", "1_000", "0o17", "0o18", "0x1F", "0xg", "0x", "0o", "1.5", "-1.5", ".5", "5.", ".", "-.", "1e3",
    "1E-3", "1.5e+10", "5.e3", ".e3", "1e", "e3", ".inf", "-.inf", "+.Inf", ".INF", "inf", ".nan", ".NaN", "-.nan",
    "<<", "< <", "grafana/grafana:6.0.1", "1:20", "2024-01-01", "0.1.0", "1.2.3", "--1", "+-1", " 1", "1 ", "١٢",
    "https://example.com", "12:30:00", "0b101", "Infinity", "NaN",
  ]

  @Test("every sample gets the tag the core schema's regular expressions give it")
  func agreesWithPatterns() {
    for sample in Self.samples {
      let node = Node.scalar(Node.Scalar(sample, Tag(.implicit, TreeReader.coreSchema)))
      #expect(CoreSchema.tag(ofPlain: sample).rawValue == node.tag.description, "`\(sample)`")
    }
  }
}
