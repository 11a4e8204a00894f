import FlamespanExport
import FlamespanModel
import FlamespanOTLP
import FlamespanTestSupport
import Foundation
import Testing

@Suite struct OTLPRoundTripTests {
  /// One profile with its dictionary, as a collector would receive it.
  static func request(
    _ tables: Opentelemetry_Proto_Profiles_V1development_ProfilesDictionary,
    _ profile: Opentelemetry_Proto_Profiles_V1development_Profile
  ) -> Opentelemetry_Proto_Collector_Profiles_V1development_ExportProfilesServiceRequest {
    var request =
      Opentelemetry_Proto_Collector_Profiles_V1development_ExportProfilesServiceRequest()
    request.dictionary = tables
    request.resourceProfiles = [.init()]
    request.resourceProfiles[0].scopeProfiles = [.init()]
    request.resourceProfiles[0].scopeProfiles[0].profiles = [profile]
    return request
  }

  let profile = SpanProfileFixture.profile()

  @Test func decodingGivesBackEverySampleWithItsSpanStackAndThread() throws {
    let bytes = try OTLPProfileEncoder.encode(
      profile, resource: OTLPResource(hostName: "build-host", serviceName: "shop"))
    let decoded = try OTLPProfileDecoder.decodeWithResource(bytes)
    #expect(SampleMeaning.of(decoded.profile) == SampleMeaning.of(profile))
    #expect(decoded.profile.samples.count == profile.samples.count)
    #expect(decoded.profile.periodNanos == profile.periodNanos)
    #expect(decoded.profile.startTimeNanos == profile.startTimeNanos)
    #expect(decoded.profile.durationNanos == profile.durationNanos)
    #expect(decoded.profile.comments == profile.comments)
    #expect(decoded.resource == OTLPResource(hostName: "build-host", serviceName: "shop"))
  }

  @Test func inlineChainsStayInnermostFirstAndMappingsKeepKindAndBuildID() throws {
    let decoded = try OTLPProfileDecoder.decode(
      OTLPProfileEncoder.encode(profile, resource: OTLPResource()))
    let render = try #require(
      decoded.samples.first { $0.stack.first?.address == SpanProfileFixture.renderInlined.address })
    #expect(render.stack[0].frames == SpanProfileFixture.renderInlined.frames)
    #expect(render.stack[0].mapping?.buildID == SpanProfileFixture.app.buildID)
    let plugin = try #require(
      decoded.samples.first { $0.stack.first?.address == SpanProfileFixture.vdsoClock.address })
    #expect(plugin.stack[0].frames.isEmpty)
    #expect(plugin.stack[0].unknownReason != nil)
    #expect(plugin.stack[0].mapping?.kind == .vdso)
    #expect(plugin.stack[1].mapping?.kind == .deletedFile)
    #expect(plugin.stack[1].mapping?.path == SpanProfileFixture.plugin.path)
    let kernel = try #require(
      decoded.samples.first { $0.stack.first?.address == SpanProfileFixture.kernelWrite.address })
    #expect(kernel.stack[0].mapping?.kind == .kernel)
  }

  @Test func sharedTablesAreDeduplicated() throws {
    let bytes = try OTLPProfileEncoder.encode(profile, resource: OTLPResource())
    let request =
      try Opentelemetry_Proto_Collector_Profiles_V1development_ExportProfilesServiceRequest(
        serializedBytes: bytes)
    let tables = request.dictionary
    // Zero value first, then one entry per distinct thing in the fixture.
    #expect(tables.stackTable.count == 1 + 3)
    #expect(tables.linkTable.count == 1 + 4)
    #expect(tables.mappingTable.count == 1 + 5)
    #expect(tables.locationTable.count == 1 + 7)
    #expect(Set(tables.stringTable).count == tables.stringTable.count)
    #expect(request.resourceProfiles[0].scopeProfiles[0].profiles.count == 1)
  }

  @Test func emptyProfileRoundTrips() throws {
    let empty = Profile(samples: [], periodNanos: 1_000_000, startTimeNanos: 5, durationNanos: 7)
    let decoded = try OTLPProfileDecoder.decode(
      OTLPProfileEncoder.encode(empty, resource: OTLPResource()))
    #expect(decoded.samples.isEmpty)
    #expect(decoded.periodNanos == 1_000_000)
  }

  /// A profile from another writer: CPU time values instead of counts, and a string attribute given by
  /// string-table index (v1.10.0's string_value_strindex).
  @Test func readsNanosecondValuesAndStringIndexedAttributes() throws {
    var tables = Opentelemetry_Proto_Profiles_V1development_ProfilesDictionary()
    tables.stringTable = ["", "cpu", "nanoseconds", "thread.name", "io-thread", "process.pid"]
    tables.attributeTable = [.init(), .init(), .init()]
    tables.attributeTable[1].keyStrindex = 3
    tables.attributeTable[1].value.stringValueStrindex = 4
    tables.attributeTable[2].keyStrindex = 5
    tables.attributeTable[2].value.intValue = 77
    tables.stackTable = [.init()]
    var sample = Opentelemetry_Proto_Profiles_V1development_Sample()
    sample.values = [30_000_000]
    sample.attributeIndices = [1, 2]
    var otlpProfile = Opentelemetry_Proto_Profiles_V1development_Profile()
    otlpProfile.sampleType.typeStrindex = 1
    otlpProfile.sampleType.unitStrindex = 2
    otlpProfile.period = 10_000_000
    otlpProfile.samples = [sample]
    let request = Self.request(tables, otlpProfile)
    let decoded = try OTLPProfileDecoder.decode(request.serializedBytes())
    #expect(decoded.samples.count == 1)
    #expect(decoded.samples.first?.count == 3)
    #expect(decoded.samples.first?.threadName == "io-thread")
    #expect(decoded.samples.first?.pid == 77)
  }

  @Test func outOfRangeIndexesAndBadLinksAreErrorsNotCrashes() throws {
    let good = try OTLPProfileEncoder.encode(profile, resource: OTLPResource())
    typealias Request =
      Opentelemetry_Proto_Collector_Profiles_V1development_ExportProfilesServiceRequest
    let mutations: [(String, (inout Request) -> Void)] = [
      (
        "stack index",
        { $0.resourceProfiles[0].scopeProfiles[0].profiles[0].samples[0].stackIndex = 999 }
      ),
      (
        "negative link",
        { $0.resourceProfiles[0].scopeProfiles[0].profiles[0].samples[0].linkIndex = -1 }
      ),
      ("location index", { $0.dictionary.stackTable[1].locationIndices[0] = 1 << 30 }),
      (
        "function index",
        {
          $0.dictionary.locationTable[1].lines = [.init()]
          $0.dictionary.locationTable[1].lines[0].functionIndex = 500
        }
      ),
      ("string index", { $0.dictionary.functionTable[1].nameStrindex = Int32.max }),
      (
        "attribute index",
        {
          $0.resourceProfiles[0].scopeProfiles[0].profiles[0].samples[0].attributeIndices = [12345]
        }
      ),
      ("short trace id", { $0.dictionary.linkTable[1].traceID = Data([1, 2, 3]) }),
      ("string table zero", { $0.dictionary.stringTable[0] = "x" }),
    ]
    for (name, mutate) in mutations {
      var request = try Request(serializedBytes: good)
      mutate(&request)
      let bytes: [UInt8] = try request.serializedBytes()
      #expect(throws: OTLPError.self, "\(name) must be refused") {
        try OTLPProfileDecoder.decode(bytes)
      }
    }
  }

  /// Stacks are shared in the dictionary; decoding must share them too, or a small file whose many
  /// samples point at one long stack would expand to samples × stack length in memory.
  @Test func samplesWithOneStackShareOneDecodedArray() throws {
    var tables = Opentelemetry_Proto_Profiles_V1development_ProfilesDictionary()
    tables.stringTable = ["", "samples", "count"]
    tables.locationTable = [.init(), .init()]
    tables.locationTable[1].address = 0x1234
    tables.stackTable = [.init(), .init()]
    tables.stackTable[1].locationIndices = Array(repeating: 1, count: 5_000)
    var sample = Opentelemetry_Proto_Profiles_V1development_Sample()
    sample.stackIndex = 1
    sample.values = [1]
    var otlpProfile = Opentelemetry_Proto_Profiles_V1development_Profile()
    otlpProfile.sampleType.typeStrindex = 1
    otlpProfile.sampleType.unitStrindex = 2
    otlpProfile.samples = Array(repeating: sample, count: 20_000)
    let request = Self.request(tables, otlpProfile)
    let bytes: [UInt8] = try request.serializedBytes()
    #expect(bytes.count < 200_000)
    let decoded = try OTLPProfileDecoder.decode(bytes)
    #expect(decoded.totalCount == 20_000)
    let storage = Set(
      decoded.samples.map { sample in
        sample.stack.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
      })
    #expect(storage.count == 1)
  }

  /// Every prefix of a real file, and every single-byte corruption of it, gives an error or a profile.
  @Test func truncatedAndCorruptedInputsNeverCrash() throws {
    let bytes = try OTLPProfileEncoder.encode(profile, resource: OTLPResource(hostName: "h"))
    var refused = 0
    for length in 0..<bytes.count {
      do {
        _ = try OTLPProfileDecoder.decode(Array(bytes[..<length]))
      } catch {
        #expect(error.code == .malformedProfile)
        refused += 1
      }
    }
    // Most prefixes cut a field in half; a few end between fields and are valid smaller messages.
    #expect(refused > bytes.count / 2)
    for offset in 0..<bytes.count {
      var corrupted = bytes
      corrupted[offset] ^= 0xff
      _ = try? OTLPProfileDecoder.decode(corrupted)
    }
    #expect(throws: OTLPError.self) { try OTLPProfileDecoder.decode([]) }
    #expect(throws: OTLPError.self) { try OTLPProfileDecoder.decode(Array("not protobuf".utf8)) }
  }

  @Test func exporterWritesOTLPForTheExtension() throws {
    #expect(try OutputFormat(path: "/tmp/p.otlp.pb") == .otlp)
    #expect(throws: ExportError.self) { try OutputFormat(path: "/tmp/.otlp.pb") }
    let directory = try TemporaryDirectory("exporter")
    let path = directory.file("profile.otlp.pb")
    try ProfileExporter.write(profile, to: path, title: "unused")
    let read = try ProfileReader.read(from: path)
    #expect(SampleMeaning.of(read) == SampleMeaning.of(profile))
  }
}
