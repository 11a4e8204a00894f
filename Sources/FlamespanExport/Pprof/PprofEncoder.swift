import FlamespanModel
import FlamespanOTLP
import SwiftProtobuf

/// Encodes a `Profile` as an uncompressed pprof protobuf (`perftools.profiles.Profile`, the messages
/// generated from proto/pprof/profile.proto).
///
/// Strings, functions, locations and mappings are deduplicated through hash tables, so the cost is linear
/// in the number of stack entries. The whole `Profile` message is never built: protobuf defines the
/// concatenation of two encoded messages as their merge, with repeated fields appended, so each sample
/// and each chunk of a table is serialized as a small `Profile` of its own and appended to the output.
/// Memory then stays near the size of the output instead of a second, larger copy of the profile as
/// message structs, and no single message comes near protobuf's 2 GiB limit.
public enum PprofEncoder {
  public static func encode(_ profile: Profile) -> [UInt8] {
    var tables = PprofTables()
    // Interned first, so their indexes (1 to 4) are known before any sample is written.
    let samplesType = valueType(tables.string("samples"), tables.string("count"))
    let cpuType = valueType(tables.string("cpu"), tables.string("nanoseconds"))
    let labelKeys = LabelKeys(tables: &tables)

    var output = PprofOutput(capacity: profile.samples.count * 64)
    var header = Perftools_Profiles_Profile()
    header.sampleType = [samplesType, cpuType]
    output.append(header)

    var fragment = Perftools_Profiles_Profile()
    fragment.sample = [Perftools_Profiles_Sample()]
    for sample in profile.samples {
      fill(
        &fragment.sample[0], from: sample, periodNanos: profile.periodNanos, keys: labelKeys,
        tables: &tables)
      output.append(fragment)
    }

    let comments = profile.comments.map { tables.string($0) }
    tables.appendTables(to: &output)

    var trailer = Perftools_Profiles_Profile()
    trailer.timeNanos = profile.startTimeNanos
    trailer.durationNanos = profile.durationNanos
    trailer.periodType = cpuType
    trailer.period = profile.periodNanos
    trailer.comment = comments
    output.append(trailer)
    return output.bytes
  }

  private static func valueType(_ type: Int64, _ unit: Int64) -> Perftools_Profiles_ValueType {
    var valueType = Perftools_Profiles_ValueType()
    valueType.type = type
    valueType.unit = unit
    return valueType
  }

  /// String indexes of the label keys, interned once per profile.
  private struct LabelKeys {
    let pid, tid, threadName, traceID, spanID, spanName: Int64

    init(tables: inout PprofTables) {
      pid = tables.string(PprofLabel.pid)
      tid = tables.string(PprofLabel.tid)
      threadName = tables.string(PprofLabel.threadName)
      traceID = tables.string(PprofLabel.traceID)
      spanID = tables.string(PprofLabel.spanID)
      spanName = tables.string(PprofLabel.spanName)
    }
  }

  /// Rewrites `message` in place (its arrays keep their capacity from one sample to the next).
  private static func fill(
    _ message: inout Perftools_Profiles_Sample, from sample: ProfileSample, periodNanos: Int64,
    keys: LabelKeys, tables: inout PprofTables
  ) {
    message.locationID.removeAll(keepingCapacity: true)
    for location in sample.stack { message.locationID.append(tables.locationID(for: location)) }
    message.value.removeAll(keepingCapacity: true)
    message.value.append(sample.count)
    message.value.append(sample.count &* periodNanos)

    message.label.removeAll(keepingCapacity: true)
    // pprof's own writer leaves out a zero `num` and its reader treats a zero as "no value", so the
    // idle task's pid 0 reads back as 0 either way.
    message.label.append(label(keys.pid, number: Int64(sample.pid)))
    message.label.append(label(keys.tid, number: Int64(sample.tid)))
    message.label.append(label(keys.threadName, string: tables.string(sample.threadName)))
    if let span = sample.span {
      message.label.append(label(keys.traceID, string: tables.string(span.traceIDHex)))
      message.label.append(label(keys.spanID, string: tables.string(span.spanIDHex)))
      if let name = span.name {
        message.label.append(label(keys.spanName, string: tables.string(name)))
      }
    }
  }

  private static func label(_ key: Int64, number: Int64) -> Perftools_Profiles_Label {
    var label = Perftools_Profiles_Label()
    label.key = key
    label.num = number
    return label
  }

  private static func label(_ key: Int64, string: Int64) -> Perftools_Profiles_Label {
    var label = Perftools_Profiles_Label()
    label.key = key
    label.str = string
    return label
  }
}

/// The encoded profile, grown by appending serialized `Profile` fragments (see `PprofEncoder`).
struct PprofOutput {
  private(set) var bytes: [UInt8] = []

  init(capacity: Int) { bytes.reserveCapacity(capacity) }

  /// Appends one repeated table field of `Profile` (mappings, locations, functions) in fragments of at most
  /// `perFragment` entries, making each message only when its fragment is filled.
  mutating func appendTable<Message>(
    _ messages: some Sequence<Message>,
    into field: WritableKeyPath<Perftools_Profiles_Profile, [Message]>, perFragment: Int
  ) {
    var fragment = Perftools_Profiles_Profile()
    for message in messages {
      fragment[keyPath: field].append(message)
      if fragment[keyPath: field].count == perFragment {
        append(fragment)
        fragment[keyPath: field].removeAll(keepingCapacity: true)
      }
    }
    if !fragment[keyPath: field].isEmpty { append(fragment) }
  }

  mutating func append(_ fragment: Perftools_Profiles_Profile) {
    do {
      let encoded: [UInt8] = try fragment.serializedBytes()
      bytes.append(contentsOf: encoded)
    } catch {
      // swift-protobuf refuses only messages missing proto2 required fields (pprof is proto3) and
      // messages of 2 GiB or more; a fragment is one sample or a bounded chunk of a table.
      preconditionFailure("a pprof fragment could not be serialized: \(error)")
    }
  }
}
