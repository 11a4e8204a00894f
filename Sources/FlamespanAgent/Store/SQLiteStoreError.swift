import Foundation
internal import GRDB

/// Why the store could not be opened or written: the step, the file, SQLite's own code and message, and
/// what to do about it.
package struct SQLiteStoreError: Error, CustomStringConvertible, Sendable {
  package var step: String
  package var path: String
  /// SQLite's primary result code (SQLITE_FULL is 13, SQLITE_CORRUPT 11), or an errno for file steps.
  package var code: Int32
  package var message: String
  package var advice: String

  package var description: String {
    "\(step) \(path): \(message) (code \(code))" + (advice.isEmpty ? "" : ": \(advice)")
  }

  /// The disk (or the store's size on it) is full: deleting the oldest windows can make room.
  var isDiskFull: Bool { code == 13 || code == ENOSPC }

  init(step: String, path: String, code: Int32, message: String, advice: String = "") {
    self.step = step
    self.path = path
    self.code = code
    self.message = message
    self.advice = advice
  }

  init(step: String, path: String, _ error: any Error) {
    if let database = error as? DatabaseError {
      let primary = database.resultCode.primaryResultCode.rawValue
      self.init(
        step: step, path: path, code: primary, message: database.message ?? "\(database)",
        advice: Self.advice(forSQLiteCode: primary, path: path))
    } else if let own = error as? SQLiteStoreError {
      self = own
    } else {
      self.init(step: step, path: path, code: 0, message: "\(error)")
    }
  }

  static func advice(forSQLiteCode code: Int32, path: String) -> String {
    switch code {
    case 13: return "the disk is full: free space, or lower --store-max-bytes"
    case 11, 26:
      return
        "the file is damaged or not a Flamespan store: move \(path) aside (the agent starts a new one)"
    case 5, 6: return "another agent uses this store: stop it, or give this one its own --store"
    case 8, 14, 23: return "check that the agent can read and write \(path) and its directory"
    default: return ""
    }
  }
}

/// A store query failed for another reason than its deadline: the database answered with an error.
package struct StoreReadError: Error, CustomStringConvertible, Sendable {
  package var message: String
  package var description: String { "the store could not be read: \(message)" }
}

/// What a bounded store query can end with instead of an answer.
package enum StoreQueryFailure: Error, Sendable {
  case overBudget(StoreQueryOverBudget)
  case unreadable(StoreReadError)
}
