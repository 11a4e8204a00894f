/// Where an HTTP/1.x head ends, for the UI server's request reader.
enum HTTPHead {
  /// Index just past "\r\n\r\n", if present.
  static func endOfHead(_ data: [UInt8]) -> Int? {
    guard data.count >= 4 else { return nil }
    for index in 0...(data.count - 4)
    where data[index] == 13 && data[index + 1] == 10 && data[index + 2] == 13
      && data[index + 3] == 10
    {
      return index + 4
    }
    return nil
  }
}
