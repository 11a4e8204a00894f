import FlamespanModel

/// A mapped file as the runtime plug-ins cache what they parsed of it: by device and inode, and by path
/// when the inode is unknown (0).
struct MappedFileKey: Hashable {
  var device: UInt64
  var inode: UInt64
  var path: String

  init(_ mapping: Mapping) {
    device = mapping.device
    inode = mapping.inode
    path = mapping.path
  }
}
