// Times FlamespanUnwinder on a stack captured by the unwinder test fixture (registers, stack, maps), the
// same input libdw_unwind.c and libunwind_unwind.c take. Built by run.sh against the release objects.
// usage: throughput CAPTURE_DIR ITERATIONS
import FlamespanProcess
import FlamespanUnwinder
import Foundation

let arguments = CommandLine.arguments
let directory = URL(fileURLWithPath: arguments[1])
let iterations = Int(arguments[2]) ?? 20000
let registerBytes = try [UInt8](Data(contentsOf: directory.appendingPathComponent("registers")))
func word(_ index: Int) -> UInt64 {
  (0..<8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64(registerBytes[index * 8 + $1]) }
}
let registers = UnwindRegisters(ip: word(0), sp: word(1), bp: word(2))
let stack = try [UInt8](Data(contentsOf: directory.appendingPathComponent("stack")))
let maps = ProcessInspector.parseMaps(
  try String(contentsOf: directory.appendingPathComponent("maps"), encoding: .utf8), pid: 0)
let unwinder = Unwinder()
var result = unwinder.unwind(registers: registers, stack: stack, stackStart: registers.sp, maps: maps)
let start = DispatchTime.now().uptimeNanoseconds
for _ in 0..<iterations {
  result = unwinder.unwind(registers: registers, stack: stack, stackStart: registers.sp, maps: maps)
}
let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start)
print(
  "flamespan: \(result.addresses.count) frames (\(result.end.description)), "
    + String(format: "%.2f us per unwind over %d unwinds", elapsed / Double(iterations) / 1000, iterations))
